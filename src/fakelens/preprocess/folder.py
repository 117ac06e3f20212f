"""The output folder: part files (one per finished video), temporary files, the per-shard lock, the
settings check (``config.json``) and the CSVs rebuilt from the parts (manifest, videos, failures).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from fakelens import atomic
from fakelens.constants import LABELS, SPLITS
from fakelens.data.manifest import FAILURE_COLUMNS, VIDEO_COLUMNS, write_csv, write_manifest
from fakelens.data.records import VideoRecord
from fakelens.preprocess.config import PreprocessConfig, PreprocessError

PART_VERSION = 1
_RECORD_COLUMNS = ("label", "split", "group", "method", "dataset")


def clean_tmp_files(out_dir: str | os.PathLike) -> int:
    """Delete temporary files left by dead runs in ``out_dir`` and ``out_dir/parts``; return how many.

    Crop folders need no scan: an unfinished video's folder is cleared when the video is redone.
    """
    removed = 0
    for folder in (Path(out_dir), Path(out_dir) / "parts"):
        if not folder.is_dir():
            continue
        for tmp in folder.glob("*.tmp"):
            pid = tmp.name.rsplit(".", 2)[-2] if tmp.name.count(".") >= 2 else ""
            if pid.isdigit() and int(pid) != os.getpid() and atomic.pid_alive(int(pid)):
                continue  # another live run (a shard sharing this folder) is writing it
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def part_path(out_dir: str | os.PathLike, relpath: str) -> Path:
    """Where a video's part file lives: a hash of its relpath, so any name maps to a safe flat file."""
    return Path(out_dir) / "parts" / f"{hashlib.sha1(relpath.encode('utf-8')).hexdigest()[:24]}.json"


def read_part(path: str | os.PathLike) -> dict | None:
    """A part file's content, or None if it is unreadable (it is then treated as not done)."""
    try:
        part = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(part, dict) or part.get("version") != PART_VERSION or "record" not in part:
        return None
    return part


def crop_dir(out_dir: str | os.PathLike, relpath: str) -> Path:
    return Path(out_dir) / "crops" / relpath


class FolderLock:
    """An exclusive lock on ``out_dir`` for one shard, released by the OS even after kill -9."""

    def __init__(self, out_dir: Path, key: str):
        self.path = out_dir / f".lock-{key}"
        self.handle = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock, runs must not overlap
            return self
        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            raise PreprocessError(f"another preprocessing run is writing {self.path.parent} ({self.path.name})") from None
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.close()


def check_config(out_dir: Path, config: PreprocessConfig, dataset: str | None) -> None:
    path = out_dir / "config.json"
    settings = config.settings()
    wanted = {"dataset": dataset, "settings": settings}
    if path.is_file():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            found = None
        if isinstance(found, dict) and found.get("settings") is not None:
            diff = sorted(k for k in settings if found["settings"].get(k) != settings[k])
            if found.get("dataset") != dataset:
                diff.insert(0, "dataset")
            if diff:
                detail = ", ".join(
                    f"{k}: {found.get(k) if k == 'dataset' else found['settings'].get(k)!r} -> "
                    f"{dataset if k == 'dataset' else wanted['settings'][k]!r}"
                    for k in diff
                )
                raise PreprocessError(f"{out_dir} holds crops made with other settings ({detail}); use another --out folder")
            return
    atomic.write_bytes(path, json.dumps(wanted, indent=2))


def _rows_of(part: dict, record: VideoRecord | None = None) -> list[dict]:
    meta = record.to_dict() if record else part["record"]
    extra = {k: meta[k] for k in _RECORD_COLUMNS}
    return [{**row, **extra} for row in part["rows"]]


def _video_row(part: dict) -> dict:
    record, result = part["record"], part["result"]
    return {
        "video": record["relpath"],
        **{k: record[k] for k in ("label", "split", "group", "identity", "method", "dataset")},
        "frames": part.get("frames_requested"),
        "status": result["status"],
        "crops": result["crops"],
        "reason": result["reason"],
    }


def write_outputs(out_dir: str | os.PathLike, parts: Sequence[dict]) -> tuple[Path, dict]:
    """(Re)write ``manifest.csv``, ``videos.csv`` and ``failures.csv`` from part files, atomically.

    Returns the manifest path and ``{split: {label: crops}}``.
    """
    out_dir = Path(out_dir)
    parts = sorted(parts, key=lambda p: p["record"]["relpath"])
    rows = []
    for part in parts:
        rows.extend(sorted(_rows_of(part), key=lambda r: (int(r["frame_index"]), int(r["track"]))))
    manifest = write_manifest(rows, out_dir / "manifest.csv")
    video_rows = [_video_row(p) for p in parts]
    write_csv(out_dir / "videos.csv", VIDEO_COLUMNS, video_rows)
    write_csv(out_dir / "failures.csv", FAILURE_COLUMNS, [r for r in video_rows if r["status"] != "ok"])
    crop_counts = {s: {label: 0 for label in LABELS} for s in SPLITS}
    for row in rows:
        crop_counts[row["split"]][row["label"]] += 1
    return manifest, {s: c for s, c in crop_counts.items() if sum(c.values())}
