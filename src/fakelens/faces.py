"""Stage 3: faces -> crops.

Each detected face becomes a square 224x224 crop around its box, enlarged by a margin (default 0.3
of the box side, as DeepfakeBench's 1.3x scale), optionally aligned on its 5 landmarks with a
similarity transform. Faces are either reduced to the largest per frame, or linked into tracks
across the sampled frames by box overlap, so that a video with two people yields two tracks.

Tight inputs (a face that fills the frame: dataset face crops, UTKFace/LFW photos, face-track clips) are
handled in two places, and ``predict`` and preprocessing share both:

* **Detection on a padded canvas.** MTCNN's P-Net needs context around a face, and its boxes cannot
  reach past the frame, so frames whose longer side is at most :data:`PAD_MAX_SIDE` are detected on a
  canvas padded by :data:`PAD_FRACTION` of that side; a frame of any size where nothing was found is
  tried once more padded. Boxes and landmarks are mapped back to the frame.
* **Crops filled by reflection.** Where the enlarged crop box reaches past the frame, the crop is filled
  with the frame's mirror image (not black), so a tight face is cropped like a face in a full frame and no
  crop carries a black band that a classifier could learn as a cue.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fakelens.constants import DEFAULT_MIN_FACE_PROB, KEEP_MODES
from fakelens.errors import InvalidArgument
from fakelens.media import Frame, load_frames

if TYPE_CHECKING:  # pragma: no cover
    from fakelens.mtcnn import MTCNN, Face

log = logging.getLogger(__name__)

#: Frames whose longer side is at most this (pixels) are always detected on a padded canvas.
PAD_MAX_SIDE = 640
#: Padding on each side of that canvas, as a fraction of the frame's longer side.
PAD_FRACTION = 0.25

#: ArcFace's 5-point template for a 112x112 face (eyes, nose, mouth corners), the field's usual target.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


@dataclass
class FaceCrop:
    """One face in one frame: where it was found and its 224x224 crop.

    ``box`` is the detector's box and ``crop_box`` the square region the crop shows (both x1, y1, x2, y2
    in frame pixels; ``crop_box`` may reach past the frame, where the crop mirrors the frame). ``landmarks`` are
    in frame pixels, ``crop_landmarks`` in crop pixels.
    """

    frame_index: int
    timestamp: float
    track: int
    box: tuple[float, float, float, float]
    prob: float
    landmarks: tuple[tuple[float, float], ...]
    crop_box: tuple[float, float, float, float]
    crop_landmarks: tuple[tuple[float, float], ...]
    image: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready fields (the crop pixels are left out)."""
        return {
            "frame_index": self.frame_index,
            "timestamp": self.timestamp,
            "track": self.track,
            "box": [round(float(v), 2) for v in self.box],
            "prob": round(float(self.prob), 5),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "crop_box": [round(float(v), 2) for v in self.crop_box],
            "crop_landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.crop_landmarks],
        }


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def square_box(box: Sequence[float], margin: float = 0.3) -> tuple[float, float, float, float]:
    """The square centred on ``box`` whose side is the box's longer side times (1 + ``margin``)."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * (1.0 + margin)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return (cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0)


def _box_transform(box: Sequence[float], size: int) -> np.ndarray:
    """2x3 affine matrix mapping the square ``box`` onto a ``size`` x ``size`` crop."""
    x1, y1, x2, y2 = box
    scale = size / (x2 - x1)
    return np.array([[scale, 0.0, -x1 * scale], [0.0, scale, -y1 * scale]], dtype=np.float64)


def _alignment_transform(landmarks: np.ndarray, size: int, margin: float) -> np.ndarray | None:
    """Least-squares similarity transform (Umeyama) taking the 5 landmarks onto the ArcFace template.

    The template is shrunk about its centre by ``margin`` so aligned crops show as much context as
    box crops. Returns None for degenerate landmarks (all on one point).
    """
    template = ((ARCFACE_TEMPLATE_112 / 112.0 - 0.5) / (1.0 + margin) + 0.5) * size
    src_mean, dst_mean = landmarks.mean(axis=0), template.mean(axis=0)
    src, dst = landmarks - src_mean, template - dst_mean
    variance = (src**2).sum() / len(src)
    if variance < 1e-6:
        return None
    u, singular, vt = np.linalg.svd(dst.T @ src / len(src))
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1  # a reflection is not a similarity: flip the weakest axis
    rotation = u @ np.diag(sign) @ vt
    scale = (singular * sign).sum() / variance
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def crop_face(
    image: np.ndarray,
    face: Face,
    size: int = 224,
    margin: float = 0.3,
    align: bool = False,
) -> tuple[np.ndarray, tuple[float, float, float, float], np.ndarray]:
    """Crop one face from an RGB frame.

    Returns the (size, size, 3) uint8 crop, the square crop box in frame pixels and the 2x3 matrix
    that maps frame pixels to crop pixels. With ``align=True`` the crop is rotated and scaled so the
    landmarks sit on a fixed template; when landmarks are degenerate it falls back to the box crop.
    """
    box = square_box(face.box, margin)
    matrix = None
    if align:
        matrix = _alignment_transform(np.asarray(face.landmarks, dtype=np.float64), size, margin)
    if matrix is None:
        matrix = _box_transform(box, size)
    crop = cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_AREA if matrix[0, 0] < 1.0 else cv2.INTER_LINEAR,
        # Mirror, not black, past the frame's edges (see the module docstring).
        borderMode=cv2.BORDER_REFLECT_101,
    )
    return crop, box, matrix


def pad_frame(image: np.ndarray, fraction: float = PAD_FRACTION) -> tuple[np.ndarray, int]:
    """``image`` on a black canvas padded by ``fraction`` of its longer side on every side, and that pad."""
    pad = max(1, int(round(max(image.shape[:2]) * fraction)))
    return cv2.copyMakeBorder(np.ascontiguousarray(image), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0)), pad


def _unpad(faces: list[Face], pad: int) -> list[Face]:
    """Faces found on a padded canvas, in the original frame's pixels."""
    return [
        dataclasses.replace(
            face,
            box=tuple(float(v) - pad for v in face.box),
            landmarks=tuple((float(x) - pad, float(y) - pad) for x, y in face.landmarks),
        )
        for face in faces
    ]


