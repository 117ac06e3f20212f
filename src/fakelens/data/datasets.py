"""Dataset readers: Celeb-DF v2, FaceForensics++, plain folders and media lists -> :class:`VideoRecord` rows.

Every reader returns one record per video (or image) with its label (``"real"``/``"fake"``), its split
(``"train"``/``"val"``/``"test"``) and its leakage ``group``, so that preprocessing and training never
need to know a dataset's layout. Splits are deterministic for a given ``seed``.

Leakage rules
-------------
* **Celeb-DF v2** (:mod:`fakelens.data.celebdf`): the official test list is the test split; train and
  val are split by identity. Its test set shares identities with training by design.
* **FaceForensics++** (:mod:`fakelens.data.ffpp`): the official pair split; DeepFakeDetection actors
  split by seeded hash.
* **Plain folders** (:func:`read_folder`). ``real/`` and ``fake/`` anywhere in the path give the label;
  a ``train/``, ``val/`` or ``test/`` folder in the path gives the split, otherwise groups are split by a
  seeded hash. The group is the file stem, or the folder for images inside a per-video folder of frames.
* **Lists** (:func:`read_list`): a CSV of ``path,label[,group,method,dataset,split]``.

``group`` is always the leakage unit that stays on one side: the FF++ id pair (``ffpp:183+253``), the
target identity for Celeb-DF (``celebdf:id0``) and DFD (``ffpp-dfd:01``), a YouTube-real video
(``celebdf:youtube-00000``), or a folder stem. ``identity`` names every identity a video involves,
target first (``id0+id16``). With ``cross_identity="drop"`` (default) a fake whose identities fall on
two sides is left out; ``"target"`` keeps it with its target.
"""

from __future__ import annotations

import csv
import inspect
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from fakelens.constants import LABELS, SPLITS
from fakelens.data.celebdf import read_celebdf
from fakelens.data.ffpp import read_ffpp
from fakelens.data.records import (
    DatasetError,
    VideoRecord,
    assign_splits,
    check_fraction,
    check_root,
    hash_order,
    posix_relpath,
)
from fakelens.folders import describe_skipped, walk_media
from fakelens.media import suffix_kind

log = logging.getLogger(__name__)

DATASETS = ("celebdf", "ffpp", "folder", "list")
BALANCE_MODES = ("none", "videos", "frames")

_SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                  "validation": "val", "test": "test", "testing": "test"}  # fmt: skip


# --------------------------------------------------------------------------- plain folders


def read_folder(
    root: str | os.PathLike,
    val_fraction: float = 0.15,
    test_fraction: float = 0.0,
    seed: int = 0,
    name: str | None = None,
) -> list[VideoRecord]:
    """Read a folder with ``real/`` and ``fake/`` subfolders (at any depth) of videos and images.

    Parameters
    ----------
    root : the folder.
    val_fraction, test_fraction : share of groups put in val / test when the path names no split
        folder (``train/``, ``val/``, ``test/``) (defaults 0.15 and 0).
    seed : seed of that assignment (default 0).
    name : the ``dataset`` column (default: the folder's name).
    """
    root = check_root(root)
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    dataset = name or root.name
    found = []  # (relpath, label, split or None, group)
    unlabelled = 0
    media, skipped = walk_media(root)
    if skipped:
        log.warning("%s: %s", root, describe_skipped(skipped))
    for path in media:
        parts = [p.lower() for p in path.relative_to(root).parts[:-1]]
        labels = [p for p in parts if p in LABELS]
        if not labels:
            unlabelled += 1
            continue
        split = next((_SPLIT_FOLDERS[p] for p in parts if p in _SPLIT_FOLDERS), None)
        parent = path.parent.name.lower()
        is_frame_folder = suffix_kind(path) == "image" and parent not in LABELS and parent not in _SPLIT_FOLDERS
        # Frames saved as a folder per video share that folder as their group; otherwise the stem groups.
        group = path.parent.name if is_frame_folder else path.stem
        found.append((posix_relpath(path, root), labels[0], split, group))
    if unlabelled:
        log.warning("%s: ignored %d media files outside any real/ or fake/ folder", root, unlabelled)
    if not found:
        raise DatasetError(f"no media under a real/ or fake/ folder in {root}")
    side = assign_splits((g for _, _, s, g in found if s is None), val_fraction, test_fraction, seed=seed)
    return [
        VideoRecord(
            path=str(root / relpath),
            relpath=relpath,
            label=label,
            split=split or side[group],
            group=f"{dataset}:{group}",
            identity=group,
            method="",
            dataset=dataset,
        )
        for relpath, label, split, group in found
    ]


# --------------------------------------------------------------------------- lists


