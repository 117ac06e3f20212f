"""Folders -> the media files in them: every file a user would expect read, and a word on every file left out.

Files named on the command line are read by their content (:func:`fakelens.media.media_kind`); a folder walk has
to decide which of its files to try. It takes every suffix FFmpeg and Pillow read and, whatever the name, every
file whose first bytes say image or video, and returns the rest with the reason, so that ``fakelens predict``,
``fakelens scan`` and the dataset readers can say what they skipped instead of dropping it silently.
"""

from __future__ import annotations

import os
from pathlib import Path

from fakelens.media import sniff_kind, suffix_kind

#: Why a folder walk left a file out (:func:`walk_media`).
SKIP_HIDDEN = "hidden file"
SKIP_NOT_MEDIA = "neither its name nor its first bytes say image or video"
SKIP_UNREADABLE = "cannot be read"


def walk_media(folder: str | Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The media files under ``folder`` (recursively, sorted, following folder links once), and every file left
    out with the reason.

    A file is taken when its suffix is one FFmpeg or Pillow reads (:data:`IMAGE_SUFFIXES`, :data:`VIDEO_SUFFIXES`)
    or, whatever its name, when its first bytes are an image's or a video's (:func:`sniff_kind`): a clip saved
    without an extension is found too. What each file really is is decided later, by :func:`media_kind`, so a
    file taken here that is not media gets its own clear error rather than vanishing. Hidden files (``.name``)
    and files in hidden folders are left out.
    """
    media: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    seen = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith("."):
                skipped.append((path, SKIP_HIDDEN))
            elif suffix_kind(path) is not None:
                media.append(path)
            else:
                try:
                    with open(path, "rb") as handle:
                        head = handle.read(512)
                except OSError:
                    skipped.append((path, SKIP_UNREADABLE))
                    continue
                if sniff_kind(head) is not None:
                    media.append(path)
                else:
                    skipped.append((path, SKIP_NOT_MEDIA))
    return sorted(media), skipped


def describe_skipped(skipped: list[tuple[Path, str]], limit: int = 5) -> str:
    """One line for a user: how many files a walk left out, why, and a few of them."""
    reasons: dict[str, list[Path]] = {}
    for path, reason in skipped:
        reasons.setdefault(reason, []).append(path)
    parts = [f"{len(paths)} {reason} (e.g. {', '.join(str(p) for p in paths[:limit])})" for reason, paths in reasons.items()]
    return f"skipped {len(skipped)} file(s): " + "; ".join(parts)


__all__ = ["walk_media", "describe_skipped", "SKIP_HIDDEN", "SKIP_NOT_MEDIA", "SKIP_UNREADABLE"]
