"""One video: sample frames, find faces, write its crops, then its part file (which marks it done)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from fakelens import atomic
from fakelens.data.manifest import points_json
from fakelens.data.records import VideoRecord
from fakelens.preprocess.config import PreprocessConfig, VideoResult
from fakelens.preprocess.folder import PART_VERSION, crop_dir, part_path

log = logging.getLogger(__name__)


def _encode(image, config: PreprocessConfig) -> bytes:
    import cv2

    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if config.image_format == "png":
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    if not ok:
        raise OSError("image encoding failed")
    return data.tobytes()


def build_extractor(config: PreprocessConfig):
    """The :class:`fakelens.faces.FaceExtractor` (with its MTCNN) that ``config`` describes."""
    from fakelens.faces import FaceExtractor
    from fakelens.mtcnn import MTCNN

    detector = MTCNN(min_face_size=config.min_face_size, detection_size=config.detection_size, device=config.device)
    return FaceExtractor(
        detector=detector,
        num_frames=config.frames,
        keep=config.keep,
        size=config.size,
        margin=config.margin,
        align=config.align,
    )


def process_video(record: VideoRecord, out_dir: str | os.PathLike, config: PreprocessConfig, extractor) -> VideoResult:
    """Sample, detect and crop one video; write its crops, then its part file. Never raises for bad media."""
    from fakelens.errors import MediaError
    from fakelens.media import load_frames

    out_dir = Path(out_dir)
    frames_wanted = record.frames or config.frames
    result = VideoResult(video=record.relpath, status="ok")
    folder = crop_dir(out_dir, record.relpath)
    # Crops of a run killed mid-video: the video is redone from scratch.
    shutil.rmtree(folder, ignore_errors=True)
    rows: list[dict] = []
    try:
        start = time.perf_counter()
        frames = load_frames(record.path, num_frames=frames_wanted)
        result.frames = len(frames)
        mid = time.perf_counter()
        result.seconds["decode"] = mid - start
        crops = extractor.extract_frames(frames)
        del frames
        result.seconds["detect"] = time.perf_counter() - mid
        if not crops:
            result.status, result.reason = "no_face", f"no face found in {result.frames} sampled frames"
        else:
            start = time.perf_counter()
            folder.mkdir(parents=True, exist_ok=True)
            suffix = "png" if config.image_format == "png" else "jpg"
            for crop in crops:
                name = f"{crop.frame_index:06d}_{crop.track}.{suffix}"
                atomic.write_bytes(folder / name, _encode(crop.image, config))
                x1, y1, x2, y2 = (round(float(v), 2) for v in crop.box)
                rows.append(
                    {
                        "crop_path": (folder / name).relative_to(out_dir).as_posix(),
                        "video": record.relpath,
                        "frame_index": int(crop.frame_index),
                        "timestamp": round(float(crop.timestamp), 4),
                        "track": int(crop.track),
                        "x1": x1,
                        "y1": y1,
                        "x2": x2,
                        "y2": y2,
                        "prob": round(float(crop.prob), 5),
                        "landmarks": points_json(crop.landmarks),
                        "crop_landmarks": points_json(crop.crop_landmarks),
                    }
                )
            result.crops = len(rows)
            result.seconds["write"] = time.perf_counter() - start
    except MediaError as exc:
        result.status, result.reason = "failed", exc.reason
    except Exception as exc:  # noqa: BLE001 - one odd video must not stop a run of thousands
        log.exception("%s: unexpected error", record.relpath)
        result.status, result.reason = "error", f"{type(exc).__name__}: {exc}"
    if result.status != "ok":
        shutil.rmtree(folder, ignore_errors=True)
        rows = []
    part = {
        "version": PART_VERSION,
        "record": record.to_dict(),
        "frames_requested": frames_wanted,
        "result": result.to_dict(),
        "rows": rows,
    }
    atomic.write_bytes(part_path(out_dir, record.relpath), json.dumps(part, separators=(",", ":")))
    return result
