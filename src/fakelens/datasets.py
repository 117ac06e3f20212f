"""Dataset readers: Celeb-DF v2, FaceForensics++ and plain folders -> :class:`VideoRecord` rows.

Every reader returns one record per video (or image) with its label (``"real"``/``"fake"``), its split
(``"train"``/``"val"``/``"test"``) and its leakage ``group``, so that preprocessing and training never
need to know a dataset's layout. Splits are deterministic for a given ``seed``.

Leakage rules
-------------
* **Celeb-DF v2.** ``List_of_testing_videos.txt`` (``<label> <folder>/<file>``, where **1 = real and
  0 = fake**) is the test split. The rest is split into train and val *by identity*: a seeded hash
  ordering of the celebrity ids picks ``val_fraction`` of them for val. A fake ``idX_idY_NNNN`` shows
  target X's video with the face of source Y, so it involves both identities; with
  ``cross_identity="drop"`` (default) a fake whose X and Y fall on different sides is left out, so no
  identity is in both train and val (only fakes are dropped, and fakes outnumber reals ~6.4:1). With
  ``cross_identity="target"`` such a fake follows its target X instead (Y then leaks). YouTube-real
  videos carry no identity id: each is its own group, split with the same fraction.
  **The official test set shares identities with the training videos by design** (the same 59
  celebrities appear in Celeb-real, Celeb-synthesis and the test list); Celeb-DF test scores therefore
  measure generalisation to new videos of known people, not to unseen people.
* **FaceForensics++.** The official split files (``train/val/test.json``: lists of ``[id, id]``
  pairs, 360/70/70) decide the split of originals ``NNN`` and fakes ``T_S``; the pair is the group. A
  copy of the official lists is embedded below and used unless ``splits`` names a folder (or the root
  holds ``splits/``). The DeepFakeDetection (DFD, Google/Jigsaw) part has 28 actors and is in no
  official split: its actors are split deterministically (seeded hash ordering, ``dfd_val_fraction``
  and ``dfd_test_fraction``, default 0.14 each, mirroring FF++'s 720/140/140 videos); a DFD fake
  ``T_S__scene__HASH`` follows the same ``cross_identity`` rule as Celeb-DF.
* **Plain folders.** ``real/`` and ``fake/`` anywhere in the path give the label; a ``train/``,
  ``val/`` or ``test/`` folder in the path gives the split, otherwise groups are split by a seeded hash.
  The group is the file stem, or the folder for images inside a per-video folder of frames.

``group`` is always the leakage unit that stays on one side: the FF++ id pair (``ffpp:183+253``), the
target identity for Celeb-DF (``celebdf:id0``) and DFD (``ffpp-dfd:01``), a YouTube-real video
(``celebdf:youtube-00000``), or a folder stem. ``identity`` names every identity a video involves,
target first (``id0+id16``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from fakelens.errors import FakelensError
from fakelens.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES

log = logging.getLogger(__name__)

LABELS = ("real", "fake")
SPLITS = ("train", "val", "test")
DATASETS = ("celebdf", "ffpp", "folder", "list")
BALANCE_MODES = ("none", "videos", "frames")
CROSS_IDENTITY = ("drop", "target")

#: FaceForensics++ manipulation methods (folder names under ``manipulated_sequences``).
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
FFPP_COMPRESSIONS = ("raw", "c23", "c40")

CELEBDF_FOLDERS = {"Celeb-real": "real", "YouTube-real": "real", "Celeb-synthesis": "fake"}
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"
CELEBDF_METHOD = "Celeb-synthesis"

_CELEB_REAL = re.compile(r"^(id\d+)_\d+$")
_CELEB_FAKE = re.compile(r"^(id\d+)_(id\d+)_\d+$")
_YOUTUBE = re.compile(r"^\d+$")
_FFPP_ORIGINAL = re.compile(r"^(\d{3})$")
_FFPP_FAKE = re.compile(r"^(\d{3})_(\d{3})$")
_DFD_ORIGINAL = re.compile(r"^(\d+)__.+$")
_DFD_FAKE = re.compile(r"^(\d+)_(\d+)__.+$")

_SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                  "validation": "val", "test": "test", "testing": "test"}


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


# --------------------------------------------------------------------------- helpers


def _hash_order(keys: Iterable[str], seed: int) -> list[str]:
    """Keys in a seeded pseudo-random order that does not depend on Python's hash salt or on set order."""
    return sorted(set(keys), key=lambda k: (hashlib.sha1(f"{seed}:{k}".encode()).hexdigest(), k))


