"""FaceForensics++ (official layout) -> :class:`~fakelens.data.records.VideoRecord` rows with its official split.

The official split files (``train/val/test.json``: lists of ``[id, id]`` pairs, 360/70/70) decide the split
of originals ``NNN`` and fakes ``T_S``; the pair is the group (``ffpp:183+253``). A copy of the official
lists ships as package data (``fakelens/data/ffpp_splits.json``, from github.com/ondyari/FaceForensics,
dataset/splits/*.json) and is used unless ``splits`` names a folder (or the root holds ``splits/``).

The DeepFakeDetection (DFD, Google/Jigsaw) part has 28 actors and is in no official split: its actors are
split deterministically (seeded hash ordering, ``dfd_val_fraction`` and ``dfd_test_fraction``, default
0.14 each, mirroring FF++'s 720/140/140 videos); a DFD fake ``T_S__scene__HASH`` follows the same
``cross_identity`` rule as Celeb-DF, and its group is the target actor (``ffpp-dfd:01``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fakelens.constants import SPLITS, VIDEO_SUFFIXES
from fakelens.data.records import (
    DatasetError,
    VideoRecord,
    assign_splits,
    check_cross,
    check_fraction,
    check_root,
    media_files,
    posix_relpath,
    split_of,
)

log = logging.getLogger(__name__)

#: FaceForensics++ manipulation methods (folder names under ``manipulated_sequences``).
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
#: The package data file with the official split.
FFPP_SPLITS_FILE = "ffpp_splits.json"
_DFD = "DeepFakeDetection"

_FFPP_ORIGINAL = re.compile(r"^(\d{3})$")
_FFPP_FAKE = re.compile(r"^(\d{3})_(\d{3})$")
_DFD_ORIGINAL = re.compile(r"^(\d+)__.+$")
_DFD_FAKE = re.compile(r"^(\d+)_(\d+)__.+$")


def _pairs(data, source: str) -> list[tuple[str, str]]:
    try:
        return [(str(a), str(b)) for a, b in data]
    except (ValueError, TypeError) as exc:
        raise DatasetError(f"{source}: expected a JSON list of [id, id] pairs ({exc})") from None


def load_ffpp_splits(folder: str | os.PathLike | None = None) -> dict[str, list[tuple[str, str]]]:
    """The official FF++ split: ``{"train"|"val"|"test": [(id, id), ...]}`` from ``folder/<split>.json``.

    With no folder, the copy of the official lists shipped with fakelens (360/70/70 pairs).
    """
    if folder is None:
        shipped = json.loads(resources.files("fakelens.data").joinpath(FFPP_SPLITS_FILE).read_text(encoding="utf-8"))
        return {split: _pairs(shipped[split], FFPP_SPLITS_FILE) for split in SPLITS}
    folder = Path(folder)
    splits = {}
    for split in SPLITS:
        path = folder / f"{split}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DatasetError(f"FF++ split file not found: {path}") from None
        except ValueError as exc:
            raise DatasetError(f"{path}: expected a JSON list of [id, id] pairs ({exc})") from None
        splits[split] = _pairs(data, str(path))
    return splits


@dataclass(frozen=True)
class _Found:
    """A video with an FF++ name: ``ids`` target first; ``kind`` ``"ffpp"`` or ``"dfd"``."""

    relpath: str
    label: str
    ids: tuple[str, ...]
    method: str
    kind: str


def _check_layout(root: Path, compression: str) -> Path:
    """The ``manipulated_sequences`` folder, once the layout and the compression are found."""
    originals, manipulated = root / "original_sequences", root / "manipulated_sequences"
    if not originals.is_dir() and not manipulated.is_dir():
        raise DatasetError(f"{root} is not a FaceForensics++ folder: expected original_sequences/ and manipulated_sequences/")
    if not any(root.glob(f"*_sequences/*/{compression}/videos")):
        available = sorted({p.parent.name for p in root.glob("*_sequences/*/*/videos")})
        raise DatasetError(f"no FF++ videos at compression {compression!r} under {root} (found: {', '.join(available) or 'none'})")
    return manipulated


def _method_dirs(manipulated: Path, methods: Sequence[str] | None) -> list[str]:
    """The manipulation folders to read: all found, or ``methods`` (each must exist)."""
    found = sorted(p.name for p in manipulated.iterdir() if p.is_dir()) if manipulated.is_dir() else []
    if methods is None:
        return found
    unknown = sorted(set(methods) - set(found))
    if unknown:
        raise DatasetError(f"FF++ method(s) not found under {manipulated}: {', '.join(unknown)} (found: {', '.join(found) or 'none'})")
    return [m for m in found if m in set(methods)]


def _find_videos(root: Path, compression: str, method_dirs: Sequence[str], every: bool) -> list[_Found]:
    """Every video with an FF++ name: YouTube originals with any FF++ method, DFD actors with DeepFakeDetection
    (both with ``every``, when no method was asked for and none is present)."""
    originals, manipulated = root / "original_sequences", root / "manipulated_sequences"
    sources = []  # (folder, pattern, label, method, kind)
    if every or any(m != _DFD for m in method_dirs):
        sources.append((originals / "youtube", _FFPP_ORIGINAL, "real", "", "ffpp"))
    if every or _DFD in method_dirs:
        sources.append((originals / "actors", _DFD_ORIGINAL, "real", "", "dfd"))
    for method in method_dirs:
        dfd = method == _DFD
        sources.append((manipulated / method, _DFD_FAKE if dfd else _FFPP_FAKE, "fake", method, "dfd" if dfd else "ffpp"))
    found, skipped = [], []
    for folder, pattern, label, method, kind in sources:
        for path in media_files(folder / compression / "videos", VIDEO_SUFFIXES):
            match = pattern.match(path.stem)
            if match:
                found.append(_Found(posix_relpath(path, root), label, match.groups(), method, kind))
            else:
                skipped.append(path.name)
    if skipped:
        log.warning("FF++: ignored %d files with unexpected names (e.g. %s)", len(skipped), skipped[0])
    if not found:
        raise DatasetError(f"no FF++ videos found under {root} at compression {compression!r}")
    return found


def _official_sides(official: dict[str, list[tuple[str, str]]], found: Sequence[_Found], seed: int) -> tuple[dict[str, str], dict[str, str]]:
    """``(split of each FF++ id, group of each id)`` from the official pairs; strays get a seeded split."""
    split_of_id, pair_of = {}, {}
    for split, pairs in official.items():
        for a, b in pairs:
            group = "+".join(sorted((a, b)))
            for i in (a, b):
                pair_of[i], split_of_id[i] = group, split
    # Ids outside the official lists (a partial or extended copy) get a deterministic split of their own.
    strays = sorted({i for f in found if f.kind == "ffpp" for i in f.ids if i not in split_of_id})
    if strays:
        log.warning("FF++: %d ids are in no official split (e.g. %s); splitting them by seeded hash", len(strays), strays[0])
        split_of_id.update(assign_splits(strays, 70 / 500, 70 / 500, seed=seed))
        pair_of.update({i: i for i in strays})
    return split_of_id, pair_of


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
        the copy of the official lists shipped with fakelens.
    seed, dfd_val_fraction, dfd_test_fraction : the deterministic split of the DFD actors (0, 0.14, 0.14).
    cross_identity : what to do with a DFD fake whose two actors fall in different splits (``"drop"``,
        default, or ``"target"``); also applies to an FF++ fake whose two ids are in different pairs.
    """
    root = check_root(root)
    check_fraction("dfd_val_fraction", dfd_val_fraction)
    check_fraction("dfd_test_fraction", dfd_test_fraction)
    check_cross(cross_identity)
    manipulated = _check_layout(root, compression)
    method_dirs = _method_dirs(manipulated, methods)
    if splits is None and (root / "splits" / "train.json").is_file():
        splits = root / "splits"
    official = load_ffpp_splits(splits)
    found = _find_videos(root, compression, method_dirs, every=methods is None and not method_dirs)
    split_of_id, pair_of = _official_sides(official, found, seed)
    dfd_actors = {i for f in found if f.kind == "dfd" for i in f.ids}
    dfd_side = assign_splits(dfd_actors, dfd_val_fraction, dfd_test_fraction, seed=seed)

    records, dropped = [], 0
    for f in found:
        if f.kind == "dfd":
            split, group = split_of(f.ids, dfd_side, cross_identity), f"ffpp-dfd:{f.ids[0]}"
        else:
            split, group = split_of(f.ids, split_of_id, cross_identity), f"ffpp:{pair_of[f.ids[0]]}"
        if split is None:
            dropped += 1
            continue
        records.append(
            VideoRecord(
                path=str(root / f.relpath),
                relpath=f.relpath,
                label=f.label,
                split=split,
                group=group,
                identity="+".join(f.ids),
                method=f.method,
                dataset=f"ffpp-{compression}",
            )
        )
    if dropped:
        log.info("FF++: left out %d fakes whose two identities fall in different splits (cross_identity='drop')", dropped)
    return records


__all__ = ["FFPP_METHODS", "load_ffpp_splits", "read_ffpp"]
