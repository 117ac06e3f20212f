"""Celeb-DF v2 -> :class:`~fakelens.data.records.VideoRecord` rows with leak-free splits.

``List_of_testing_videos.txt`` (``<label> <folder>/<file>``, where **1 = real and 0 = fake**) is the test
split. The rest is split into train and val *by identity*: a seeded hash ordering of the celebrity ids
picks ``val_fraction`` of them for val. A fake ``idX_idY_NNNN`` shows target X's video with the face of
source Y, so it involves both identities; with ``cross_identity="drop"`` (default) a fake whose X and Y
fall on different sides is left out, so no identity is in both train and val (only fakes are dropped, and
fakes outnumber reals ~6.4:1). With ``cross_identity="target"`` such a fake follows its target X instead
(Y then leaks). YouTube-real videos carry no identity id: each is its own group, split with the same
fraction.

**The official test set shares identities with the training videos by design** (the same 59 celebrities
appear in Celeb-real, Celeb-synthesis and the test list); Celeb-DF test scores therefore measure
generalisation to new videos of known people, not to unseen people.

The group is the target identity (``celebdf:id0``) or the YouTube-real video (``celebdf:youtube-00000``).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from fakelens.constants import VIDEO_SUFFIXES
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

CELEBDF_FOLDERS = {"Celeb-real": "real", "YouTube-real": "real", "Celeb-synthesis": "fake"}
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"
CELEBDF_METHOD = "Celeb-synthesis"

_CELEB_REAL = re.compile(r"^(id\d+)_\d+$")
_CELEB_FAKE = re.compile(r"^(id\d+)_(id\d+)_\d+$")
_YOUTUBE = re.compile(r"^\d+$")


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
            raise DatasetError(f"{path}:{number}: expected '<1|0> <folder>/<file>' (1 = real, 0 = fake), got {line!r}")
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


def _find_videos(root: Path, test_labels: dict[str, str]) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(relpath, label, identities)`` of every video with a Celeb-DF name, checked against the test list."""
    found = []
    skipped = []
    for folder, label in CELEBDF_FOLDERS.items():
        for path in media_files(root / folder, VIDEO_SUFFIXES):
            ids = _celebdf_ids(folder, path.stem)
            if ids is None:
                skipped.append(path.name)
                continue
            relpath = posix_relpath(path, root)
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
    missing = sorted(set(test_labels) - {relpath for relpath, _, _ in found})
    if missing:
        log.warning("Celeb-DF: %d of %d test-list videos are missing (e.g. %s)", len(missing), len(test_labels), missing[0])
    return found


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
    root = check_root(root)
    check_fraction("val_fraction", val_fraction)
    check_cross(cross_identity)
    if not any((root / folder).is_dir() for folder in CELEBDF_FOLDERS):
        raise DatasetError(f"{root} is not a Celeb-DF v2 folder: expected {', '.join(f + '/' for f in CELEBDF_FOLDERS)}")
    test_labels = read_celebdf_test_list(test_list or root / CELEBDF_TEST_LIST)
    found = _find_videos(root, test_labels)

    trainval_ids = {i for relpath, _, ids in found if relpath not in test_labels for i in ids}
    side = assign_splits((i for i in trainval_ids if i.startswith("id")), val_fraction, seed=seed)
    side.update(assign_splits((i for i in trainval_ids if i.startswith("youtube-")), val_fraction, seed=seed))

    records, dropped = [], 0
    for relpath, label, ids in found:
        split = "test" if relpath in test_labels else split_of(ids, side, cross_identity)
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
            "Celeb-DF: left out %d fakes whose target and source identities fall on different sides of train/val (cross_identity='drop')",
            dropped,
        )
    return records


__all__ = ["CELEBDF_FOLDERS", "CELEBDF_TEST_LIST", "read_celebdf", "read_celebdf_test_list"]
