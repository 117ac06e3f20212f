"""Who is drawn in an epoch: class-balanced sampling with replacement, and self-blended pairs.

:class:`BalancedSampler` draws, with replacement, half REAL and half FAKE samples per epoch (in ``sbi`` +
``dataset`` mode the FAKE half is shared between real fakes and self-blended ones, see
:func:`kind_weights`); :class:`PairedSampler` yields each drawn REAL crop with its own pseudo-fake. Both
shard the draw across DistributedDataParallel ranks and yield ``(index, draw)`` pairs for
:class:`~fakelens.data.crops.CropDataset`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from fakelens.constants import KINDS


def kind_weights(kinds: Sequence[str], sbi_share: float = 0.5) -> np.ndarray:
    """Per-item sampling weights: REAL and FAKE each get half the mass; within FAKE, self-blended items get
    ``sbi_share`` of it when manifest fakes are present too (default 0.5). Missing classes give their mass away."""
    kinds = list(kinds)
    counts = {k: kinds.count(k) for k in KINDS}
    fake_mass = {"fake": 1.0 - sbi_share, "sbi": sbi_share}
    if not counts["fake"]:
        fake_mass = {"fake": 0.0, "sbi": 1.0}
    if not counts["sbi"]:
        fake_mass = {"fake": 1.0, "sbi": 0.0}
    has_real = counts["real"] > 0
    has_fake = counts["fake"] + counts["sbi"] > 0
    class_mass = {"real": 0.5 if has_fake else 1.0, "fake": 0.5 if has_real else 1.0}
    weights = np.empty(len(kinds), dtype=np.float64)
    for i, kind in enumerate(kinds):
        if kind == "real":
            weights[i] = class_mass["real"] / counts["real"]
        else:
            weights[i] = class_mass["fake"] * fake_mass[kind] / counts[kind]
    return weights


class BalancedSampler(Sampler):
    """Class-balanced sampling with replacement (the WeightedRandomSampler idea), sharded over DDP ranks.

    Parameters
    ----------
    weights : per-item weights (e.g. :func:`kind_weights`).
    num_samples : draws per epoch over all ranks (default: the number of items).
    seed : base seed; each epoch's draw uses ``seed + epoch`` (set with :meth:`set_epoch`).
    rank, world_size : this process's shard (default 0 of 1).
    balanced : False draws a plain permutation instead (no replacement, weights ignored).

    Yields ``(index, draw)`` pairs, ``draw`` being the position in the epoch's global draw.
    """

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        balanced: bool = True,
    ):
        self.weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        self.num_items = len(self.weights)
        total = int(num_samples) if num_samples else self.num_items
        self.per_rank = math.ceil(total / world_size)
        self.total = self.per_rank * world_size
        self.seed, self.rank, self.world_size, self.balanced = seed, rank, world_size, balanced
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.per_rank

    def draw(self) -> list[int]:
        """The epoch's global draw of item indices (identical on every rank)."""
        generator = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + self.epoch)
        if self.balanced:
            return torch.multinomial(self.weights, self.total, replacement=True, generator=generator).tolist()
        repeats = math.ceil(self.total / self.num_items)
        order = torch.cat([torch.randperm(self.num_items, generator=generator) for _ in range(repeats)])
        return order[: self.total].tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = self.draw()
        for position in range(self.rank, self.total, self.world_size):
            yield indices[position], position


class PairedSampler(Sampler):
    """Self-blended pairs: draws REAL rows uniformly with replacement and yields, for each, its REAL item then
    its SBI item under one draw number, so with an even batch size every batch holds whole pairs (the SBI
    paper's batches of reals and their own pseudo-fakes). Sharded over DDP ranks pair by pair.

    Parameters
    ----------
    items : the dataset's ``(row, kind)`` items; every REAL row needs an SBI item.
    num_samples : images per epoch over all ranks (default: the number of items); rounded up to pairs.
    seed, rank, world_size : as :class:`BalancedSampler`.
    """

    def __init__(self, items: Sequence[tuple[int, str]], num_samples: int | None = None, seed: int = 0, rank: int = 0, world_size: int = 1):
        real = {row: k for k, (row, kind) in enumerate(items) if kind == "real"}
        sbi = {row: k for k, (row, kind) in enumerate(items) if kind == "sbi"}
        self.pairs = [(real[row], sbi[row]) for row in sorted(real) if row in sbi]
        if not self.pairs:
            raise ValueError("paired sampling needs REAL rows with SBI items")
        total_pairs = math.ceil((int(num_samples) if num_samples else len(items)) / 2)
        self.per_rank = math.ceil(total_pairs / world_size)
        self.total = self.per_rank * world_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return 2 * self.per_rank

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + self.epoch)
        chosen = torch.randint(len(self.pairs), (self.total,), generator=generator).tolist()
        for position in range(self.rank, self.total, self.world_size):
            real_item, sbi_item = self.pairs[chosen[position]]
            yield real_item, position
            yield sbi_item, position


__all__ = ["BalancedSampler", "PairedSampler", "kind_weights"]
