"""Atomic file writes: a reader (or a resumed run) never sees a half-written file.

Every file fakelens writes goes to ``<name>.<pid>.tmp`` beside its destination and is moved into place
with ``os.replace`` once complete; on any error the temporary file is removed. The pid in the name
keeps concurrent writers apart and lets a resumed run recognise leftovers of a killed one.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


def temporary_name(path: str | os.PathLike) -> Path:
    """The temporary path this process uses while writing ``path``."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write bytes (or UTF-8 text) to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON atomically."""
    return write_bytes(path, json.dumps(data, indent=indent, default=str) + "\n")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine: how a stale lock or temporary file is told from a live one."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
