"""Face crops of a manifest as a torch Dataset, and the loader helpers that go with it.

:class:`CropDataset` yields ``(image uint8 (3, 224, 224), target float, index)``. Normalisation happens on
the device, per batch, with :func:`normalize_batch` (the same ImageNet mean/std as
:func:`fakelens.model.preprocess_crops`): uint8 batches are 4x cheaper to move to a GPU. Each item's
self-blending and augmentation draw from :func:`~fakelens.data.augment.sample_rng`, keyed by the item,
never from a shared stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from fakelens.constants import IMAGENET_MEAN, IMAGENET_STD, INPUT_SIZE, KINDS
from fakelens.data.augment import Augmenter, load_crop, sample_rng
from fakelens.data.manifest import ManifestRow
from fakelens.sbi import SBIConfig, blend_pair_real, self_blend

#: Purposes keep the random streams of training augmentation and of fixed validation SBI apart.
PURPOSE_TRAIN, PURPOSE_EVAL_SBI = 0, 1


class CropDataset(Dataset):
    """Face crops of a manifest as ``(uint8 tensor (3, S, S), target float32, item index)``.

    Parameters
    ----------
    rows : manifest rows.
    items : ``(row index, kind)`` pairs, kind in :data:`KINDS` (default: every row once, kind = its label).
        ``"sbi"`` items turn their (REAL) row into a self-blended pseudo-fake.
    augment : an :class:`Augmenter`, or None (default) for none.
    sbi : SBI transform strengths (default :class:`SBIConfig()`).
    seed : base seed of the keyed randomness (default 0).
    purpose : :data:`PURPOSE_TRAIN` (default) or :data:`PURPOSE_EVAL_SBI` (fixed pseudo-fakes for validation).
    size : crop side (default 224).
    dense : per row, its 468 face-mesh points as fractions of the crop ((468, 2), or None), from
        :func:`fakelens.facemesh.dense_landmarks`; SBI uses them when ``sbi.mask == "dense"`` (default None: none).
    paired : False (default) draws every item's randomness on its own. True keys it on ``(row, draw)``
        instead, so a REAL item and the SBI item of the same row drawn with the same draw number are the two
        halves of one self-blended pair - the real target and its own pseudo-fake, with identical
        augmentation - as the SBI paper trains (see :class:`PairedSampler`).

    A sampler may yield ``(index, draw)`` pairs: the draw number separates two draws of one item in an epoch.
    """

    def __init__(
        self,
        rows: Sequence[ManifestRow],
        items: Sequence[tuple[int, str]] | None = None,
        augment: Augmenter | None = None,
        sbi: SBIConfig | None = None,
        seed: int = 0,
        purpose: int = PURPOSE_TRAIN,
        size: int = INPUT_SIZE,
        paired: bool = False,
        dense: Sequence[np.ndarray | None] | None = None,
    ):
        self.rows = list(rows)
        self.dense = dense
        self.paired = paired
        self.items = list(items) if items is not None else [(i, r.label) for i, r in enumerate(self.rows)]
        for _, kind in self.items:
            if kind not in KINDS:
                raise ValueError(f"unknown item kind {kind!r}")
        self.augment = augment
        self.sbi = sbi or SBIConfig()
        self.seed = seed
        self.purpose = purpose
        self.size = size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Key the randomness of the coming epoch (call before creating the epoch's DataLoader iterator)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def targets(self) -> np.ndarray:
        return np.array([0 if kind == "real" else 1 for _, kind in self.items], dtype=np.int64)

    @property
    def kinds(self) -> list[str]:
        return [kind for _, kind in self.items]

    def get_image(self, key) -> tuple[np.ndarray, int]:
        """The (S, S, 3) uint8 image of an item after SBI and augmentation, and its target."""
        index, draw = key if isinstance(key, (tuple, list)) else (key, 0)
        row_index, kind = self.items[index]
        image, landmarks = load_crop(self.rows[row_index], self.size)
        points = self.dense[row_index] if self.dense is not None else None
        dense = None if points is None else points * (image.shape[1], image.shape[0])
        # The evaluation pseudo-fakes must not change between epochs, so their key ignores the epoch.
        epoch = self.epoch if self.purpose == PURPOSE_TRAIN else 0
        if not self.paired:
            rng = sample_rng(self.seed, self.purpose, epoch, index, draw)
            if kind == "sbi":
                image = self_blend(image, landmarks, rng, self.sbi, dense).image
            if self.augment is not None:
                image = self.augment(image, rng)
            return image, (0 if kind == "real" else 1)
        # Both halves of a pair see the same generators: the same blend side and the same augmentation.
        blend_rng = sample_rng(self.seed, self.purpose, epoch, row_index, draw, 1)
        if kind == "sbi":
            image = self_blend(image, landmarks, blend_rng, self.sbi, dense).image
        elif kind == "real":
            image = blend_pair_real(image, blend_rng, self.sbi)
        if self.augment is not None:
            image = self.augment(image, sample_rng(self.seed, self.purpose, epoch, row_index, draw, 2))
        return image, (0 if kind == "real" else 1)

    def __getitem__(self, key):
        index = key[0] if isinstance(key, (tuple, list)) else key
        image, target = self.get_image(key)
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()
        return tensor, torch.tensor(float(target)), int(index)


def normalize_batch(images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float ImageNet-normalised, on the images' device (as :func:`preprocess_crops`)."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    out = (images.float().div_(255.0) - mean) / std
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def worker_init(_worker_id: int) -> None:
    """Loader workers: one thread each, since the workers themselves are the parallelism."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def collate(batch):
    """Stack ``(image, target, index)`` items into uint8 images, float targets and int64 indices."""
    images, targets, indices = zip(*batch)
    return torch.stack(images), torch.stack(targets), torch.as_tensor(indices, dtype=torch.int64)


__all__ = ["PURPOSE_EVAL_SBI", "PURPOSE_TRAIN", "CropDataset", "collate", "normalize_batch", "worker_init"]
