"""Self-Blended Images (Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022).

A pseudo-fake is made from one REAL face crop on the fly: a copy of the crop (the *source*) is altered in
colour and slightly moved, then blended back into the original (the *target*) inside a soft face mask.
The result keeps the identity and the background but carries the generic traces of face swapping - a
blending boundary, a colour mismatch and a small misalignment - so a classifier trained on real vs
self-blended faces learns those traces rather than one generator's fingerprints. Its label is FAKE.

Choices made here, checked against the paper's code (mapooon/SelfBlendedImages, ``src/utils/sbi.py`` and
``src/utils/blend.py``); the paper uses 81 dlib landmarks, fakelens has MTCNN's 5:

* **Source transforms** as the reference ``get_source_transforms``: an RGB shift of up to +-20 per channel
  with p = 0.3; a hue/saturation/value shift whose limits (+-0.3) are in 8-bit units there, so almost
  nothing (kept as +-0.6 degrees of hue and +-0.3/255 of saturation and value); brightness and contrast
  +-10% (always); then always one of a downscale-upscale by 2 or 4 (``RandomDownScale``) or a sharpening
  (alpha 0.2-0.5). The colour change is deliberately subtle: a visibly green or yellow face is a cue real
  deepfakes rarely carry.
* **Source or target**: with p = 1/2 the transforms alter the source (the face pasted in), otherwise the
  target (the crop the face is pasted into) - as the reference does. The REAL image of the pair is the
  target as blended into (:attr:`SBIResult.real`), so a pair differs only inside the mask.
* **Grayscale crops** (LFW, old photos): the pseudo-fake is turned back to grayscale, so colour is never the
  cue that separates a gray real from its pseudo-fake.
* A small affine move (scale 0.95-1.05, translation up to 3% of the crop) applied to the source *and* the
  mask together, as the paper's ``randaffine`` does.
* **Mask from 5 landmarks**: the paper's convex hull of the face landmarks is rebuilt from the eyes, nose
  and mouth corners: with u the unit vector from mouth centre to eye centre, h the eye-mouth distance and
  d the inter-ocular distance, the eyes are lifted by 0.5-0.9 h to reach the eyebrows, the mouth corners
  are lowered by 0.6-1.0 h to reach the chin, and the points are pushed outwards by 0.3-0.6 d to cover the
  cheeks. Either this *full face* hull (p = 0.6) or a tighter *inner face* hull (eyes to mouth, p = 0.4) is
  drawn, every point jittered by a few pixels - the counterpart of the paper's random hull types.
* **Mask from 468 landmarks** (``SBIConfig(mask="dense")``; the default ``"five"`` is the hull above): the
  points of MediaPipe's face mesh (:mod:`fakelens.facemesh`, computed once per crop and cached) give the jaw, the
  chin and the brows themselves instead of extrapolating them. One of four hulls is drawn uniformly, as the
  reference's ``random_get_hull`` draws one of its four: the whole *face oval* up to the forehead (the convex hull
  of dlib's 81 points), *jaw and brows* (the hull of the 68: the oval below the brows, and the brows), *extended*
  (jaw and brows with the brows lifted 20-80% of the way to the top of the forehead) and *inner* (the face oval
  shrunk 70-85% towards the centre of the eyes, nose and mouth). A crop without dense points (the mesh saw no
  face) falls back to the 5-point hull, with the same draws as under ``"five"``.
* **Mask deformation**: an elastic deformation (a random displacement field smoothed by a Gaussian), a
  random overall scale of the mask (0.9-1.1), then the paper's ``get_blend_mask``: Gaussian blur, cut to
  the fully inside part, blur again with a random kernel, normalised to a peak of 1.
* **Blend ratio**: drawn from {0.25, 0.5, 0.75, 1, 1, 1} (the paper's ``dynamic_blend``) and multiplied into
  the mask, so the output is ``target + mask * (source - target)``: pixels where the mask is 0 are the
  target's, bit for bit.
* **No landmarks** (crops from detectors that did not record them): a centred ellipse covering the middle
  of the crop (centre at 50% width, 52-56% height; half-axes 26-32% of the width and 32-38% of the height),
  which is where a face detector's crop with a 30% margin puts the face.

The image augmentations that follow blending (JPEG 40-100 and the rest) are the training set's, applied
with the same random parameters to both images of a pair: see :class:`fakelens.data.CropDataset`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from fakelens import facemesh
from fakelens.constants import SBI_COLOURS, SBI_MASKS

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
MASK_MODES = SBI_MASKS
#: The hull types of dense masks, drawn uniformly (see the module docstring).
DENSE_HULLS = ("oval", "brows", "extended", "inner")


@dataclass
class SBIConfig:
    """Strengths of the SBI transforms (defaults follow the paper where it gives numbers)."""

    rgb_shift: float = 20.0  #: max per-channel shift, in 0-255 units
    rgb_shift_p: float = 0.3  #: probability of the RGB shift
    hue_shift: float = 0.6  #: max hue shift, degrees (the reference's 0.3 in OpenCV's 0-180 units)
    sat_shift: float = 0.3 / 255  #: max saturation change, additive in [0, 1] (the reference's 0.3 of 255)
    val_shift: float = 0.3 / 255  #: max value change, additive in [0, 1]
    brightness: float = 0.1  #: max brightness change, fraction
    contrast: float = 0.1  #: max contrast change, fraction
    degrade_p: float = 1.0  #: probability of a downscale-upscale (by 2 or 4) or a sharpening
    source_p: float = 0.5  #: probability that the transforms alter the source (else the target)
    max_scale: float = 0.05  #: affine scale range of the source (1 +- this)
    max_translate: float = 0.03  #: affine translation range, fraction of the crop side
    full_face_p: float = 0.6  #: probability of the full-face hull (else the inner-face hull)
    elastic_alpha: float = 30.0  #: elastic displacement magnitude, pixels (before smoothing normalisation)
    elastic_sigma: float = 7.0  #: smoothing of the elastic displacement field, pixels
    blend_ratios: tuple[float, ...] = field(default_factory=lambda: BLEND_RATIOS)
    mask: str = "five"  #: "five" (hull extrapolated from 5 landmarks) or "dense" (hulls of the 468-point mesh)
    relative_sv: bool = False  #: saturation/value shifts scale S and V (the first release) instead of adding to them

    def __post_init__(self):
        if self.mask not in MASK_MODES:
            raise ValueError(f"mask must be one of {', '.join(MASK_MODES)}, got {self.mask!r}")

    @classmethod
    def preset(cls, colour: str = "paper", mask: str = "five") -> SBIConfig:
        """The config of a named colour change (:data:`COLOUR_PRESETS`) and mask; ``paper`` is the default."""
        if colour not in COLOUR_PRESETS:
            raise ValueError(f"colour must be one of {', '.join(COLOUR_PRESETS)}, got {colour!r}")
        return cls(mask=mask, **COLOUR_PRESETS[colour])


#: The source's colour change. ``paper``: the reference code's (subtle; the dataclass defaults). ``strong``: the
#: first release's (RGB shift always, hue +-10 degrees, saturation and value +-30% relative), kept for the
#: colour A/B of #10 (docs/results/ab_sbi_colour.md); it often turns a face visibly green or yellow.
COLOUR_PRESETS: dict[str, dict] = {
    "paper": {},
    "strong": {"rgb_shift_p": 1.0, "hue_shift": 10.0, "sat_shift": 0.3, "val_shift": 0.3, "relative_sv": True},
}
assert tuple(COLOUR_PRESETS) == SBI_COLOURS


@dataclass
class SBIResult:
    """A self-blended image: ``image`` (H, W, 3) uint8, ``mask`` (H, W) float32 in [0, 1] as blended
    (blend ratio included), the ``source`` pasted in, the ``real`` target it was pasted into (the REAL
    image of the pair: the input itself unless the transforms altered the target), and whether landmarks
    shaped the mask."""

    image: np.ndarray
    mask: np.ndarray
    source: np.ndarray
    used_landmarks: bool
    real: np.ndarray | None = None
    label: str = "fake"
    target: int = 1


# --------------------------------------------------------------------------- source transforms


def _colour_transform(image: np.ndarray, rng: np.random.Generator, cfg: SBIConfig) -> np.ndarray:
    out = image.astype(np.float32)
    shift = rng.uniform(-cfg.rgb_shift, cfg.rgb_shift, size=3).astype(np.float32)
    if rng.random() < cfg.rgb_shift_p:
        out = np.clip(out + shift, 0, 255)
    hsv = cv2.cvtColor(out / 255.0, cv2.COLOR_RGB2HSV)  # float input: H in degrees, S and V in [0, 1]
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue_shift, cfg.hue_shift)) % 360.0
    for channel, limit in ((1, cfg.sat_shift), (2, cfg.val_shift)):
        delta = rng.uniform(-limit, limit)
        moved = hsv[..., channel] * (1.0 + delta) if cfg.relative_sv else hsv[..., channel] + delta
        hsv[..., channel] = np.clip(moved, 0, 1)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
    brightness = 1.0 + rng.uniform(-cfg.brightness, cfg.brightness)
    contrast = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
    mean = out.mean()
    out = (out - mean) * contrast + mean * brightness
    return np.clip(out, 0, 255)


def _degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    if rng.random() < 0.5:
        ratio = int(rng.choice((2, 4)))  # the reference's RandomDownScale
        small = cv2.resize(image, (max(1, w // ratio), max(1, h // ratio)), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    amount = rng.uniform(0.2, 0.5)
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
    return np.clip(image + amount * (image - blurred), 0, 255)


def _random_affine(h: int, w: int, rng: np.random.Generator, cfg: SBIConfig) -> np.ndarray:
    scale = 1.0 + rng.uniform(-cfg.max_scale, cfg.max_scale)
    tx, ty = rng.uniform(-cfg.max_translate, cfg.max_translate, size=2) * (w, h)
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), 0.0, scale)
    matrix[:, 2] += (tx, ty)
    return matrix


# --------------------------------------------------------------------------- masks


def _valid_landmarks(landmarks, h: int, w: int) -> np.ndarray | None:
    if landmarks is None:
        return None
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        return None
    eye_distance = np.linalg.norm(points[1] - points[0])
    eye_mouth = np.linalg.norm((points[0] + points[1]) / 2 - (points[3] + points[4]) / 2)
    # Degenerate or far-off-crop landmarks would give an empty or absurd hull: use the ellipse instead.
    if eye_distance < 0.05 * w or eye_mouth < 0.05 * h:
        return None
    if (points < -0.25 * w).any() or (points[:, 0] > 1.25 * w).any() or (points[:, 1] > 1.25 * h).any():
        return None
    return points


def hull_from_landmarks(landmarks: np.ndarray, lift: float, drop: float, widen: float) -> np.ndarray:
    """Polygon (11, 2) around the face from 5 landmarks: the eyes lifted by ``lift`` x h (brows), the mouth
    lowered by ``drop`` x h (chin) and the sides pushed out by ``widen`` x d (cheeks), where h is the
    eye-mouth distance and d the inter-ocular distance (see the module docstring)."""
    left_eye, right_eye, nose, mouth_left, mouth_right = np.asarray(landmarks, dtype=np.float64)
    eye_centre = (left_eye + right_eye) / 2
    mouth_centre = (mouth_left + mouth_right) / 2
    up = eye_centre - mouth_centre
    h = np.linalg.norm(up)
    u = up / h
    across = right_eye - left_eye
    d = np.linalg.norm(across)
    r = across / d
    lift, drop, widen = lift * h, drop * h, widen * d
    return np.array(
        [
            left_eye + u * lift - r * widen * 0.5,  # brows
            right_eye + u * lift + r * widen * 0.5,
            left_eye - r * widen,  # temples / upper cheeks
            right_eye + r * widen,
            nose - r * (d * 0.5 + widen),  # cheeks at nose level
            nose + r * (d * 0.5 + widen),
            mouth_left - r * widen * 0.6,  # lower cheeks
            mouth_right + r * widen * 0.6,
            mouth_left - u * drop * 0.8,  # jaw
            mouth_right - u * drop * 0.8,
            mouth_centre - u * drop,  # chin
        ]
    )


#: Ranges of (lift, drop, widen) of the full-face and inner-face hulls.
FULL_FACE_HULL = ((0.5, 0.9), (0.6, 1.0), (0.3, 0.6))
INNER_FACE_HULL = ((0.15, 0.35), (0.2, 0.4), (0.1, 0.25))


def face_hull_points(landmarks: np.ndarray, rng: np.random.Generator, full_face: bool = True) -> np.ndarray:
    """A random hull (K, 2) around the face built from 5 landmarks (see the module docstring for the geometry)."""
    ranges = FULL_FACE_HULL if full_face else INNER_FACE_HULL
    lift, drop, widen = (rng.uniform(lo, hi) for lo, hi in ranges)
    points = hull_from_landmarks(landmarks, lift, drop, widen)
    d = np.linalg.norm(np.asarray(landmarks, dtype=np.float64)[1] - np.asarray(landmarks, dtype=np.float64)[0])
    points += rng.normal(0.0, 0.03 * d, size=points.shape)
    return points


def _valid_dense(points, h: int, w: int) -> np.ndarray | None:
    if points is None:
        return None
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (facemesh.NUM_POINTS, 2) or not np.isfinite(points).all():
        return None
    span = points.max(axis=0) - points.min(axis=0)
    if span[0] < 0.1 * w or span[1] < 0.1 * h or (points < -0.25 * w).any() or (points > 1.25 * w).any():
        return None
    return points


def dense_hull_points(points: np.ndarray, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """A hull (K, 2) around the face from the 468 mesh points: ``kind`` in :data:`DENSE_HULLS`, or drawn (default)."""
    points = np.asarray(points, dtype=np.float64)
    if kind is None:
        kind = DENSE_HULLS[int(rng.integers(len(DENSE_HULLS)))]
    oval, jaw, brows = (points[list(ix)] for ix in (facemesh.FACE_OVAL, facemesh.JAW, facemesh.BROWS))
    if kind == "oval":
        return oval
    if kind == "brows":
        return np.concatenate([jaw, brows])
    if kind == "extended":
        lift = points[facemesh.FOREHEAD] - brows.mean(axis=0)
        return np.concatenate([jaw, brows + rng.uniform(0.2, 0.8) * lift])
    if kind == "inner":
        centre = facemesh.five_points(points).mean(axis=0)
        return centre + rng.uniform(0.7, 0.85) * (oval - centre)
    raise ValueError(f"unknown dense hull {kind!r}")


def _polygon_mask(points: np.ndarray, h: int, w: int) -> np.ndarray:
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    mask = np.zeros((h, w), dtype=np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    return mask


def _ellipse_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    centre = (int(round(w * 0.5)), int(round(h * rng.uniform(0.52, 0.56))))
    axes = (int(round(w * rng.uniform(0.26, 0.32))), int(round(h * rng.uniform(0.32, 0.38))))
    mask = np.zeros((h, w), dtype=np.float32)
    cv2.ellipse(mask, centre, axes, 0.0, 0.0, 360.0, 1.0, thickness=-1)
    return mask


def _elastic(mask: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    h, w = mask.shape
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, size=(h, w)).astype(np.float32), (0, 0), sigma)
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, size=(h, w)).astype(np.float32), (0, 0), sigma)
    # Smoothing shrinks the field by ~1/(sigma * sqrt(4 pi)); rescale so alpha is the typical displacement.
    norm = max(float(np.abs(dx).max()), float(np.abs(dy).max()), 1e-6)
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = grid_x + dx / norm * alpha * 0.3
    map_y = grid_y + dy / norm * alpha * 0.3
    return cv2.remap(mask, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _random_scale(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = mask.shape
    ys, xs = np.nonzero(mask > 0.5)
    if ys.size == 0:
        return mask
    centre = (float(xs.mean()), float(ys.mean()))
    sx, sy = rng.uniform(0.9, 1.1, size=2)
    matrix = np.array([[sx, 0, centre[0] * (1 - sx)], [0, sy, centre[1] * (1 - sy)]], dtype=np.float64)
    return cv2.warpAffine(mask, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


def _odd(value: float) -> int:
    k = max(3, int(round(value)))
    return k if k % 2 else k + 1


def _blend_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's ``get_blend_mask``: blur, keep the fully-inside part, blur again, peak 1."""
    k1 = _odd(rng.uniform(5, 26))
    k2 = _odd(rng.uniform(5, 26))
    blurred = cv2.GaussianBlur(mask, (k1, k1), 0)
    blurred[blurred < 1.0] = 0.0  # erode to the part far enough from the edge
    if blurred.max() <= 0:  # hull too thin for k1: keep the hard mask instead of losing it
        blurred = mask.copy()
    blurred = cv2.GaussianBlur(blurred, (k2, k2), 0)
    peak = float(blurred.max())
    return blurred / peak if peak > 0 else blurred


