"""What to scan: folders, files and lists of paths (text or CSV) -> :class:`ScanInput` rows, and their hashes.

A SOURCE is a folder (walked recursively for media suffixes, as ``fakelens predict`` does), a list
(a ``.txt`` file, one path per line, ``#`` comments; or a ``.csv`` file with a ``path`` column and an
optional ``label`` column), or any other file (its content decides what it is). Relative paths in a
list are relative to the list's folder. Each path appears once, in the order first met.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fakelens.errors import InvalidArgument

log = logging.getLogger(__name__)

#: Suffixes that make a SOURCE file a list of paths rather than media.
LIST_SUFFIXES = frozenset({".txt", ".csv"})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ScanInput:
    """One input: its path (as listed, made absolute), its ground-truth label when a list gave one."""

    path: str
    label: str | None = None


def _media_in(folder: Path) -> list[Path]:
    from fakelens.folders import describe_skipped, walk_media

    media, skipped = walk_media(folder)
    if skipped:
        log.warning("%s: %s", folder, describe_skipped(skipped))
    return media


def _resolve(entry: str, base: Path) -> Path:
    path = Path(entry).expanduser()
    return path if path.is_absolute() else base / path


def read_list(path: str | os.PathLike) -> list[ScanInput]:
    """The inputs a ``.txt`` or ``.csv`` list names (a CSV needs a ``path`` column; ``label`` is optional)."""
    path = Path(path)
    base = path.parent
    text = path.read_text(encoding="utf-8-sig")
    inputs: list[ScanInput] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
        if "path" not in fields:
            raise InvalidArgument(f"{path}: a CSV list needs a 'path' column (found: {', '.join(fields) or 'no header'})")
        for row in reader:
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            if not row.get("path"):
                continue
            label = row.get("label") or None
            inputs.append(ScanInput(str(_resolve(row["path"], base)), label.lower() if label else None))
    else:
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                inputs.append(ScanInput(str(_resolve(line, base))))
    return inputs


def expand_sources(sources: Sequence[str | os.PathLike]) -> list[ScanInput]:
    """Every input the SOURCEs name, each path once (the first label given wins), paths made absolute.

    A path that does not exist is kept: the scan reports it as an ERROR row. A SOURCE that does not
    exist at all raises :class:`InvalidArgument`, since it is most likely a typo.
    """
    found: list[ScanInput] = []
    for source in sources:
        source = Path(source).expanduser()
        if source.is_dir():
            found.extend(ScanInput(str(p)) for p in _media_in(source))
        elif source.is_file() and source.suffix.lower() in LIST_SUFFIXES:
            found.extend(read_list(source))
        elif source.exists():
            found.append(ScanInput(str(source)))
        else:
            raise InvalidArgument(f"{source}: no such file or folder")
    seen: dict[str, ScanInput] = {}
    for item in found:
        key = os.path.abspath(item.path)
        if key not in seen:
            seen[key] = ScanInput(key, item.label)
    return list(seen.values())


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's content, read in 1 MiB chunks (torch-free, unlike fakelens.checkpoint's)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class HashedInput:
    """An input with its content hash and size; ``error`` when the file cannot be read at all."""

    path: str
    label: str | None
    sha256: str | None
    size: int | None
    error: str | None = None


def hash_inputs(inputs: Iterable[ScanInput]) -> list[HashedInput]:
    """sha256 and size of each input; a missing or unreadable file gets ``error`` instead."""
    hashed: list[HashedInput] = []
    for item in inputs:
        try:
            if not os.path.isfile(item.path):
                raise FileNotFoundError("file not found" if not os.path.exists(item.path) else "not a regular file")
            size = os.path.getsize(item.path)
            hashed.append(HashedInput(item.path, item.label, sha256_file(item.path), size))
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            hashed.append(HashedInput(item.path, item.label, None, None, reason.lower() if reason[:1].isupper() else reason))
    return hashed
