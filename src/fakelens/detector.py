"""The whole pipeline in one call: media -> frames -> faces -> crops -> scores -> verdict.

>>> from fakelens import Detector
>>> result = Detector.default().predict("examples/fake_ffpp_NeuralTextures_004_982.mp4")
>>> result.label, round(result.score, 2)

Each face gets P(fake) from the classifier. Scores are aggregated per track (``mean`` by default,
or the DFDC winner's ``confident`` strategy), and the verdict follows the most suspicious track:
one swapped face in a group video makes the video FAKE.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fakelens.constants import (
    AGGREGATIONS,
    DEFAULT_DETECTION_SIZE,
    DEFAULT_FRAMES,
    DEFAULT_KEEP,
    DEFAULT_KEYFRAMES,
    DEFAULT_MIN_FACE_PROB,
    DEFAULT_MIN_FACE_SIZE,
    DEFAULT_MIN_TRACK_SHARE,
    DEFAULT_TRACK_FACE_PROB,
    KEEP_MODES,
    KEYFRAME_MODES,
    TTA_MODES,
    VERDICTS,
    check_threshold,
)
from fakelens.device import resolve_device
from fakelens.errors import CheckpointError, FakelensError, InvalidArgument
from fakelens.faces import FaceCrop, FaceExtractor, principal_tracks, scored_crops
from fakelens.media import Frame, frames_from_array, iter_video, media_kind, plan_sampling, read_image
from fakelens.sysinfo import keep_freed_memory

log = logging.getLogger(__name__)

#: The bundled default model, and its record (sha256 checked on every load, training summary).
DEFAULT_MODEL = Path(__file__).parent / "weights" / "default.pt"
DEFAULT_MODEL_RECORD = DEFAULT_MODEL.with_suffix(".json")
#: Verdicts (kept under this name for callers of fakelens.detector).
LABELS = VERDICTS
ProgressCallback = Callable[[str, float], None]


@dataclass
class FaceScore:
    """One face in one frame and its P(fake). ``crop`` and ``heatmap`` stay out of JSON."""

    frame_index: int
    timestamp: float
    track: int
    box: tuple[float, float, float, float]
    detection_prob: float
    score: float
    crop_box: tuple[float, float, float, float]
    crop: np.ndarray | None = field(default=None, repr=False)
    heatmap: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {
            "frame_index": self.frame_index,
            "timestamp": self.timestamp,
            "track": self.track,
            "box": [round(float(v), 1) for v in self.box],
            "detection_prob": round(self.detection_prob, 4),
            "score": round(self.score, 5),
        }


@dataclass
class TrackScore:
    """A face followed across frames, with its aggregated P(fake).

    ``principal`` tracks are seen in at least ``min_track_share`` of the frames of the longest track;
    only they decide the verdict, so a face glimpsed in a few frames (a poster, a picture on a studio
    screen, a passer-by) is reported but cannot overturn it.
    """

    track: int
    score: float
    faces: int
    principal: bool = True

    def to_dict(self) -> dict:
        return {"track": self.track, "score": round(self.score, 5), "faces": self.faces, "principal": self.principal}


@dataclass
class Prediction:
    """The verdict on one image or video, with everything behind it.

    ``score`` is P(fake) of the most suspicious track (None when no face was found); ``label`` is
    FAKE when ``score >= threshold``. ``confidence`` says how far the score is from the threshold,
    from 0 (on it) to 1 (at 0 or 1). ``timings`` are seconds per stage (with the stages overlapped,
    the time each was busy; ``total`` is the wall time, ``wait`` the face finder's wait for frames).
    ``sampling`` says which frames were read: ``"even"`` (those asked for) or ``"keyframes"`` (the
    nearest keyframe of each, see :func:`fakelens.media.plan_sampling`); ``sampling_note`` says why.
    """

    source: str
    kind: str
    label: str
    score: float | None
    threshold: float
    aggregate: str
    confidence: float | None
    track: int | None
    tracks: list[TrackScore]
    faces: list[FaceScore]
    frames: int
    frame_times: list[tuple[int, float]]
    model: str
    backend: str
    timings: dict[str, float]
    explain_method: str | None = None
    frame_images: dict[int, np.ndarray] | None = field(default=None, repr=False)
    sampling: str = "even"
    sampling_note: str = ""

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "kind": self.kind,
            "label": self.label,
            "score": None if self.score is None else round(self.score, 5),
            "threshold": round(self.threshold, 5),
            "aggregate": self.aggregate,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "verdict_follows": "the most suspicious principal track" if len(self.tracks) > 1 else "the only track",
            "track": self.track,
            "tracks": [t.to_dict() for t in self.tracks],
            "frames": self.frames,
            "faces": self.num_faces,
            "frame_times": [[i, round(t, 3)] for i, t in self.frame_times],
            "face_scores": [f.to_dict() for f in self.faces],
            "model": self.model,
            "backend": self.backend,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "sampling": self.sampling,
            "sampling_note": self.sampling_note,
            "explain_method": self.explain_method,
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def verify_default_model() -> Path:
    """The bundled model's path, after checking its sha256 against its record (:class:`CheckpointError` if not)."""
    from fakelens.checkpoint import verify_sha256

    if not DEFAULT_MODEL.is_file() or not DEFAULT_MODEL_RECORD.is_file():
        raise CheckpointError(f"the bundled model is missing ({DEFAULT_MODEL}); reinstall fakelens")
    verify_sha256(DEFAULT_MODEL, json.loads(DEFAULT_MODEL_RECORD.read_text())["sha256"])
    return DEFAULT_MODEL


def aggregate_scores(scores: Sequence[float], method: str = "mean") -> float:
    """One score from a track's frame scores: ``mean`` or the DFDC winner's ``confident`` strategy."""
    from fakelens.metrics import STRATEGIES

    if method not in STRATEGIES:
        raise InvalidArgument(f"aggregate must be one of {', '.join(STRATEGIES)}, got {method!r}")
    return float(STRATEGIES[method](np.asarray(scores, dtype=np.float64)))


def _check_frames(num_frames) -> int:
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise InvalidArgument(f"frames must be a whole number of at least 1, got {num_frames!r}")
    return int(num_frames)


def confidence_of(score: float, threshold: float) -> float:
    """0 on the threshold, 1 at the far end (0 or 1) of the side the score is on."""
    span = threshold if score < threshold else 1.0 - threshold
    return float(min(1.0, abs(score - threshold) / span)) if span > 0 else 1.0


class Detector:
    """Deepfake detector: MTCNN faces + MobileNetV2 scores, for images and videos.

    Parameters
    ----------
    model : a :class:`fakelens.model.DeepfakeClassifier` (eval mode).
    info : the checkpoint's info (``name``, ``threshold``, ...); see :func:`fakelens.checkpoint.load_model`.
    num_frames : frames sampled per video (default 32).
    threshold : P(fake) at or above which the verdict is FAKE (default: the model's, chosen on validation).
    aggregate : ``"mean"`` or ``"confident"`` (default None: the model's own choice, recorded in its checkpoint,
        else ``"mean"``).
    keep : ``"all"`` faces linked into tracks (default) or only the ``"largest"`` per frame.
    min_track_share : a track decides the verdict only if seen in at least this share of the frames
        of the longest track (default 0.5); see :class:`TrackScore`.
    min_face_prob : faces the detector is less sure of are not scored (default 0.9): MTCNN's own last
        threshold (0.7) lets through patterned textures (a fist, a belly, a poster) now and then.
    track_face_prob : faces of at least this probability are scored too when their track holds a face of
        ``min_face_prob`` (default 0.7; None: never). See :func:`fakelens.faces.scored_crops`.
    detection_size, min_face_size : MTCNN settings (defaults 640 and 60 px; lower ``min_face_size`` for small faces).
    backend : ``"auto"`` (ONNX Runtime on CPU when installed, else PyTorch), ``"onnx"`` or ``"torch"``.
    device : ``"cpu"``, ``"cuda"``...; default CUDA when available.
    overlap : decode, find faces and score at once in threads (default True; see :mod:`fakelens.pipeline`);
        False runs the stages one after the other, as fakelens did before (same crops and scores).
    face_threads : threads finding faces at once when ``overlap`` is on (default None: one on a 2-core machine,
        one per core beyond the first on bigger ones, up to 4; see :func:`fakelens.pipeline.face_threads`).
        Results do not depend on it.
    look_again : look again at full resolution where the downscaled face pass came up short (default True): a
        full-resolution pass on files where few frames have a face, and regions around the tracks in frames
        that miss them (see :func:`fakelens.second_look.second_look`).
    tta : ``"flip"`` scores each crop and its mirror image (mean logit; twice the classifier's work) or ``"none"``
        (default None: the model's own choice, recorded in its checkpoint as ``tta``, else ``"none"``).
    keyframes : ``"never"`` (default) decodes the frames asked for; ``"auto"`` samples a video's keyframes
        only when they are dense enough to stand in for them, and records it in ``Prediction.sampling``
        (see :func:`fakelens.media.plan_sampling`; it shifts scores, see ``constants.DEFAULT_KEYFRAMES``).

    On a CPU, building a Detector calls :func:`fakelens.sysinfo.keep_freed_memory` once per process: glibc then
    keeps freed memory for the next batch instead of unmapping it (a quarter or less of the page faults of a predict;
    ``FAKELENS_KEEP_FREED_MEMORY=0`` turns it off).
    """

    def __init__(
        self,
        model,
        info: dict | None = None,
        num_frames: int = DEFAULT_FRAMES,
        threshold: float | None = None,
        aggregate: str | None = None,
        keep: str = DEFAULT_KEEP,
        min_track_share: float = DEFAULT_MIN_TRACK_SHARE,
        min_face_prob: float = DEFAULT_MIN_FACE_PROB,
        track_face_prob: float | None = DEFAULT_TRACK_FACE_PROB,
        detection_size: int | None = DEFAULT_DETECTION_SIZE,
        min_face_size: int = DEFAULT_MIN_FACE_SIZE,
        backend: str = "auto",
        device: str | torch.device | None = None,
        overlap: bool = True,
        keyframes: str = DEFAULT_KEYFRAMES,
        face_threads: int | None = None,
        look_again: bool = True,
        tta: str | None = None,
    ):
        from fakelens.backends import FlipAveraged, make_backend
        from fakelens.mtcnn import MTCNN

        self.info = dict(info or {})
        if aggregate is None:
            aggregate = self.info.get("inference", {}).get("aggregate", "mean")
        if aggregate not in AGGREGATIONS:
            raise InvalidArgument(f"aggregate must be one of {', '.join(AGGREGATIONS)}, got {aggregate!r}")
        if keep not in KEEP_MODES:
            raise InvalidArgument(f"keep must be one of {', '.join(KEEP_MODES)}, got {keep!r}")
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            keep_freed_memory()
        self.model = model.eval()
        self.name = self.info.get("name", "custom")
        self.threshold = check_threshold(self.info.get("threshold", 0.5) if threshold is None else threshold)
        self.aggregate = aggregate
        self.num_frames = _check_frames(num_frames)
        self.min_track_share = min_track_share
        self.min_face_prob = min_face_prob
        self.track_face_prob = track_face_prob
        if keyframes not in KEYFRAME_MODES:
            raise InvalidArgument(f"keyframes must be one of {', '.join(KEYFRAME_MODES)}, got {keyframes!r}")
        self.overlap = overlap
        self.keyframes = keyframes
        if face_threads is None:
            from fakelens.pipeline import face_threads as default_face_threads

            face_threads = default_face_threads()
        if isinstance(face_threads, bool) or not isinstance(face_threads, int) or face_threads < 1:
            raise InvalidArgument(f"face_threads must be a whole number of at least 1, got {face_threads!r}")
        self.face_threads = face_threads
        self.faces = FaceExtractor(
            MTCNN(min_face_size=min_face_size, detection_size=detection_size, device=self.device),
            num_frames=num_frames,
            keep=keep,
            look_again=look_again,
            sure=min_face_prob,
        )
        self.tta = self.info.get("inference", {}).get("tta", "none") if tta is None else tta
        if self.tta not in TTA_MODES:
            raise InvalidArgument(f"tta must be one of {', '.join(TTA_MODES)}, got {self.tta!r}")
        engine = make_backend(model, backend, self.device)
        self.classify = FlipAveraged(engine) if self.tta == "flip" else engine
        self._explainers: dict = {}

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs) -> Detector:
        """A detector over any checkpoint written by ``fakelens train`` (loaded with ``weights_only=True``)."""
        from fakelens.checkpoint import load_model

        model, info = load_model(path, device="cpu")
        return cls(model, info, **kwargs)

    @classmethod
    def default(cls, **kwargs) -> Detector:
        """The bundled model (trained on the media credited in MODEL_CARD.md), checksum verified."""
        return cls.from_checkpoint(verify_default_model(), **kwargs)

    # ------------------------------------------------------------------ prediction

    def predict(
        self,
        source: str | Path | np.ndarray,
        num_frames: int | None = None,
        threshold: float | None = None,
        aggregate: str | None = None,
        explain: str | None = None,
        progress: ProgressCallback | None = None,
        keep_frames: bool = False,
    ) -> Prediction:
        """Score an image or video file, or an (H, W, 3) uint8 RGB array.

        ``explain`` names a CAM method (``"gradcam"``, ``"gradcam++"``, ...) to attach a heatmap to
        every face; it is off by default because it costs several classifier passes (see
        ``benchmarks/explain_cost.py``). Each face is explained towards its own predicted class at the
        detector's threshold. ``progress(stage, fraction)`` is called as stages finish.
        ``keep_frames=True`` keeps the decoded frames that have faces in ``Prediction.frame_images``
        (for drawing overlays without decoding again).
        Raises :class:`fakelens.errors.MediaError` for unreadable input.
        """
        threshold, aggregate, num_frames = self._options(threshold, aggregate, num_frames)
        if self.overlap and not isinstance(source, np.ndarray):
            from fakelens.pipeline import predict_stream

            finish = self._finisher(threshold, aggregate, explain, progress, keep_frames)
            for _, result in predict_stream(self, [source], num_frames, finish, progress):
                if isinstance(result, Exception):
                    raise result
                assert isinstance(result, Prediction)
                return result
        return self._predict_sequential(source, num_frames, threshold, aggregate, explain, progress, keep_frames)

    def predict_many(
        self,
        sources: Sequence[str | Path],
        num_frames: int | None = None,
        threshold: float | None = None,
        aggregate: str | None = None,
        explain: str | None = None,
    ) -> Iterator[tuple[Path, Prediction | FakelensError]]:
        """``(path, Prediction)`` for each file in order, or ``(path, error)`` for a file that cannot be read.

        With ``overlap`` (the default) the next file decodes while this one's faces are found and scored,
        so a folder keeps both cores of a 2-core machine busy; results equal :meth:`predict`'s one by one.
        """
        threshold, aggregate, num_frames = self._options(threshold, aggregate, num_frames)
        if not self.overlap:
            for source in sources:
                try:
                    yield Path(source), self._predict_sequential(source, num_frames, threshold, aggregate, explain, None, False)
                except FakelensError as exc:
                    yield Path(source), exc
            return
        from fakelens.pipeline import predict_stream

        yield from predict_stream(self, sources, num_frames, self._finisher(threshold, aggregate, explain, None, False))

    def _options(self, threshold, aggregate, num_frames) -> tuple[float, str, int]:
        threshold = self.threshold if threshold is None else check_threshold(threshold)
        aggregate = aggregate or self.aggregate
        if aggregate not in AGGREGATIONS:
            raise InvalidArgument(f"aggregate must be one of {', '.join(AGGREGATIONS)}, got {aggregate!r}")
        num_frames = self.num_frames if num_frames is None else _check_frames(num_frames)
        return threshold, aggregate, num_frames

    def _finisher(self, threshold, aggregate, explain, progress, keep_frames):
        """What the pipeline calls with an input's frames, crops and scores: explanations, then the Prediction."""

        def finish(opened, frames, crops, scores, timings) -> Prediction:
            plan = opened.plan
            return self._finish(opened.name, opened.kind, plan, frames, crops, scores, threshold, aggregate, timings, explain, progress, keep_frames)

        return finish

    def _predict_sequential(self, source, num_frames, threshold, aggregate, explain, progress, keep_frames) -> Prediction:
        """The stages one after the other (``overlap=False``, and in-memory arrays)."""
        report = progress or (lambda stage, fraction: None)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        report("reading frames", 0.0)
        plan = None
        if isinstance(source, np.ndarray):
            frames, kind, name = frames_from_array(source), "image", "<array>"
        else:
            kind, name = media_kind(source), str(source)
            if kind == "image":
                frames = [Frame(0, 0.0, read_image(source))]
            else:
                plan = plan_sampling(source, num_frames, self.keyframes)
                frames = list(iter_video(source, plan))
        timings["decode"] = time.perf_counter() - start

        crops = self._find_faces(frames, report, timings)

        start = time.perf_counter()
        report("scoring", 0.6)
        scores = self.classify(np.stack([c.image for c in crops])) if crops else np.zeros(0)
        timings["classify"] = time.perf_counter() - start
        timings["total"] = sum(timings.values())
        return self._finish(name, kind, plan, frames, crops, scores, threshold, aggregate, timings, explain, progress, keep_frames)

    def _finish(self, name, kind, plan, frames, crops, scores, threshold, aggregate, timings, explain, progress, keep_frames) -> Prediction:
        report = progress or (lambda stage, fraction: None)
        heatmaps = None
        if explain and crops:
            start = time.perf_counter()
            report("explaining", 0.8)
            heatmaps = self.explainer(explain, threshold).explain(np.stack([c.image for c in crops]))
            timings["explain"] = time.perf_counter() - start
            timings["total"] += timings["explain"]
        report("done", 1.0)
        result = self._result(name, kind, frames, crops, scores, heatmaps, threshold, aggregate, timings, explain)
        if plan is not None:
            result.sampling, result.sampling_note = plan.mode, plan.note
        if keep_frames:
            with_faces = {c.frame_index for c in crops}
            result.frame_images = {f.index: f.image for f in frames if f.index in with_faces}
        return result

    def _find_faces(self, frames: list[Frame], report: ProgressCallback, timings: dict) -> list[FaceCrop]:
        start = time.perf_counter()
        report("finding faces", 0.2)
        crops = scored_crops(self.faces.extract_frames(frames), self.min_face_prob, self.track_face_prob)
        timings["faces"] = time.perf_counter() - start
        return crops

    def explainer(self, method: str, threshold: float | None = None):
        """A cached :class:`fakelens.explain.Explainer` over this detector's model and threshold."""
        threshold = self.threshold if threshold is None else float(threshold)
        key = (method, threshold)
        if key not in self._explainers:
            from fakelens.explain import Explainer

            self._explainers[key] = Explainer(self.model, method=method, device=self.device, threshold=threshold)
        return self._explainers[key]

    def _result(self, name, kind, frames, crops, scores, heatmaps, threshold, aggregate, timings, explain):
        faces = [
            FaceScore(
                frame_index=c.frame_index,
                timestamp=c.timestamp,
                track=c.track,
                box=c.box,
                detection_prob=c.prob,
                score=float(s),
                crop_box=c.crop_box,
                crop=c.image,
                heatmap=None if heatmaps is None else heatmaps[i],
            )
            for i, (c, s) in enumerate(zip(crops, scores))
        ]
        tracks = []
        for track in sorted({f.track for f in faces}):
            track_scores = [f.score for f in faces if f.track == track]
            tracks.append(TrackScore(track, aggregate_scores(track_scores, aggregate), len(track_scores)))
        principal = principal_tracks([f.track for f in faces], self.min_track_share)
        for t in tracks:
            t.principal = t.track in principal
        worst = max((t for t in tracks if t.principal), key=lambda t: t.score, default=None)
        if worst is None:
            label, score, confidence = "NO_FACE", None, None
        else:
            score = worst.score
            label = "FAKE" if score >= threshold else "REAL"
            confidence = confidence_of(score, threshold)
        return Prediction(
            source=name,
            kind=kind,
            label=label,
            score=score,
            threshold=threshold,
            aggregate=aggregate,
            confidence=confidence,
            track=None if worst is None else worst.track,
            tracks=tracks,
            faces=faces,
            frames=len(frames),
            frame_times=[(f.index, f.timestamp) for f in frames],
            model=self.name,
            backend=self.classify.name,
            timings=timings,
            explain_method=explain if heatmaps is not None else None,
        )


__all__ = ["Detector", "Prediction", "FaceScore", "TrackScore", "aggregate_scores", "DEFAULT_MODEL"]