def make_blend_mask(
    shape: tuple[int, int],
    landmarks=None,
    rng: np.random.Generator | None = None,
    config: SBIConfig | None = None,
    dense=None,
) -> tuple[np.ndarray, bool]:
    """Soft face mask in [0, 1] (before the blend ratio) and whether landmarks were used; ``dense`` (468, 2)
    mesh points in crop pixels shape it when ``config.mask == "dense"``."""
    rng = rng if rng is not None else np.random.default_rng()
    cfg = config or SBIConfig()
    h, w = shape
    points = _valid_landmarks(landmarks, h, w)
    mesh_points = _valid_dense(dense, h, w) if cfg.mask == "dense" else None
    if mesh_points is not None:
        mask = _polygon_mask(dense_hull_points(mesh_points, rng), h, w)
    elif points is not None:
        mask = _polygon_mask(face_hull_points(points, rng, full_face=rng.random() < cfg.full_face_p), h, w)
    else:
        mask = _ellipse_mask(h, w, rng)
    mask = _elastic(mask, rng, cfg.elastic_alpha, cfg.elastic_sigma)
    mask = _random_scale(mask, rng)
    return _blend_mask(mask, rng), points is not None or mesh_points is not None


def is_grayscale(image: np.ndarray) -> bool:
    """Whether an RGB image's three channels are (nearly) equal: a grayscale photo stored as RGB."""
    small = image[::4, ::4].astype(np.int16)
    return bool(np.abs(small[..., 0] - small[..., 1]).max() <= 2 and np.abs(small[..., 1] - small[..., 2]).max() <= 2)


