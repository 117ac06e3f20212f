"""The manifest: one CSV row per face crop, the contract between preprocessing, training and evaluation.

This module is the only place that knows the manifest's columns (:data:`MANIFEST_COLUMNS`, see
docs/ARCHITECTURE.md, "Manifest"), the only reader (:func:`read_manifest`, rows as :class:`ManifestRow`
with absolute crop paths) and the only writer (:func:`write_manifest`, atomic). The other CSV files a
preprocessing folder holds (``videos.csv``, ``failures.csv``) go through the same writer
(:func:`write_csv`). :func:`manifest_from_face_images` turns already-cropped face images (e.g. the crops
in ``../shared/data/images``) into crops plus a manifest.

Torch-free, and OpenCV is imported only by :func:`manifest_from_face_images`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fakelens import atomic
from fakelens.constants import INPUT_SIZE, LABELS
from fakelens.errors import FakelensError

#: Manifest columns, in order (see docs/ARCHITECTURE.md).
MANIFEST_COLUMNS = (
    "crop_path", "video", "frame_index", "timestamp", "track", "x1", "y1", "x2", "y2", "prob",
    "landmarks", "crop_landmarks", "label", "split", "group", "method", "dataset",
)  # fmt: skip
#: What a CSV needs to be read as a manifest (the rest may be missing, e.g. in a hand-made list of crops).
REQUIRED_COLUMNS = ("crop_path", "label")
#: ``videos.csv`` of a preprocessing folder: one row per video with its status.
VIDEO_COLUMNS = ("video", "label", "split", "group", "identity", "method", "dataset", "frames", "status", "crops", "reason")
#: ``failures.csv``: the videos of ``videos.csv`` that gave no crops.
FAILURE_COLUMNS = ("video", "label", "split", "status", "reason")
_POINT_COLUMNS = ("landmarks", "crop_landmarks")


class ManifestError(FakelensError):
    """A manifest is missing, unreadable or lacks what training/evaluation needs."""


@dataclass
class ManifestRow:
    """One crop of a manifest.

    ``crop_path`` is absolute; ``crop_landmarks`` (in crop pixels) and ``landmarks`` (in frame pixels) are
    (5, 2) lists or None; ``box`` is the detector's ``(x1, y1, x2, y2)`` in frame pixels, or None.
    """

    crop_path: Path
    label: str
    split: str = ""
    video: str = ""
    frame_index: int = 0
    group: str = ""
    method: str = ""
    dataset: str = ""
    crop_landmarks: list | None = None
    timestamp: float = 0.0
    track: int = 0
    box: tuple[float, float, float, float] | None = None
    prob: float | None = None
    landmarks: list | None = None

    @property
    def target(self) -> int:
        """1 for FAKE, 0 for REAL (the training target)."""
        return 1 if self.label == "fake" else 0

    @property
    def video_key(self) -> str:
        """Video identity for video-level aggregation: ``dataset:video`` (the crop path when no video is given)."""
        video = self.video or str(self.crop_path)
        return f"{self.dataset}:{video}" if self.dataset else video


# --------------------------------------------------------------------------- reading


def _parse_landmarks(text: str | None) -> list | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        array = np.asarray(json.loads(text), dtype=np.float64)
    except (ValueError, TypeError):
        return None
    if array.shape != (5, 2) or not np.isfinite(array).all():
        return None
    return array.tolist()


def _number(text: str | None, kind: type, default):
    try:
        return kind(float(text)) if (text or "").strip() else default
    except (ValueError, OverflowError):
        return default


def _box(raw: dict) -> tuple[float, float, float, float] | None:
    values = [_number(raw.get(k), float, None) for k in ("x1", "y1", "x2", "y2")]
    return None if None in values else tuple(values)


def _row(raw: dict, root: Path, crop: str, label: str, split: str) -> ManifestRow:
    video = (raw.get("video") or "").strip()
    return ManifestRow(
        crop_path=(root / crop).resolve(),
        label=label,
        split=split,
        video=video,
        frame_index=_number(raw.get("frame_index"), int, 0),
        group=(raw.get("group") or "").strip() or video or crop,
        method=(raw.get("method") or "").strip(),
        dataset=(raw.get("dataset") or "").strip(),
        crop_landmarks=_parse_landmarks(raw.get("crop_landmarks")),
        timestamp=_number(raw.get("timestamp"), float, 0.0),
        track=_number(raw.get("track"), int, 0),
        box=_box(raw),
        prob=_number(raw.get("prob"), float, None),
        landmarks=_parse_landmarks(raw.get("landmarks")),
    )


def read_manifest(path: str | Path, split: str | Sequence[str] | None = None) -> list[ManifestRow]:
    """Rows of a manifest CSV, optionally only those of ``split`` (a name or a list of names; default all).

    Rows labelled anything but ``real``/``fake`` are skipped (unlabelled crops cannot train or be scored).
    Raises :class:`ManifestError` for a missing file, missing columns or an empty selection.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            raw_rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"{path}: cannot read manifest ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ManifestError(f"{path}: not a fakelens manifest (missing columns: {', '.join(missing)})")
    wanted = None if split is None else ({split} if isinstance(split, str) else set(split))
    root = path.resolve().parent
    rows = []
    for line, raw in enumerate(raw_rows, start=2):
        label = (raw.get("label") or "").strip().lower()
        if label not in LABELS:
            continue
        row_split = (raw.get("split") or "").strip().lower()
        if wanted is not None and row_split not in wanted:
            continue
        crop = (raw.get("crop_path") or "").strip()
        if not crop:
            raise ManifestError(f"{path}:{line}: empty crop_path")
        rows.append(_row(raw, root, crop, label, row_split))
    if wanted is not None and not rows:
        raise ManifestError(f"{path}: no labelled rows in split {'/'.join(sorted(wanted))}")
    return rows


