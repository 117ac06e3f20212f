"""The names and numbers every part of fakelens agrees on, in one torch-free module.

The CLI builds its ``choices`` from here, so ``fakelens --help`` never imports torch; the library validates
against the same tuples, and the app and the tests read them instead of re-typing lists. A value lives
here when more than one module needs it; a stage's private tuning knob stays in its own module.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- labels and splits
#: Ground-truth labels in manifests and media lists (lower case, as datasets write them).
LABELS = ("real", "fake")
#: Dataset splits, in the order a run uses them.
SPLITS = ("train", "val", "test")
#: Verdicts of :class:`fakelens.detector.Prediction` (upper case, as the user reads them).
VERDICTS = ("REAL", "FAKE", "NO_FACE")
#: Kinds of training item: a real crop, a dataset fake, or a self-blended pseudo-fake made from a real crop.
KINDS = ("real", "fake", "sbi")

# --------------------------------------------------------------------------- media
#: Still images Pillow reads here. Which *file* is an image is decided by its content (fakelens.media.media_kind);
#: suffixes only tell a folder walk which names to try first, and name the upload types.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff"})
#: Frame sequences PyAV decodes (FFmpeg's usual container suffixes); an animated GIF is a video.
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".avi", ".mov", ".qt", ".mkv", ".webm", ".gif", ".mpg", ".mpeg", ".m1v", ".m2v", ".mpe",
    ".ts", ".mts", ".m2ts", ".vob", ".flv", ".f4v", ".wmv", ".asf", ".3gp", ".3g2", ".ogv", ".mxf", ".dv", ".y4m",
    ".rm", ".rmvb", ".divx", ".nut",
})  # fmt: skip
#: Largest upload the app and the HTTP API accept, in MB.
DEFAULT_MAX_UPLOAD_MB = 200

# --------------------------------------------------------------------------- faces
#: Side of the square face crop the classifier reads, in pixels.
INPUT_SIZE = 224
#: Context added around the detector's box, as a fraction of its side (the seed's x1.3 crop).
CROP_MARGIN = 0.3
#: ``keep`` modes of face extraction: the largest face per frame, or every face linked into tracks.
KEEP_MODES = ("largest", "all")
#: What `predict` scores, and so what `fakelens faces` shows by default: every face, found on frames
#: downscaled to 640 px (longest side), none under 60 px (too little detail for a 224 px classifier).
#: On a 12 s 720p clip 640 px takes face finding from 1.37 s (40 px) to 0.82 s (benchmarks/pipeline_speed.py).
DEFAULT_KEEP = "all"
DEFAULT_DETECTION_SIZE = 640
DEFAULT_MIN_FACE_SIZE = 60
#: Detections below this MTCNN probability are not scored (patterned textures pass lower thresholds).
DEFAULT_MIN_FACE_PROB = 0.9
#: ... unless they lie on a track that holds a face of at least DEFAULT_MIN_FACE_PROB: then MTCNN's own last
#: threshold (0.7) is enough. A dim or turned face on an established track scores 0.72-0.89 in many frames, and a
#: verdict resting on 7 of 32 frames is a poor one (fakelens.faces.scored_crops).
DEFAULT_TRACK_FACE_PROB = 0.7
#: A track decides the verdict when it holds at least this share of the longest track's faces.
DEFAULT_MIN_TRACK_SHARE = 0.5
#: Frames sampled per video by default.
DEFAULT_FRAMES = 32
#: Whether `predict` may sample keyframes only: ``"auto"`` does when every sampled frame has a keyframe of its
#: own within half the sampling step (GOP-12 MPEG-4 clips: ~4x less decoding) and records it in the
#: Prediction; ``"never"`` decodes the frames asked for. See fakelens.media.plan_sampling. Off by default:
#: keyframes are coded better than the frames between them, and on the 3 pool videos where "auto" applies
#: it lowered P(fake) by 0.08-0.09 (docs/results/scores_fast_path.md), for little time (small clips).
KEYFRAME_MODES = ("auto", "never")
DEFAULT_KEYFRAMES = "never"

# --------------------------------------------------------------------------- model and scores
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: How frame scores become a track score (see fakelens.metrics.aggregate_scores).
AGGREGATIONS = ("mean", "confident")
#: Test-time augmentation of the classifier: none, or the mean logit of each crop and its mirror image.
TTA_MODES = ("none", "flip")
#: How a decision threshold is chosen on validation scores (see fakelens.metrics.best_threshold).
THRESHOLD_CRITERIA = ("balanced_accuracy", "f1")

# --------------------------------------------------------------------------- training
#: Where training's FAKE samples come from: manifest fakes, self-blended images, or both.
FAKES_MODES = ("dataset", "sbi", "both")
#: Backbone batch norm during training (see fakelens.train).
BN_MODES = ("auto", "train", "frozen")
#: Which backbone parameters train: all, or only batch norm weights and biases (BlenD).
BACKBONE_PARAMS = ("all", "norm")
#: SBI's blend mask: the hull extrapolated from 5 landmarks, or hulls of the 468-point face mesh (fakelens.sbi).
SBI_MASKS = ("five", "dense")
#: SBI's colour change of the source: the reference code's subtle one, or the first release's strong one.
SBI_COLOURS = ("paper", "strong")

# --------------------------------------------------------------------------- explanations
#: CAM methods, by registry name (fakelens.explain's registry holds one class per name), with their
#: display names. The first is the default.
CAM_METHODS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM", "eigencam": "Eigen-CAM"}
DEFAULT_CAM_METHOD = "gradcam"
#: Which class a CAM explains: the predicted one, or FAKE / REAL whatever the prediction.
CAM_TARGETS = ("predicted", "fake", "real")


def sigmoid(logits) -> np.ndarray:
    """P(fake) from logits, float64, without overflow warnings for large logits."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, dtype=np.float64), -60, 60)))


def check_threshold(value: float, name: str = "threshold") -> float:
    """``value`` as a float in [0, 1], or :class:`fakelens.errors.InvalidArgument` saying what was wrong."""
    from fakelens.errors import InvalidArgument

    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= number <= 1.0 or number != number:
        raise InvalidArgument(f"{name} must be in [0, 1], got {value!r}")
    return number
