"""Dense face landmarks: MediaPipe's 468-point face mesh on face crops, run by ONNX Runtime.

The model (``weights/face_landmark.onnx``) is MediaPipe's ``face_landmark.tflite`` from the ``mediapipe==0.10.14``
wheel (Apache-2.0), converted once by ``scripts/convert_facemesh.py``; ``weights/FACE_LANDMARK_PROVENANCE.md``
says where it came from and how to rebuild it. Self-Blended Images uses the points for masks that reach the jaw
and the brows (``SBIConfig(mask="dense")`` in :mod:`fakelens.sbi`), where MTCNN's 5 points can only be extrapolated.

>>> mesh = FaceMesh()                                   # doctest: +SKIP
>>> points, confidence = mesh.predict(crops)            # (N, 468, 2) crop pixels, (N,) in [0, 1]

The model expects a face filling its 192x192 input roughly as MediaPipe's detector ROI does (the face box x 1.5);
fakelens's 224x224 crops (the MTCNN box x 1.3) are close to that and are resized as they are. The index tables
below name the points the masks and the tests use (MediaPipe's canonical face-mesh numbering; "right" is the
subject's right, i.e. the left of the image, as MTCNN's first eye).

Training crops are meshed once and cached: :func:`dense_landmarks` keeps a sidecar ``.npz`` next to the
manifest (written atomically), keyed by crop path, so no SBI draw ever runs the model.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MODEL_PATH = Path(__file__).parent / "weights" / "face_landmark.onnx"
INPUT = 192  #: the model's input side
NUM_POINTS = 468
MIN_CONFIDENCE = 0.5  #: below this face confidence :func:`dense_landmarks` records no points for a crop

#: The face oval, in order around the face from the top of the forehead (10) over the subject's left to the chin (152).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)  # fmt: skip
#: The oval from temple to temple through the jaw and chin (the part of :data:`FACE_OVAL` dlib's 17 jaw points cover).
JAW = (356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127)
RIGHT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
BROWS = RIGHT_BROW + LEFT_BROW
RIGHT_EYE = (33, 133)  #: outer and inner corner of the subject's right eye (the left of the image)
LEFT_EYE = (362, 263)  #: inner and outer corner of the subject's left eye
NOSE_TIP = 1
MOUTH_RIGHT, MOUTH_LEFT = 61, 291  #: mouth corners (image left, image right)
CHIN = 152
FOREHEAD = 10


def five_points(points: np.ndarray) -> np.ndarray:
    """MTCNN's 5 landmarks (eyes, nose, mouth corners, in MTCNN's order) from mesh points (..., 468, 2)."""
    points = np.asarray(points)
    return np.stack(
        [
            points[..., RIGHT_EYE, :].mean(axis=-2),
            points[..., LEFT_EYE, :].mean(axis=-2),
            points[..., NOSE_TIP, :],
            points[..., MOUTH_RIGHT, :],
            points[..., MOUTH_LEFT, :],
        ],
        axis=-2,
    )


def model_sha256(path: str | os.PathLike = MODEL_PATH) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class FaceMesh:
    """468 landmarks per face crop.

    Parameters
    ----------
    model_path : the ONNX face mesh (default: the bundled ``weights/face_landmark.onnx``).
    threads : ONNX Runtime intra-op threads (default 1: meshing is a one-off preprocessing step beside training).
    batch_size : crops per model call (default 64).
    """

    def __init__(self, model_path: str | os.PathLike | None = None, threads: int = 1, batch_size: int = 64):
        import onnxruntime as ort

        self.model_path = Path(model_path) if model_path is not None else MODEL_PATH
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        self.batch_size = int(batch_size)

    @staticmethod
    def _input(crop: np.ndarray) -> np.ndarray:
        import cv2

        if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB crops, got {crop.shape} {crop.dtype}")
        h, w = crop.shape[:2]
        interpolation = cv2.INTER_AREA if min(h, w) > INPUT else cv2.INTER_LINEAR
        return cv2.resize(crop, (INPUT, INPUT), interpolation=interpolation).astype(np.float32) / 255.0

    def predict(self, crops: Sequence[np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks (N, 468, 2) float32 in each crop's pixels (x, y) and face confidence (N,) in [0, 1].

        ``crops``: (H, W, 3) uint8 RGB face crops (any size; 224x224 in fakelens), a list or an (N, H, W, 3) array.
        """
        crops = list(crops)
        points = np.zeros((len(crops), NUM_POINTS, 2), dtype=np.float32)
        confidence = np.zeros(len(crops), dtype=np.float32)
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start : start + self.batch_size]
            batch = np.stack([self._input(c) for c in chunk])
            landmarks, logits = self.session.run(["landmarks", "face_logit"], {"image": batch})
            xy = landmarks.reshape(len(chunk), NUM_POINTS, 3)[..., :2]
            scale = np.array([[c.shape[1] / INPUT, c.shape[0] / INPUT] for c in chunk], dtype=np.float32)
            points[start : start + len(chunk)] = xy * scale[:, None, :]
            confidence[start : start + len(chunk)] = 1.0 / (1.0 + np.exp(-logits[:, 0].astype(np.float64)))
        return points, confidence

    __call__ = predict