# --------------------------------------------------------------------------- writing


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text to ``path`` atomically (see :mod:`fakelens.atomic`)."""
    return atomic.write_bytes(path, text)


def points_json(points) -> str:
    """(N, 2) points as compact JSON, rounded to 0.01 px: how manifests store landmarks."""
    pairs = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return json.dumps([[round(float(x), 2), round(float(y), 2)] for x, y in pairs], separators=(",", ":"))


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[dict]) -> Path:
    """Write dicts as a CSV with ``columns`` (missing keys and None left empty, others ignored), atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
    return atomic_write_text(path, buffer.getvalue())


def write_manifest(rows: Iterable[dict], path: str | Path) -> Path:
    """Write manifest rows (dicts keyed by :data:`MANIFEST_COLUMNS`; missing keys left empty) atomically.

    Lists or arrays in ``landmarks``/``crop_landmarks`` are written as JSON, rounded to 0.01 px; text is
    written as it is.
    """

    def encoded(row: dict) -> dict:
        out = dict(row)
        for key in _POINT_COLUMNS:
            if isinstance(out.get(key), (list, tuple, np.ndarray)):
                out[key] = points_json(out[key])
        return out

    return write_csv(path, MANIFEST_COLUMNS, (encoded(row) for row in rows))


def manifest_from_face_images(
    entries: Iterable[dict],
    out_dir: str | Path,
    size: int = INPUT_SIZE,
    manifest_name: str = "manifest.csv",
    detector=None,
    progress: bool = False,
) -> Path:
    """Resize already-cropped face images to ``size`` x ``size`` PNGs under ``out_dir/crops`` and write a manifest.

    Each entry needs ``path`` and ``label``; ``split``, ``group``, ``method``, ``dataset``, ``video`` and
    ``frame_index`` are copied when present (``video`` defaults to the image's folder, the usual layout of
    frames extracted per video).

    ``detector`` (default None) is an optional :class:`fakelens.mtcnn.MTCNN` (anything with
    ``detect([image]) -> [[Face]]``): the largest face found on each resized crop gives its ``crop_landmarks``,
    which shape the SBI masks. Without it (or when no face is found) landmarks are left empty (``[]``) and
    SBI falls back to its centred ellipse. ``progress`` (default False) shows a progress bar.
    """
    import cv2
    from tqdm import tqdm

    from fakelens.faces import largest_face
    from fakelens.media import read_image

    out_dir = Path(out_dir)
    crop_dir = out_dir / "crops"
    crop_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    entries = list(entries)
    for i, entry in enumerate(tqdm(entries, desc="crops", unit="img", disable=not progress)):
        source = Path(entry["path"])
        image = read_image(source)
        interpolation = cv2.INTER_AREA if min(image.shape[:2]) > size else cv2.INTER_CUBIC
        crop = cv2.resize(image, (size, size), interpolation=interpolation)
        crop_landmarks = []
        if detector is not None:
            faces = detector.detect([crop])[0]
            if faces:
                crop_landmarks = np.asarray(largest_face(faces).landmarks, dtype=np.float64).tolist()
        name = f"{i:05d}_{source.parent.name}_{source.stem}.png"
        ok, png = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ManifestError(f"{crop_dir / name}: could not encode crop")
        atomic.write_bytes(crop_dir / name, png.tobytes())
        rows.append(
            {
                "crop_path": f"crops/{name}",
                "video": entry.get("video") or str(source.parent.name),
                "frame_index": entry.get("frame_index", 0),
                "label": entry["label"],
                "split": entry.get("split", "train"),
                "group": entry.get("group") or entry.get("video") or source.parent.name,
                "method": entry.get("method", ""),
                "dataset": entry.get("dataset", ""),
                # The whole image is the face crop: box = the image, no detector probability or frame time.
                "timestamp": 0.0,
                "track": 0,
                "prob": 1.0,
                "x1": 0,
                "y1": 0,
                "x2": image.shape[1],
                "y2": image.shape[0],
                "landmarks": (np.asarray(crop_landmarks) * (image.shape[1] / size, image.shape[0] / size)).tolist() if crop_landmarks else [],
                "crop_landmarks": crop_landmarks,
            }  # fmt: skip
        )
    return write_manifest(rows, out_dir / manifest_name)


__all__ = [
    "FAILURE_COLUMNS",
    "MANIFEST_COLUMNS",
    "REQUIRED_COLUMNS",
    "VIDEO_COLUMNS",
    "ManifestError",
    "ManifestRow",
    "atomic_write_text",
    "manifest_from_face_images",
    "points_json",
    "read_manifest",
    "write_csv",
    "write_manifest",
]
