"""One input's scan, whole (the local engine: ``Detector.predict``) or split in two stages (the Ray engine).

``Detector.predict`` is decode -> faces -> classify -> verdict. The Ray engine cuts it after the faces:

1. :func:`find_faces` (CPU tasks): ``load_frames`` and the detector's :class:`FaceExtractor` (MTCNN on
   the CPU, the same settings as ``Detector``: ``DEFAULT_DETECTION_SIZE``, ``DEFAULT_MIN_FACE_SIZE``,
   ``keep``, faces under ``min_face_prob`` dropped), giving the 224x224 crops and their metadata;
2. :func:`score_found` (actors, one model each): ``detector.classify`` on one input's crops at a time
   (the same batch ``predict`` makes, so the same numbers), then :func:`verdict`, which aggregates per
   track and picks the principal tracks exactly as ``Detector._result`` does, from the public
   ``aggregate_scores``, ``principal_tracks`` and ``confidence_of``.

Both give a result row (the columns of ``results.parquet`` that belong to the content, see
:mod:`fakelens.scan.results`) and per-face rows. A :class:`FakelensError` becomes an ERROR row whose
``error`` is its message (the reason, for a :class:`MediaError`); the tests check that the two engines
agree with ``fakelens predict`` to 1e-5.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from fakelens.constants import DEFAULT_DETECTION_SIZE, DEFAULT_FRAMES, DEFAULT_KEEP, DEFAULT_MIN_FACE_PROB, DEFAULT_MIN_FACE_SIZE

ERROR = "ERROR"


@dataclass(frozen=True)
class ScanSettings:
    """The detector options of a scan (``None`` = the model's or the library's default)."""

    checkpoint: str | None = None
    frames: int = DEFAULT_FRAMES
    threshold: float | None = None
    aggregate: str | None = None
    backend: str = "auto"
    device: str | None = None

    def detector_options(self) -> dict:
        return dict(num_frames=self.frames, threshold=self.threshold, aggregate=self.aggregate, backend=self.backend, device=self.device)

    def to_dict(self) -> dict:
        return asdict(self)


def load_detector(settings: ScanSettings, device: str | None = None, face_threads: int | None = None):
    """The Detector these settings name (``device`` overrides the settings' one; ``face_threads`` sets its face
    finders, default: for the whole machine, see :func:`fakelens.pipeline.face_threads`)."""
    from fakelens.detector import Detector

    options = settings.detector_options()
    if device is not None:
        options["device"] = device
    if face_threads is not None:
        options["face_threads"] = face_threads
    if settings.checkpoint:
        return Detector.from_checkpoint(settings.checkpoint, **options)
    return Detector.default(**options)


def error_reason(exc: BaseException) -> str:
    """What an ERROR row says: a MediaError's reason, else the error's message."""
    return str(getattr(exc, "reason", None) or exc or type(exc).__name__)


def error_row(reason: str, model: str | None = None, seconds: float = 0.0, threshold: float | None = None) -> dict:
    return {"label": ERROR, "score": None, "threshold": threshold, "frames": 0, "faces": 0, "error": reason, "model": model, "seconds": seconds}


def _face_rows(faces) -> list[dict]:
    return [
        {
            "frame_index": int(f.frame_index),
            "timestamp": float(f.timestamp),
            "track": int(f.track),
            "box": [float(v) for v in f.box],
            "detection_prob": float(f.detection_prob),
            "score": float(f.score),
        }
        for f in faces
    ]


def predict_row(detector, path: str) -> tuple[dict, list[dict]]:
    """``detector.predict(path)`` as a result row and face rows; a FakelensError becomes an ERROR row."""
    from fakelens.errors import FakelensError

    start = time.perf_counter()
    try:
        result = detector.predict(path)
    except FakelensError as exc:
        return error_row(error_reason(exc), detector.name, time.perf_counter() - start, detector.threshold), []
    except Exception as exc:  # noqa: BLE001 - a decoder's own error on a strange file must not stop the scan
        return error_row(f"unexpected {type(exc).__name__}: {exc}", detector.name, time.perf_counter() - start, detector.threshold), []
    row = {
        "label": result.label,
        "score": result.score,
        "threshold": result.threshold,
        "frames": result.frames,
        "faces": result.num_faces,
        "error": None,
        "model": result.model,
        "seconds": result.timings.get("total", time.perf_counter() - start),
    }
    return row, _face_rows(result.faces)


# --------------------------------------------------------------------------- the split (Ray) path

_EXTRACTORS: dict[tuple, Any] = {}


def face_extractor(frames: int):
    """A FaceExtractor set up as ``Detector``'s (MTCNN on the CPU), built once per process and frame count."""
    key = (frames,)
    if key not in _EXTRACTORS:
        from fakelens.faces import FaceExtractor
        from fakelens.mtcnn import MTCNN

        detector = MTCNN(min_face_size=DEFAULT_MIN_FACE_SIZE, detection_size=DEFAULT_DETECTION_SIZE, device="cpu")
        _EXTRACTORS[key] = FaceExtractor(detector, num_frames=frames, keep=DEFAULT_KEEP)
    return _EXTRACTORS[key]