def detect_faces(
    detector: MTCNN,
    images: Sequence[np.ndarray],
    pad_max_side: int = PAD_MAX_SIDE,
) -> list[list[Face]]:
    """Faces in each image, detecting small (tight) images on a padded canvas and retrying padded where
    nothing was found (see the module docstring). ``pad_max_side=0`` pads only for the retry.

    Each other image is downscaled once, on its own, for the detector (:meth:`MTCNN.reduce`), and detected with
    its original size: the same faces as detecting the full images, without copying them into one batch first.
    """
    images = list(images)
    small = [max(img.shape[:2]) <= pad_max_side for img in images]
    padded = {k: pad_frame(images[k]) for k, is_small in enumerate(small) if is_small}
    inputs = [padded[k][0] if k in padded else detector.reduce(img) for k, img in enumerate(images)]
    sizes = [padded[k][0].shape[:2] if k in padded else img.shape[:2] for k, img in enumerate(images)]
    first = detector.detect(inputs, original_sizes=sizes)
    faces = [_unpad(found, padded[k][1]) if k in padded else found for k, found in enumerate(first)]
    retry = [k for k, found in enumerate(faces) if not found and k not in padded]
    if retry:
        canvases = [pad_frame(images[k]) for k in retry]
        for k, (_, pad), found in zip(retry, canvases, detector.detect([c for c, _ in canvases])):
            faces[k] = _unpad(found, pad)
    return faces


def link_tracks(
    faces_per_frame: Sequence[Sequence[Face]],
    min_iou: float = 0.2,
    max_jump: float = 1.0,
    min_track_fraction: float = 0.25,
) -> list[list[int]]:
    """Assign a track id to every face, linking faces across frames by box overlap or proximity.

    Sampled frames can be a fifth of a second apart, so a face may move more than its box overlaps.
    A face continues a track when its box overlaps the track's last box (IoU >= ``min_iou``) or, failing
    that, when the centres are less than ``max_jump`` box sides apart; pairs are matched greedily,
    overlapping pairs first, then nearest. Tracks seen in fewer than ``min_track_fraction`` of the
    frames the longest track spans are dropped (id -1): they are almost always spurious detections.
    Track ids are renumbered 0, 1, ... by first appearance.
    """
    last_boxes: list[Sequence[float]] = []
    lengths: list[int] = []
    assigned: list[list[int]] = []
    for faces in faces_per_frame:
        pairs = []
        for i, face in enumerate(faces):
            for track, last in enumerate(last_boxes):
                iou = box_iou(face.box, last)
                jump = centre_distance(face.box, last)
                if iou >= min_iou:
                    pairs.append((1.0 - iou, i, track))
                elif jump < max_jump:
                    pairs.append((1.0 + jump, i, track))
        ids = [-1] * len(faces)
        used: set[int] = set()
        for _, i, track in sorted(pairs):
            if ids[i] < 0 and track not in used:
                ids[i] = track
                used.add(track)
        for i, face in enumerate(faces):
            if ids[i] < 0:
                last_boxes.append(face.box)
                lengths.append(0)
                ids[i] = len(last_boxes) - 1
            last_boxes[ids[i]] = face.box
            lengths[ids[i]] += 1
        assigned.append(ids)
    longest = max(lengths, default=0)
    kept = [t for t, n in enumerate(lengths) if n >= max(1.0, min_track_fraction * longest)]
    renumber = {old: new for new, old in enumerate(kept)}
    return [[renumber.get(t, -1) for t in ids] for ids in assigned]