def _take(n_keys: int, fraction: float) -> int:
    """How many of ``n_keys`` a fraction selects: at least one when the fraction is positive, never all."""
    if fraction <= 0 or n_keys < 2:
        return 0
    return min(max(1, round(fraction * n_keys)), n_keys - 1)


def assign_splits(
    keys: Iterable[str], val_fraction: float, test_fraction: float = 0.0, seed: int = 0
) -> dict[str, str]:
    """Assign each key (identity, group) to train/val/test deterministically by a seeded hash ordering."""
    ordered = _hash_order(keys, seed)
    n_test = _take(len(ordered), test_fraction)
    # Both fractions are of all keys; train always keeps at least one.
    n_val = min(_take(len(ordered), val_fraction), max(0, len(ordered) - n_test - 1))
    splits = {}
    for i, key in enumerate(ordered):
        splits[key] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return splits


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise DatasetError(f"{name} must be in [0, 1), got {value}")


def _check_root(root: str | os.PathLike) -> Path:
    path = Path(root)
    if not path.exists():
        raise DatasetError(f"dataset folder not found: {path}")
    if not path.is_dir():
        raise DatasetError(f"not a folder: {path}")
    return Path(os.path.abspath(path))


def _media_files(folder: Path, suffixes: frozenset[str]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith(".") and p.is_file()
    )


