"""What decides the crops (:class:`PreprocessConfig`, checked by :meth:`~PreprocessConfig.validate`), and what
a run reports: :class:`VideoResult` per video, :class:`PreprocessSummary` per run or merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fakelens.constants import INPUT_SIZE, KEEP_MODES, SPLITS
from fakelens.data.datasets import class_counts
from fakelens.data.records import VideoRecord
from fakelens.errors import FakelensError

#: Part statuses: ``ok`` (crops written), ``no_face``, ``failed`` (unreadable media), ``error`` (anything else).
STATUSES = ("ok", "no_face", "failed", "error")


class PreprocessError(FakelensError):
    """A preprocessing folder or option cannot be used (other settings, another run holds it, ...)."""


@dataclass
class PreprocessConfig:
    """What decides the crops; a folder keeps the settings of its first run and refuses others.

    frames : frames sampled per video (default 32; a record's own ``frames`` wins).
    size, margin, align, keep : crop side (224), context margin (0.3), landmark alignment (False),
        ``"largest"`` face per frame or ``"all"`` faces as tracks (see :class:`fakelens.faces.FaceExtractor`).
    min_face_size, detection_size : MTCNN options (20 px; None = detect at full resolution).
    image_format : ``"jpg"`` (default, quality ``jpeg_quality`` = 95) or ``"png"``.
    device : detector device (None = CUDA when available); not part of the settings check.
    """

    frames: int = 32
    size: int = INPUT_SIZE
    margin: float = 0.3
    align: bool = False
    keep: str = "largest"
    min_face_size: int = 20
    detection_size: int | None = None
    image_format: str = "jpg"
    jpeg_quality: int = 95
    device: str | None = None

    def settings(self) -> dict:
        """The fields that change the output (all but ``device``)."""
        values = asdict(self)
        values.pop("device")
        return values

    def validate(self) -> None:
        if self.frames < 1:
            raise PreprocessError(f"frames must be at least 1, got {self.frames}")
        if self.size < 16:
            raise PreprocessError(f"size must be at least 16 pixels, got {self.size}")
        if self.margin < 0:
            raise PreprocessError(f"margin must be >= 0, got {self.margin}")
        if self.keep not in KEEP_MODES:
            raise PreprocessError(f"keep must be one of {', '.join(KEEP_MODES)}, got {self.keep!r}")
        if self.image_format not in ("jpg", "png"):
            raise PreprocessError(f"image_format must be 'jpg' or 'png', got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise PreprocessError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.min_face_size < 1:
            raise PreprocessError(f"min_face_size must be positive, got {self.min_face_size}")
        if self.detection_size is not None and self.detection_size < 12:
            raise PreprocessError(f"detection_size must be at least 12 or None, got {self.detection_size}")


@dataclass
class VideoResult:
    """What happened to one video: status, crops written and seconds spent per stage."""

    video: str
    status: str
    crops: int = 0
    frames: int = 0
    reason: str = ""
    seconds: dict = field(default_factory=lambda: {"decode": 0.0, "detect": 0.0, "write": 0.0})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PreprocessSummary:
    """The outcome of :func:`preprocess` or :func:`merge` over the videos it was given."""

    out_dir: str
    manifest: str
    videos: int
    processed: int
    already_done: int
    ok: int
    no_face: int
    failed: int
    crops: int
    crops_this_run: int
    seconds: float
    videos_per_minute: float
    stage_seconds: dict
    video_counts: dict
    crop_counts: dict
    shard: str | None = None
    workers: int = 1
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in self.stage_seconds.items())
        lines = [
            f"videos: {self.videos} ({self.processed} processed now, {self.already_done} already done)"
            + (f", shard {self.shard}" if self.shard else ""),
            f"  ok {self.ok}, without a face {self.no_face}, failed {self.failed}",
            f"crops: {self.crops} ({self.crops_this_run} written now)",
            f"time: {self.seconds:.1f} s, {self.videos_per_minute:.1f} videos/min" + (f" (worker time: {stages})" if self.processed else ""),
            f"manifest: {self.manifest}",
            "class counts (videos with crops / crops):",
            f"  {'split':<6} {'real':>7} {'fake':>7} {'real':>9} {'fake':>9}",
        ]
        for split in SPLITS:
            v = self.video_counts.get(split, {"real": 0, "fake": 0})
            c = self.crop_counts.get(split, {"real": 0, "fake": 0})
            if v["real"] + v["fake"] + c["real"] + c["fake"]:
                lines.append(f"  {split:<6} {v['real']:>7} {v['fake']:>7} {c['real']:>9} {c['fake']:>9}")
        return "\n".join(lines)


def summarise(
    out_dir: Path,
    manifest: Path,
    parts: Sequence[dict],
    crop_counts: dict,
    results: Sequence[dict],
    selected: int,
    elapsed: float,
    shard: str | None,
    workers: int,
    settings: dict,
) -> PreprocessSummary:
    """The :class:`PreprocessSummary` of ``parts`` (the videos a run selected) and ``results`` (those it processed)."""
    statuses = [p["result"]["status"] for p in parts]
    stage = {k: round(sum(r["seconds"][k] for r in results), 3) for k in ("decode", "detect", "write")}
    ok_records = [VideoRecord(**p["record"]) for p in parts if p["result"]["status"] == "ok"]
    return PreprocessSummary(
        out_dir=str(out_dir),
        manifest=str(manifest),
        videos=selected,
        processed=len(results),
        already_done=selected - len(results),
        ok=statuses.count("ok"),
        no_face=statuses.count("no_face"),
        failed=statuses.count("failed") + statuses.count("error"),
        crops=sum(p["result"]["crops"] for p in parts),
        crops_this_run=sum(r["crops"] for r in results),
        seconds=round(elapsed, 3),
        videos_per_minute=round(len(results) / elapsed * 60, 2) if results and elapsed > 0 else 0.0,
        stage_seconds=stage,
        video_counts=class_counts(ok_records),
        crop_counts=crop_counts,
        shard=shard,
        workers=workers,
        settings=settings,
    )