def _to_gray(image: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(np.clip(image, 0, 255).astype(np.float32), cv2.COLOR_RGB2GRAY)
    return np.repeat(gray[..., None], 3, axis=2)


def _transformed(image: np.ndarray, rng: np.random.Generator, cfg: SBIConfig) -> np.ndarray:
    out = _colour_transform(image, rng, cfg)
    if rng.random() < cfg.degrade_p:
        out = _degrade(out, rng)
    return out


def blend_pair_real(image: np.ndarray, rng: np.random.Generator, config: SBIConfig | None = None) -> np.ndarray:
    """The REAL image of the pair that :func:`self_blend` makes with a generator in the same state: ``image``
    itself, or ``image`` with the source transforms when they went to the target. Cheaper than a whole
    :func:`self_blend` for the REAL half of a paired batch."""
    cfg = config or SBIConfig()
    gray = is_grayscale(image)
    if rng.random() < cfg.source_p:
        return image
    real = _transformed(image, rng, cfg)
    return np.clip(np.rint(_to_gray(real) if gray else real), 0, 255).astype(np.uint8)


def self_blend(
    image: np.ndarray,
    landmarks=None,
    rng: np.random.Generator | None = None,
    config: SBIConfig | None = None,
    dense=None,
) -> SBIResult:
    """Make one self-blended pseudo-fake from a REAL (H, W, 3) uint8 RGB crop.

    Parameters
    ----------
    image : the real face crop.
    landmarks : its 5 MTCNN landmarks in crop pixels, (5, 2); None (default) falls back to a centred ellipse.
    rng : numpy Generator (default: a fresh unseeded one); pass a seeded one for reproducible output.
    config : transform strengths (default :class:`SBIConfig()`).
    dense : its 468 face-mesh points in crop pixels, (468, 2) (:mod:`fakelens.facemesh`); used only with
        ``config.mask == "dense"``; None (default) or unusable points fall back to the 5-landmark mask.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    rng = rng if rng is not None else np.random.default_rng()
    cfg = config or SBIConfig()
    h, w = image.shape[:2]
    gray = is_grayscale(image)
    # The draw order here is the one blend_pair_real repeats: side first, then the transforms.
    if rng.random() < cfg.source_p:
        target = image.astype(np.float32)
        source = _transformed(image, rng, cfg)
    else:
        target = _transformed(image, rng, cfg)
        if gray:
            target = _to_gray(target)
        source = image.astype(np.float32)
    target = np.clip(np.rint(target), 0, 255)
    mask, used = make_blend_mask((h, w), landmarks, rng, cfg, dense)
    matrix = _random_affine(h, w, rng, cfg)
    source = cv2.warpAffine(source, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if gray:
        source = _to_gray(source)
    mask = cv2.warpAffine(mask, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    mask = np.clip(mask, 0.0, 1.0) * float(rng.choice(cfg.blend_ratios))

    blended = target + mask[..., None] * (source - target)
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return SBIResult(
        image=out,
        mask=mask.astype(np.float32),
        source=np.clip(np.rint(source), 0, 255).astype(np.uint8),
        used_landmarks=used,
        real=target.astype(np.uint8),
    )