def _relpath(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _split_of(
    ids: Sequence[str], side: dict[str, str], cross_identity: str
) -> str | None:
    """The split of a video involving ``ids`` (target first), or None when it straddles and is dropped."""
    sides = {side[i] for i in ids}
    if len(sides) == 1:
        return sides.pop()
    return side[ids[0]] if cross_identity == "target" else None


def _check_cross(cross_identity: str) -> None:
    if cross_identity not in CROSS_IDENTITY:
        raise DatasetError(f"cross_identity must be one of {', '.join(CROSS_IDENTITY)}, got {cross_identity!r}")


# --------------------------------------------------------------------------- Celeb-DF v2


def read_celebdf_test_list(path: str | os.PathLike) -> dict[str, str]:
    """Parse Celeb-DF's ``List_of_testing_videos.txt``: ``<label> <folder>/<file>`` with 1 = real, 0 = fake.

    Returns ``{relpath: "real" | "fake"}``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Celeb-DF test list not found: {path}")
    listed: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise DatasetError(
                f"{path}:{number}: expected '<1|0> <folder>/<file>' (1 = real, 0 = fake), got {line!r}"
            )
        # Celeb-DF's own convention is 1 = real, the opposite of ours (1 = fake).
        listed[parts[1].strip().replace("\\", "/")] = "real" if parts[0] == "1" else "fake"
    if not listed:
        raise DatasetError(f"Celeb-DF test list is empty: {path}")
    return listed


def _celebdf_ids(folder: str, stem: str) -> tuple[str, ...] | None:
    if folder == "YouTube-real":
        return (f"youtube-{stem}",) if _YOUTUBE.match(stem) else None
    match = (_CELEB_FAKE if folder == "Celeb-synthesis" else _CELEB_REAL).match(stem)
    return match.groups() if match else None


def read_celebdf(
    root: str | os.PathLike,
    val_fraction: float = 0.15,
    seed: int = 0,
    test_list: str | os.PathLike | None = None,
    cross_identity: str = "drop",
) -> list[VideoRecord]:
    """Read Celeb-DF v2 (``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/``, test list) into records.

    Parameters
    ----------
    root : the Celeb-DF-v2 folder.
    val_fraction : share of identities (and of YouTube-real videos) put in val (default 0.15).
    seed : seed of the train/val assignment (default 0).
    test_list : the official test list; default ``root/List_of_testing_videos.txt``.
    cross_identity : ``"drop"`` (default) leaves out train/val fakes whose target and source identities
        fall on different sides; ``"target"`` keeps them with their target identity (source leaks).
    """
    root = _check_root(root)
    _check_fraction("val_fraction", val_fraction)
    _check_cross(cross_identity)
    if not any((root / folder).is_dir() for folder in CELEBDF_FOLDERS):
        raise DatasetError(
            f"{root} is not a Celeb-DF v2 folder: expected {', '.join(f + '/' for f in CELEBDF_FOLDERS)}"
        )
    test_labels = read_celebdf_test_list(test_list or root / CELEBDF_TEST_LIST)

    found: list[tuple[str, str, tuple[str, ...]]] = []  # (relpath, label, identities)
    skipped = []
    for folder, label in CELEBDF_FOLDERS.items():
        for path in _media_files(root / folder, VIDEO_SUFFIXES):
            ids = _celebdf_ids(folder, path.stem)
            if ids is None:
                skipped.append(path.name)
                continue
            relpath = _relpath(path, root)
            listed = test_labels.get(relpath)
            if listed is not None and listed != label:
                raise DatasetError(
                    f"the test list labels {relpath} {listed!r} but it is in {folder}/ ({label}); "
                    "is the list's 1 = real, 0 = fake convention reversed?"
                )
            found.append((relpath, label, ids))
    if skipped:
        log.warning("Celeb-DF: ignored %d files with unexpected names (e.g. %s)", len(skipped), skipped[0])
    if not found:
        raise DatasetError(f"no Celeb-DF videos found under {root}")
    present = {relpath for relpath, _, _ in found}
    missing = sorted(set(test_labels) - present)
    if missing:
        log.warning("Celeb-DF: %d of %d test-list videos are missing (e.g. %s)", len(missing), len(test_labels), missing[0])

    trainval_ids = {i for relpath, _, ids in found if relpath not in test_labels for i in ids}
    side = assign_splits((i for i in trainval_ids if i.startswith("id")), val_fraction, seed=seed)
    side.update(assign_splits((i for i in trainval_ids if i.startswith("youtube-")), val_fraction, seed=seed))

    records, dropped = [], 0
    for relpath, label, ids in found:
        if relpath in test_labels:
            split = "test"
        else:
            split = _split_of(ids, side, cross_identity)
            if split is None:
                dropped += 1
                continue
        records.append(
            VideoRecord(
                path=str(root / relpath),
                relpath=relpath,
                label=label,
                split=split,
                group=f"celebdf:{ids[0]}",
                identity="+".join(ids),
                method=CELEBDF_METHOD if label == "fake" else "",
                dataset="celebdf-v2",
            )
        )
    if dropped:
        log.info(
            "Celeb-DF: left out %d fakes whose target and source identities fall on different sides of "
            "train/val (cross_identity='drop')",
            dropped,
        )
    return records


# --------------------------------------------------------------------------- FaceForensics++


def _parse_pairs(text: str) -> list[tuple[str, str]]:
    return [tuple(item.split("_")) for item in text.split()]


def load_ffpp_splits(folder: str | os.PathLike | None = None) -> dict[str, list[tuple[str, str]]]:
    """The official FF++ split: ``{"train"|"val"|"test": [(id, id), ...]}`` from ``folder/<split>.json``.

    With no folder, the copy of the official lists embedded in this module (360/70/70 pairs).
    """
    if folder is None:
        return {split: _parse_pairs(text) for split, text in _FFPP_OFFICIAL_SPLITS.items()}
    folder = Path(folder)
    splits = {}
    for split in SPLITS:
        path = folder / f"{split}.json"
        try:
            pairs = json.loads(path.read_text(encoding="utf-8"))
            splits[split] = [(str(a), str(b)) for a, b in pairs]
        except FileNotFoundError:
            raise DatasetError(f"FF++ split file not found: {path}") from None
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"{path}: expected a JSON list of [id, id] pairs ({exc})") from None
    return splits


def read_ffpp(
    root: str | os.PathLike,
    compression: str = "c23",
    methods: Sequence[str] | None = None,
    splits: str | os.PathLike | None = None,
    seed: int = 0,
    dfd_val_fraction: float = 0.14,
    dfd_test_fraction: float = 0.14,
    cross_identity: str = "drop",
) -> list[VideoRecord]:
    """Read FaceForensics++ in its official layout into records, one per video, ``method`` per folder.

    Parameters
    ----------
    root : the folder holding ``original_sequences/`` and ``manipulated_sequences/``.
    compression : ``"c23"`` (default), ``"c40"`` or ``"raw"``.
    methods : manipulation folders to read (default: every folder found, normally
        Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter and DeepFakeDetection). YouTube
        originals come with any FF++ method, the DFD actor originals with DeepFakeDetection.
    splits : folder with the official ``train/val/test.json``; default ``root/splits`` if present, else
        the embedded copy of the official lists.
    seed, dfd_val_fraction, dfd_test_fraction : the deterministic split of the DFD actors (0, 0.14, 0.14).
    cross_identity : what to do with a DFD fake whose two actors fall in different splits (``"drop"``,
        default, or ``"target"``); also applies to an FF++ fake whose two ids are in different pairs.
    """
    root = _check_root(root)
    _check_fraction("dfd_val_fraction", dfd_val_fraction)
    _check_fraction("dfd_test_fraction", dfd_test_fraction)
    _check_cross(cross_identity)
    originals, manipulated = root / "original_sequences", root / "manipulated_sequences"
    if not originals.is_dir() and not manipulated.is_dir():
        raise DatasetError(
            f"{root} is not a FaceForensics++ folder: expected original_sequences/ and manipulated_sequences/"
        )
    available = sorted({p.parent.name for p in root.glob("*_sequences/*/*/videos")})
    if not any(root.glob(f"*_sequences/*/{compression}/videos")):
        raise DatasetError(
            f"no FF++ videos at compression {compression!r} under {root} "
            f"(found: {', '.join(available) or 'none'})"
        )
    method_dirs = sorted(p.name for p in manipulated.iterdir() if p.is_dir()) if manipulated.is_dir() else []
    if methods is not None:
        unknown = sorted(set(methods) - set(method_dirs))
        if unknown:
            raise DatasetError(
                f"FF++ method(s) not found under {manipulated}: {', '.join(unknown)} "
                f"(found: {', '.join(method_dirs) or 'none'})"
            )
        method_dirs = [m for m in method_dirs if m in set(methods)]
    with_dfd = "DeepFakeDetection" in method_dirs or (methods is None and not method_dirs)
    with_youtube = any(m != "DeepFakeDetection" for m in method_dirs) or (methods is None and not method_dirs)

    if splits is None and (root / "splits" / "train.json").is_file():
        splits = root / "splits"
    official = load_ffpp_splits(splits)
    pair_of, split_of_id = {}, {}
    for split, pairs in official.items():
        for a, b in pairs:
            group = "+".join(sorted((a, b)))
            for i in (a, b):
                pair_of[i], split_of_id[i] = group, split

    # (relpath, label, ids target-first, method, kind) with kind "ffpp" or "dfd"
    found: list[tuple[str, str, tuple[str, ...], str, str]] = []
    skipped = []
    if with_youtube:
        for path in _media_files(originals / "youtube" / compression / "videos", VIDEO_SUFFIXES):
            match = _FFPP_ORIGINAL.match(path.stem)
            if match:
                found.append((_relpath(path, root), "real", match.groups(), "", "ffpp"))
            else:
                skipped.append(path.name)
    if with_dfd:
        for path in _media_files(originals / "actors" / compression / "videos", VIDEO_SUFFIXES):
            match = _DFD_ORIGINAL.match(path.stem)
            if match:
                found.append((_relpath(path, root), "real", match.groups(), "", "dfd"))
            else:
                skipped.append(path.name)
    for method in method_dirs:
        dfd = method == "DeepFakeDetection"
        for path in _media_files(manipulated / method / compression / "videos", VIDEO_SUFFIXES):
            match = (_DFD_FAKE if dfd else _FFPP_FAKE).match(path.stem)
            if match:
                found.append((_relpath(path, root), "fake", match.groups(), method, "dfd" if dfd else "ffpp"))
            else:
                skipped.append(path.name)
    if skipped:
        log.warning("FF++: ignored %d files with unexpected names (e.g. %s)", len(skipped), skipped[0])
    if not found:
        raise DatasetError(f"no FF++ videos found under {root} at compression {compression!r}")

    # Ids outside the official lists (a partial or extended copy) get a deterministic split of their own.
    strays = sorted({i for _, _, ids, _, kind in found if kind == "ffpp" for i in ids if i not in split_of_id})
    if strays:
        log.warning("FF++: %d ids are in no official split (e.g. %s); splitting them by seeded hash", len(strays), strays[0])
        split_of_id.update(assign_splits(strays, 70 / 500, 70 / 500, seed=seed))
        pair_of.update({i: i for i in strays})
    dfd_actors = {i for _, _, ids, _, kind in found if kind == "dfd" for i in ids}
    dfd_side = assign_splits(dfd_actors, dfd_val_fraction, dfd_test_fraction, seed=seed)

    records, dropped = [], 0
    for relpath, label, ids, method, kind in found:
        if kind == "dfd":
            split = _split_of(ids, dfd_side, cross_identity)
            group = f"ffpp-dfd:{ids[0]}"
        else:
            split = _split_of(ids, split_of_id, cross_identity)
            group = f"ffpp:{pair_of[ids[0]]}"
        if split is None:
            dropped += 1
            continue
        records.append(
            VideoRecord(
                path=str(root / relpath),
                relpath=relpath,
                label=label,
                split=split,
                group=group,
                identity="+".join(ids),
                method=method,
                dataset=f"ffpp-{compression}",
            )
        )
    if dropped:
        log.info("FF++: left out %d fakes whose two identities fall in different splits (cross_identity='drop')", dropped)
    return records


# --------------------------------------------------------------------------- plain folders


def _walk_files(root: Path) -> Iterable[Path]:
    """Every non-hidden file under ``root``, following folder links once (no cycles), in sorted order."""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


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
    root = _check_root(root)
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    dataset = name or root.name
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    found = []  # (relpath, label, split or None, group)
    unlabelled = 0
    for path in _walk_files(root):
        if path.suffix.lower() not in suffixes:
            continue
        parts = [p.lower() for p in path.relative_to(root).parts[:-1]]
        labels = [p for p in parts if p in LABELS]
        if not labels:
            unlabelled += 1
            continue
        split = next((_SPLIT_FOLDERS[p] for p in parts if p in _SPLIT_FOLDERS), None)
        parent = path.parent.name.lower()
        is_frame_folder = path.suffix.lower() in IMAGE_SUFFIXES and parent not in LABELS and parent not in _SPLIT_FOLDERS
        # Frames saved as a folder per video share that folder as their group; otherwise the stem groups.
        group = path.parent.name if is_frame_folder else path.stem
        found.append((_relpath(path, root), labels[0], split, group))
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
    import csv

    root = _check_root(root)
    _check_fraction("val_fraction", val_fraction)
    list_path = Path(list_file) if list_file else root / "media.csv"
    if not list_path.is_file():
        raise DatasetError(f"list file not found: {list_path}")
    with open(list_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise DatasetError(f"{list_path}: needs at least the columns path and label")
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    kept = []
    for row in rows:
        label = row["label"].strip().lower()
        if label not in LABELS or Path(row["path"]).suffix.lower() not in suffixes:
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
    import inspect

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
    queues = [_hash_order(members[g], seed) for g in _hash_order(members, seed)]
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
    "VideoRecord",
    "DatasetError",
    "DATASETS",
    "BALANCE_MODES",
    "FFPP_METHODS",
    "read_celebdf",
    "read_celebdf_test_list",
    "read_ffpp",
    "load_ffpp_splits",
    "read_folder",
    "read_dataset",
    "assign_splits",
    "balance",
    "class_counts",
    "format_counts",
]

#: The official FaceForensics++ split (github.com/ondyari/FaceForensics, dataset/splits/*.json), as
#: ``target_source`` pairs; each id is in exactly one pair. Embedded so a download without the json
#: files still gets the official split.
_FFPP_OFFICIAL_SPLITS = {
    "train": """
    071_054 087_081 881_856 187_234 645_688 754_758 811_920 710_788 628_568 312_021 950_836
    059_050 524_580 751_752 918_934 604_703 296_293 518_131 536_540 969_897 372_413 357_432
    809_799 092_098 302_323 981_985 512_495 088_060 795_907 535_587 297_270 838_810 850_764
    476_400 268_269 033_097 226_491 784_769 195_442 678_460 320_328 451_449 409_382 556_588
    027_009 196_310 241_210 295_099 043_110 753_789 716_712 508_831 005_010 276_185 498_433
    294_292 105_180 984_967 318_334 356_324 344_020 289_228 022_489 137_165 095_053 999_960
    481_469 534_490 543_559 150_153 598_178 475_265 671_677 204_230 863_853 561_998 163_031
    655_444 038_125 735_774 184_205 499_539 717_684 878_866 127_129 286_267 032_944 681_711
    236_237 989_993 537_563 814_871 509_525 221_206 808_829 696_686 431_447 737_719 609_596
    408_424 976_954 156_243 434_438 627_658 025_067 635_642 523_541 572_554 215_208 651_835
    975_978 792_903 931_936 846_845 899_914 209_016 398_457 797_844 360_437 738_804 694_767
    790_014 657_644 374_407 728_673 193_030 876_891 553_545 331_260 873_872 109_107 121_093
    143_140 778_798 983_113 504_502 709_390 940_941 894_848 311_387 562_626 330_162 112_892
    765_867 124_085 665_679 414_385 555_516 072_037 086_090 202_348 341_340 333_377 082_103
    569_921 750_743 211_177 770_791 329_327 613_685 007_132 304_300 860_905 986_994 378_368
    761_766 232_248 136_285 601_653 693_698 359_317 246_258 500_592 776_676 262_301 307_365
    600_505 833_826 361_448 473_366 885_802 277_335 667_446 522_337 018_019 430_459 886_877
    456_435 239_218 771_849 065_089 654_648 151_225 152_149 229_247 624_570 290_240 011_805
    461_250 251_375 639_841 602_397 028_068 338_336 964_174 782_787 478_506 313_283 659_749
    690_689 893_913 197_224 253_183 373_394 803_017 305_513 051_332 238_282 621_546 401_395
    510_528 410_411 049_946 663_231 477_487 252_266 952_882 315_322 216_164 061_080 603_575
    828_830 723_704 870_001 201_203 652_773 108_052 272_396 040_997 988_966 281_474 077_100
    146_256 972_718 303_309 582_172 222_168 884_968 217_117 118_120 242_182 858_861 101_096
    697_581 763_930 839_864 542_520 122_144 687_615 544_532 721_715 179_212 591_605 275_887
    996_056 825_074 530_594 757_573 611_760 189_200 392_339 734_699 977_075 879_963 910_911
    889_045 962_929 515_519 062_066 937_888 199_181 785_736 079_076 155_576 748_355 819_786
    577_593 464_463 439_441 574_547 747_854 403_497 965_948 726_713 943_942 160_928 496_417
    700_813 756_503 213_083 039_058 781_806 620_619 351_346 959_957 264_271 006_002 391_406
    631_551 501_326 412_274 641_662 111_094 166_167 130_139 938_987 055_147 990_008 013_883
    614_616 772_708 840_800 415_484 287_426 680_486 057_070 590_034 194_235 291_874 902_901
    343_363 279_298 393_405 674_744 244_822 133_148 636_578 637_427 041_063 869_780 733_935
    259_345 069_961 783_916 191_188 526_436 123_119 207_908 796_740 815_730 173_171 383_353
    458_722 533_450 618_629 646_643 531_549 428_466 859_843 692_610
    """,
    "val": """
    720_672 939_115 284_263 402_453 820_818 762_832 834_852 922_898 104_126 106_198 159_175
    416_342 857_909 599_585 443_514 566_617 472_511 325_492 816_649 583_558 933_925 419_824
    465_482 565_589 261_254 992_980 157_245 571_746 947_951 926_900 493_538 468_470 915_895
    362_354 440_364 640_638 827_817 793_768 837_890 004_982 192_134 745_777 299_145 742_775
    586_223 483_370 779_794 971_564 273_807 991_064 664_668 823_584 656_666 557_560 471_455
    042_084 979_875 316_369 091_116 023_923 702_612 904_046 647_622 958_956 606_567 632_548
    927_912 350_349 595_597 727_729
    """,
    "test": """
    953_974 012_026 078_955 623_630 919_015 367_371 847_906 529_633 418_507 227_169 389_480
    821_812 670_661 158_379 423_421 352_319 579_701 488_399 695_422 288_321 705_707 306_278
    865_739 995_233 755_759 467_462 314_347 741_731 970_973 634_660 494_445 706_479 186_170
    176_190 380_358 214_255 454_527 425_485 388_308 384_932 035_036 257_420 924_917 114_102
    732_691 550_452 280_249 842_714 625_650 024_073 044_945 896_128 862_047 607_683 517_521
    682_669 138_142 552_851 376_381 000_003 048_029 724_725 608_675 386_154 220_219 801_855
    161_141 949_868 880_135 429_404
    """,
}
