"""What every dataset reader returns (:class:`VideoRecord`), and the split helpers they share.

Splits are deterministic for a given ``seed``: keys (identities, groups) are put in a seeded hash order
that depends neither on Python's hash salt nor on set order, and the first ones go to test, then val.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fakelens.constants import SPLITS
from fakelens.errors import FakelensError

#: What to do with a fake whose two identities fall in different splits: leave it out, or follow its target.
CROSS_IDENTITY = ("drop", "target")


class DatasetError(FakelensError):
    """A dataset folder or list does not have the layout its reader expects."""


@dataclass(frozen=True)
class VideoRecord:
    """One video (or image) of a dataset.

    ``path`` is absolute, ``relpath`` is relative to the dataset root with ``/`` separators (it names the
    video in manifests). ``frames`` is how many frames to sample from it; ``None`` means the
    preprocessing default (``balance(..., "frames")`` raises it for the minority class).
    """

    path: str
    relpath: str
    label: str
    split: str
    group: str
    identity: str
    method: str
    dataset: str
    frames: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- splits


def hash_order(keys: Iterable[str], seed: int) -> list[str]:
    """Keys in a seeded pseudo-random order that does not depend on Python's hash salt or on set order."""
    return sorted(set(keys), key=lambda k: (hashlib.sha1(f"{seed}:{k}".encode()).hexdigest(), k))


def _take(n_keys: int, fraction: float) -> int:
    """How many of ``n_keys`` a fraction selects: at least one when the fraction is positive, never all."""
    if fraction <= 0 or n_keys < 2:
        return 0
    return min(max(1, round(fraction * n_keys)), n_keys - 1)


def assign_splits(keys: Iterable[str], val_fraction: float, test_fraction: float = 0.0, seed: int = 0) -> dict[str, str]:
    """Assign each key (identity, group) to train/val/test deterministically by a seeded hash ordering."""
    ordered = hash_order(keys, seed)
    n_test = _take(len(ordered), test_fraction)
    # Both fractions are of all keys; train always keeps at least one.
    n_val = min(_take(len(ordered), val_fraction), max(0, len(ordered) - n_test - 1))
    splits = {}
    for i, key in enumerate(ordered):
        splits[key] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return splits


def split_of(ids: Sequence[str], side: dict[str, str], cross_identity: str) -> str | None:
    """The split of a video involving ``ids`` (target first), or None when it straddles and is dropped."""
    sides = {side[i] for i in ids}
    if len(sides) == 1:
        return sides.pop()
    return side[ids[0]] if cross_identity == "target" else None


def split_by_group(
    groups: Sequence[str],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    labels: Sequence[str] | None = None,
) -> dict[str, str]:
    """Assign every leakage group wholly to train/val/test, so no group is on two sides.

    Groups are shuffled with ``seed`` and dealt out greedily to the split furthest below its target share of
    *crops* (default 70/15/15). With ``labels`` (one per entry of ``groups``), REAL and FAKE crops are
    balanced separately, so val and test get both classes whenever the groups allow it.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError("fractions must be three non-negative numbers summing to 1")
    labels = list(labels) if labels is not None else ["any"] * len(groups)
    counts: dict[str, dict[str, int]] = {}
    for group, label in zip(groups, labels):
        counts.setdefault(group, {}).setdefault(label, 0)
        counts[group][label] += 1
    classes = sorted(set(labels))
    totals = {c: sum(v.get(c, 0) for v in counts.values()) for c in classes}
    names = sorted(counts)
    order = np.random.default_rng(seed).permutation(len(names))
    have = {s: {c: 0 for c in classes} for s in SPLITS}
    assignment = {}
    for i in order:
        group = names[i]

        def deficit(split: str, group: str = group) -> float:
            frac = fractions[SPLITS.index(split)]
            return sum((frac * totals[c] - have[split][c]) / max(totals[c], 1) for c in classes if counts[group].get(c, 0))

        choice = max((s for s in SPLITS if fractions[SPLITS.index(s)] > 0), key=deficit)
        assignment[group] = choice
        for c, n in counts[group].items():
            have[choice][c] += n
    return assignment


# --------------------------------------------------------------------------- checks and files


def check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise DatasetError(f"{name} must be in [0, 1), got {value}")


def check_cross(cross_identity: str) -> None:
    if cross_identity not in CROSS_IDENTITY:
        raise DatasetError(f"cross_identity must be one of {', '.join(CROSS_IDENTITY)}, got {cross_identity!r}")


def check_root(root: str | os.PathLike) -> Path:
    """``root`` as an absolute path, or :class:`DatasetError` when it is missing or not a folder."""
    path = Path(root)
    if not path.exists():
        raise DatasetError(f"dataset folder not found: {path}")
    if not path.is_dir():
        raise DatasetError(f"not a folder: {path}")
    return Path(os.path.abspath(path))


def media_files(folder: Path, suffixes: frozenset[str]) -> list[Path]:
    """The non-hidden files of ``folder`` (not below it) with one of ``suffixes``, sorted; none if it is missing."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith(".") and p.is_file())


def posix_relpath(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with ``/`` separators (how records and manifests name media)."""
    return path.relative_to(root).as_posix()


__all__ = ["CROSS_IDENTITY", "DatasetError", "VideoRecord", "assign_splits", "split_by_group"]