def centre_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Distance between box centres, in units of the larger box side."""
    side = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1], 1e-6)
    dx = (a[0] + a[2] - b[0] - b[2]) / 2.0
    dy = (a[1] + a[3] - b[1] - b[3]) / 2.0
    return (dx * dx + dy * dy) ** 0.5 / side


def _transform_points(points: Iterable[Sequence[float]], matrix: np.ndarray) -> tuple[tuple[float, float], ...]:
    array = np.asarray(list(points), dtype=np.float64).reshape(-1, 2)
    mapped = array @ matrix[:, :2].T + matrix[:, 2]
    return tuple((float(x), float(y)) for x, y in mapped)


class FaceExtractor:
    """Frames -> face crops: detect with MTCNN on a batch of frames, link tracks, crop.

    Parameters
    ----------
    detector : an :class:`fakelens.mtcnn.MTCNN`; default ``MTCNN()`` with its own defaults.
    num_frames : frames sampled from a video (default 32). Images are one frame.
    keep : ``"largest"`` keeps the largest face per frame (track 0); ``"all"`` keeps every face,
        linked into tracks (default ``"largest"``).
    size : crop side in pixels (default 224).
    margin : extra context around the face box, as a fraction of its side (default 0.3).
    align : rotate and scale each crop so the 5 landmarks sit on a fixed template (default False).
    batch_size : frames given to the detector per call (default 8); smaller uses less memory.
    look_again : look again at full resolution where the detector's downscaled pass came up short (default
        True; see :func:`fakelens.second_look.second_look`). Nothing changes for a detector without ``detection_size``.
    sure : the face probability a caller scores (default 0.9, ``Detector``'s ``min_face_prob``): the second look
        searches again where a frame has no face that sure.
    """

    def __init__(
        self,
        detector: MTCNN | None = None,
        num_frames: int = 32,
        keep: str = "largest",
        size: int = 224,
        margin: float = 0.3,
        align: bool = False,
        batch_size: int = 8,
        look_again: bool = True,
        sure: float = DEFAULT_MIN_FACE_PROB,
    ):
        if keep not in KEEP_MODES:
            raise InvalidArgument(f"keep must be one of {', '.join(KEEP_MODES)}, got {keep!r}")
        if detector is None:
            from fakelens.mtcnn import MTCNN

            detector = MTCNN()
        self.detector = detector
        self.num_frames = num_frames
        self.keep = keep
        self.size = size
        self.margin = margin
        self.align = align
        self.batch_size = batch_size
        self.look_again = look_again
        self.sure = sure

    def detect(self, frames: Sequence[Frame], progress: bool = False) -> list[list[Face]]:
        """Faces in each frame, from batched detector calls."""
        from tqdm.auto import tqdm

        faces: list[list[Face]] = []
        bar = tqdm(total=len(frames), desc="finding faces", unit="frame", disable=not progress, leave=False)
        for start in range(0, len(frames), self.batch_size):
            batch = [f.image for f in frames[start : start + self.batch_size]]
            faces.extend(detect_faces(self.detector, batch))
            bar.update(len(batch))
        bar.close()
        return self.second_look(frames, faces)

    def second_look(self, frames: Sequence[Frame], faces_per_frame: Sequence[Sequence[Face]]) -> list[list[Face]]:
        """:func:`fakelens.second_look.second_look` over the faces of every sampled frame of one file (a no-op with
        ``look_again`` off)."""
        if not self.look_again:
            return [list(f) for f in faces_per_frame]
        from fakelens.second_look import second_look

        return second_look(self.detector, [f.image for f in frames], faces_per_frame, self.sure)

    def extract_frames(self, frames: Sequence[Frame], progress: bool = False) -> list[FaceCrop]:
        """Face crops of already-decoded frames, in frame order then track order."""
        faces_per_frame = self.select(self.detect(frames, progress=progress))
        crops: list[FaceCrop] = []
        for frame, faces, ids in zip(frames, faces_per_frame, self.tracks(faces_per_frame)):
            for face, track in sorted(zip(faces, ids), key=lambda pair: pair[1]):
                if track >= 0:
                    crops.append(self.crop(frame, face, track))
        return crops

    def select(self, faces_per_frame: list[list[Face]]) -> list[list[Face]]:
        """The faces kept per frame: all of them, or with ``keep="largest"`` the largest one."""
        if self.keep == "largest":
            return [[largest_face(faces)] if faces else [] for faces in faces_per_frame]
        return faces_per_frame

    def tracks(self, faces_per_frame: Sequence[Sequence[Face]]) -> list[list[int]]:
        """A track id per kept face (-1: a spurious track, not cropped); see :func:`link_tracks`."""
        if self.keep == "largest":
            return [[0] * len(faces) for faces in faces_per_frame]
        return link_tracks(faces_per_frame)

    def crop(self, frame: Frame, face: Face, track: int) -> FaceCrop:
        """One face of one frame as a :class:`FaceCrop` (the pipeline crops before tracks are known, with -1)."""
        image, box, matrix = crop_face(frame.image, face, self.size, self.margin, self.align)
        return FaceCrop(
            frame_index=frame.index,
            timestamp=frame.timestamp,
            track=track,
            box=tuple(float(v) for v in face.box),
            prob=float(face.prob),
            landmarks=tuple((float(x), float(y)) for x, y in face.landmarks),
            crop_box=box,
            crop_landmarks=_transform_points(face.landmarks, matrix),
            image=image,
        )

    def extract(self, path: str | Path, progress: bool = False, keyframes: str = "never") -> list[FaceCrop]:
        """Face crops of an image or of ``num_frames`` frames sampled from a video ([] when no face);
        ``keyframes`` as :func:`fakelens.media.load_frames` takes it."""
        frames = load_frames(path, num_frames=self.num_frames, keyframes=keyframes)
        return self.extract_frames(frames, progress=progress)


def largest_face(faces: Sequence[Face]) -> Face:
    """The face with the largest box (ties: the most probable): the subject of a dataset crop or a portrait."""
    return max(faces, key=lambda f: (f.area, f.prob))


def principal_tracks(tracks: Sequence[int], min_share: float) -> set[int]:
    """The tracks (one id per face) holding at least ``min_share`` of the longest track's faces: the ones a
    verdict rests on, so that a face glimpsed in a few frames (a poster, a passer-by) cannot overturn it."""
    sizes: dict[int, int] = {}
    for track in tracks:
        sizes[track] = sizes.get(track, 0) + 1
    longest = max(sizes.values(), default=0)
    return {t for t, n in sizes.items() if n >= min_share * longest}


def score_floor(min_face_prob: float, track_face_prob: float | None) -> float:
    """The lowest face probability :func:`scored_crops` may keep: faces under it need never be cropped."""
    return min_face_prob if track_face_prob is None else min(track_face_prob, min_face_prob)


def scored_crops(crops: Sequence[FaceCrop], min_face_prob: float, track_face_prob: float | None = None) -> list[FaceCrop]:
    """The crops a verdict is scored from: faces of probability ``min_face_prob`` or more, and faces of at least
    ``track_face_prob`` on a track that holds one of those (None: ``min_face_prob`` alone). Crops off any track
    (track -1) are never scored."""
    floor = score_floor(min_face_prob, track_face_prob)
    confirmed = {c.track for c in crops if c.prob >= min_face_prob}
    return [c for c in crops if c.track >= 0 and (c.prob >= min_face_prob or (c.prob >= floor and c.track in confirmed))]


def write_crops(crops: Sequence[FaceCrop], out_dir: str | Path, stem: str, quality: int = 95) -> list[Path]:
    """Write crops as ``<stem>_f<frame>_t<track>.jpg`` under ``out_dir`` atomically; return their paths."""
    from fakelens import atomic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for crop in crops:
        path = out_dir / f"{stem}_f{crop.frame_index:06d}_t{crop.track}.jpg"
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise OSError(f"could not encode {path}")
        paths.append(atomic.write_bytes(path, data.tobytes()))
    return paths