def read_list(
    root: str | os.PathLike,
    list_file: str | os.PathLike | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.0,
    seed: int = 0,
    val_groups: Sequence[str] = (),
    name: str | None = None,
) -> list[VideoRecord]:
    """Read media named in a CSV list, such as the ``media.csv`` of a curated pool.

    The list needs ``path`` (relative to ``root``) and ``label`` columns; ``group``, ``method``,
    ``dataset`` and ``split`` are used when present. Rows whose label is neither ``real`` nor ``fake``
    (e.g. ``unknown``) are skipped, never guessed. Groups without a ``split`` are assigned by a seeded
    hash, except ``val_groups``, which always go to val (e.g. to keep demo media out of training).

    Parameters
    ----------
    root : folder the paths are relative to.
    list_file : the CSV (default ``ROOT/media.csv``).
    val_fraction, test_fraction : share of groups for val / test (defaults 0.15 and 0).
    seed : seed of that assignment (default 0).
    val_groups : groups forced into val (default none).
    name : ``dataset`` value for rows without one (default: the folder's name).
    """
    root = check_root(root)
    check_fraction("val_fraction", val_fraction)
    list_path = Path(list_file) if list_file else root / "media.csv"
    if not list_path.is_file():
        raise DatasetError(f"list file not found: {list_path}")
    with open(list_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise DatasetError(f"{list_path}: needs at least the columns path and label")
    kept = []
    for row in rows:
        # Every row labelled real or fake is taken, whatever its file's suffix: preprocessing reads each file by
        # its content and reports the ones that are not media.
        label = row["label"].strip().lower()
        if label not in LABELS:
            continue
        group = row.get("group") or Path(row["path"]).stem
        kept.append((row, label, group))
    if not kept:
        raise DatasetError(f"{list_path}: no row labelled real or fake")
    forced = set(val_groups)
    missing = forced - {g for _, _, g in kept}
    if missing:
        raise DatasetError(f"val groups not in the list: {', '.join(sorted(missing))}")
    free = sorted({g for r, _, g in kept if not r.get("split") and g not in forced})
    side = assign_splits(free, val_fraction, test_fraction, seed=seed)
    side.update({g: "val" for g in forced})
    return [
        VideoRecord(
            path=str(root / row["path"]),
            relpath=row["path"],
            label=label,
            split=row.get("split") or side[group],
            group=group,
            identity=group,
            method=row.get("method", "") or "",
            dataset=row.get("dataset") or name or root.name,
        )
        for row, label, group in kept
    ]


# --------------------------------------------------------------------------- entry point, balancing


def read_dataset(root: str | os.PathLike, dataset: str, **options) -> list[VideoRecord]:
    """Read ``root`` with the reader for ``dataset`` (``"celebdf"``, ``"ffpp"``, ``"folder"`` or ``"list"``).

    ``options`` go to :func:`read_celebdf`, :func:`read_ffpp`, :func:`read_folder` or :func:`read_list`; options the
    chosen reader does not take are ignored, and ``None`` means its default.
    """
    readers = {"celebdf": read_celebdf, "ffpp": read_ffpp, "folder": read_folder, "list": read_list}
    if dataset not in readers:
        raise DatasetError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    reader = readers[dataset]
    accepted = set(inspect.signature(reader).parameters) - {"root"}
    return reader(root, **{k: v for k, v in options.items() if k in accepted and v is not None})


def balance(
    records: Sequence[VideoRecord],
    mode: str = "none",
    frames: int = 32,
    seed: int = 0,
    split: str = "train",
) -> list[VideoRecord]:
    """Balance the classes of one split (default train); other splits are returned untouched.

    * ``"none"``: the records as they are.
    * ``"videos"``: undersample the larger class to the size of the smaller one, spread over groups by
      round-robin (one video per group in turn, groups and videos in a seeded order), so every target
      identity keeps some of its videos.
    * ``"frames"``: keep every video and sample more frames from each video of the smaller class, so
      both classes give about the same number of frames: ``frames * n_larger / n_smaller`` (rounded).
      Short videos cap it at their frame count.
    """
    if mode not in BALANCE_MODES:
        raise DatasetError(f"balance must be one of {', '.join(BALANCE_MODES)}, got {mode!r}")
    records = list(records)
    chosen = [r for r in records if r.split == split]
    by_label = {label: [r for r in chosen if r.label == label] for label in LABELS}
    if mode == "none" or not all(by_label.values()):
        if mode != "none":
            log.warning("balance=%s: the %s split lacks a class; nothing to balance", mode, split)
        return records
    small, large = sorted(LABELS, key=lambda label: (len(by_label[label]), label))
    n_small, n_large = len(by_label[small]), len(by_label[large])
    if mode == "frames":
        boosted = max(frames, round(frames * n_large / n_small))
        return [replace(r, frames=boosted) if r.split == split and r.label == small else r for r in records]
    keep = set(_round_robin(by_label[large], n_small, seed))
    return [r for r in records if r.split != split or r.label == small or r.relpath in keep]


def _round_robin(records: Sequence[VideoRecord], count: int, seed: int) -> list[str]:
    """``count`` relpaths taken one per group in turn, groups and members in a seeded order."""
    members = defaultdict(list)
    for r in records:
        members[r.group].append(r.relpath)
    queues = [hash_order(members[g], seed) for g in hash_order(members, seed)]
    picked: list[str] = []
    depth = 0
    while len(picked) < count:
        for queue in queues:
            if depth < len(queue) and len(picked) < count:
                picked.append(queue[depth])
        depth += 1
    return picked


def class_counts(records: Iterable[VideoRecord]) -> dict[str, dict[str, int]]:
    """``{split: {"real": n, "fake": n}}`` over the records, splits in train/val/test order."""
    counts = Counter((r.split, r.label) for r in records)
    return {s: {label: counts[(s, label)] for label in LABELS} for s in SPLITS if counts[(s, "real")] + counts[(s, "fake")]}


def format_counts(counts: dict[str, dict[str, int]], unit: str = "videos") -> str:
    """A small text table of ``class_counts`` output."""
    lines = [f"{'split':<6} {'real':>8} {'fake':>8}  ({unit})"]
    for split, row in counts.items():
        lines.append(f"{split:<6} {row['real']:>8} {row['fake']:>8}")
    return "\n".join(lines)


__all__ = [
    "BALANCE_MODES",
    "DATASETS",
    "balance",
    "class_counts",
    "format_counts",
    "read_dataset",
    "read_folder",
    "read_list",
]