def find_faces(path: str, frames: int, min_face_prob: float = DEFAULT_MIN_FACE_PROB) -> dict:
    """Stage 1: decode and crop one input. A flat dict (Ray Data rows): crops as raw uint8 bytes, faces as JSON.

    Keys: ``crops`` (bytes, N x 224 x 224 x 3), ``n_crops``, ``faces_json`` (frame_index, timestamp,
    track, box, detection_prob per crop), ``frames``, ``seconds``, ``error`` (the reason, or "" when the input was read).
    """
    import numpy as np

    from fakelens.constants import DEFAULT_KEYFRAMES, DEFAULT_TRACK_FACE_PROB
    from fakelens.errors import FakelensError
    from fakelens.faces import scored_crops
    from fakelens.media import load_frames, media_kind

    start = time.perf_counter()
    try:
        extractor = face_extractor(frames)
        # The frames Detector.predict samples at its default keyframes setting.
        frame_list = load_frames(path, num_frames=frames, kind=media_kind(path), keyframes=DEFAULT_KEYFRAMES)
        crops = scored_crops(extractor.extract_frames(frame_list), min_face_prob, DEFAULT_TRACK_FACE_PROB)
    except FakelensError as exc:
        reason = error_reason(exc)
    except Exception as exc:  # noqa: BLE001 - a decoder's own error on a strange file must not stop the scan
        reason = f"unexpected {type(exc).__name__}: {exc}"
    else:
        reason = None
    if reason is not None:
        return {"crops": b"", "n_crops": 0, "faces_json": "[]", "frames": 0, "seconds": time.perf_counter() - start, "error": reason or "unreadable"}
    faces = [
        {"frame_index": c.frame_index, "timestamp": c.timestamp, "track": c.track, "box": [float(v) for v in c.box], "detection_prob": c.prob}
        for c in crops
    ]
    data = np.ascontiguousarray(np.stack([c.image for c in crops])).tobytes() if crops else b""
    return {
        "crops": data,
        "n_crops": len(crops),
        "faces_json": json.dumps(faces),
        "frames": len(frame_list),
        "seconds": time.perf_counter() - start,
        "error": "",  # a string column in Ray Data (None would become NaN in a numpy batch)
    }


def verdict(detector, faces: list[dict], scores, frames: int, threshold: float | None = None, aggregate: str | None = None) -> dict:
    """The verdict ``Detector.predict`` gives for these faces and scores (per-track aggregate, principal tracks)."""
    from fakelens.detector import aggregate_scores, confidence_of
    from fakelens.faces import principal_tracks

    threshold = detector.threshold if threshold is None else threshold
    aggregate = aggregate or detector.aggregate
    tracks = [int(f["track"]) for f in faces]
    principal = principal_tracks(tracks, detector.min_track_share)
    best: tuple[float, int] | None = None
    for track in sorted(set(tracks)):
        if track not in principal:
            continue
        score = aggregate_scores([float(s) for s, t in zip(scores, tracks) if t == track], aggregate)
        if best is None or score > best[0]:
            best = (score, track)
    if best is None:
        return {"label": "NO_FACE", "score": None, "confidence": None, "track": None}
    score = best[0]
    return {"label": "FAKE" if score >= threshold else "REAL", "score": score, "confidence": confidence_of(score, threshold), "track": best[1]}


def score_found(detector, found: dict) -> tuple[dict, list[dict]]:
    """Stage 2: classify one input's crops (from :func:`find_faces`) and give its result row and face rows."""
    import numpy as np

    from fakelens.constants import INPUT_SIZE

    if isinstance(found.get("error"), str) and found["error"]:
        return error_row(found["error"], detector.name, float(found.get("seconds") or 0.0), detector.threshold), []
    start = time.perf_counter()
    faces = json.loads(found["faces_json"])
    count = int(found["n_crops"])
    if count:
        crops = np.frombuffer(found["crops"], dtype=np.uint8).reshape(count, INPUT_SIZE, INPUT_SIZE, 3)
        scores = [float(s) for s in detector.classify(crops)]
    else:
        scores = []
    decided = verdict(detector, faces, scores, int(found["frames"]))
    row = {
        "label": decided["label"],
        "score": decided["score"],
        "threshold": detector.threshold,
        "frames": int(found["frames"]),
        "faces": count,
        "error": None,
        "model": detector.name,
        "seconds": float(found["seconds"]) + time.perf_counter() - start,
    }
    face_rows = [{**face, "score": score} for face, score in zip(faces, scores)]
    return row, face_rows