# --------------------------------------------------------------------------- the cache of a manifest's crops


def cache_path_for(manifest: str | os.PathLike) -> Path:
    """The sidecar cache of a manifest's dense landmarks: ``<manifest>.facemesh.npz`` beside it."""
    manifest = Path(manifest)
    return manifest.with_name(manifest.name + ".facemesh.npz")


def _key(crop_path: str | os.PathLike, root: Path) -> str:
    try:
        return os.path.relpath(os.path.abspath(crop_path), os.path.abspath(root))
    except ValueError:  # another drive (Windows)
        return str(crop_path)


def _read_cache(path: Path, sha: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        if str(data["model_sha256"]) != sha:
            return {}
        return dict(zip((str(k) for k in data["keys"]), data["points"]))


def dense_landmarks(
    rows: Sequence,
    cache: str | os.PathLike,
    mesh: FaceMesh | None = None,
    progress: bool = False,
) -> list[np.ndarray | None]:
    """Each manifest row's 468 landmarks as fractions of its crop's width and height, (468, 2) float32, or None
    where the mesh was not confident (< :data:`MIN_CONFIDENCE`) a face is there.

    Rows already in ``cache`` (an ``.npz``, see :func:`cache_path_for`) are read from it; the others are meshed
    (``mesh``, default ``FaceMesh()``) and the cache rewritten atomically with them. Entries made by another
    model file are ignored. Keys are crop paths relative to the cache's folder.
    """
    from fakelens import atomic
    from fakelens.data.augment import load_crop

    cache = Path(cache)
    sha = model_sha256(mesh.model_path if mesh is not None else MODEL_PATH)
    known = _read_cache(cache, sha)
    keys = [_key(row.crop_path, cache.parent) for row in rows]
    missing = sorted({k for k in keys if k not in known})
    if missing:
        mesh = mesh or FaceMesh()
        by_key = {k: row for k, row in zip(keys, rows)}
        chunks = range(0, len(missing), mesh.batch_size)
        if progress:
            from tqdm import tqdm

            chunks = tqdm(chunks, desc="face mesh", unit="batch")
        for start in chunks:
            part = missing[start : start + mesh.batch_size]
            images = [load_crop(by_key[k], size=224)[0] for k in part]
            points, confidence = mesh.predict(images)
            for k, image, p, c in zip(part, images, points, confidence):
                p = p / (image.shape[1], image.shape[0])
                known[k] = (p if c >= MIN_CONFIDENCE else np.full_like(p, np.nan)).astype(np.float16)
        ordered = sorted(known)
        with atomic.atomic_path(cache) as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle,
                keys=np.array(ordered),
                points=np.stack([known[k] for k in ordered]).astype(np.float16),
                model_sha256=np.array(sha),
            )
    out: list[np.ndarray | None] = []
    for k in keys:
        p = known[k].astype(np.float32)
        out.append(None if not np.isfinite(p).all() else p)
    return out


__all__ = [
    "BROWS",
    "CHIN",
    "FACE_OVAL",
    "FOREHEAD",
    "JAW",
    "MIN_CONFIDENCE",
    "FaceMesh",
    "cache_path_for",
    "dense_landmarks",
    "five_points",
]
