"""Face crop images: loading, and the augmentations of training with keyed randomness.

Randomness is keyed, not streamed: :func:`sample_rng` gives the generator of one sample as a pure function
of ``(seed, purpose, epoch, index, draw)``, so results do not depend on the number of loader workers and a
resumed run sees exactly the images an uninterrupted run would have seen. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fakelens.constants import CROP_MARGIN, INPUT_SIZE
from fakelens.data.manifest import ManifestRow


def load_crop(row: ManifestRow, size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray | None]:
    """The crop as (size, size, 3) uint8 RGB, and its landmarks rescaled to it (or None).

    Raises :class:`fakelens.errors.MediaError` when the file cannot be read.
    """
    from fakelens.media import read_image

    image = read_image(row.crop_path)
    landmarks = None if row.crop_landmarks is None else np.asarray(row.crop_landmarks, dtype=np.float64)
    h, w = image.shape[:2]
    if (h, w) != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if min(h, w) > size else cv2.INTER_CUBIC)
        if landmarks is not None:
            landmarks = landmarks * (size / w, size / h)
    return image, landmarks


@dataclass
class Augmenter:
    """Augmentations that matter for deepfake detection, each applied with its own probability.

    Geometry and colour make the model robust to pose and lighting; JPEG re-compression, blur and
    downscale-upscale teach it that compression and resampling are NOT evidence of manipulation (videos on
    the web are re-encoded many times), which is the main way such detectors fail in the wild.
    """

    hflip_p: float = 0.5
    affine_p: float = 0.5
    max_rotate: float = 8.0  #: degrees
    max_scale: float = 0.08  #: 1 +- this
    max_translate: float = 0.04  #: fraction of the side
    color_p: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 6.0  #: degrees
    jpeg_p: float = 0.5  #: the SBI reference's ImageCompression(40, 100, p=0.5), reaching down to heavy compression
    jpeg_quality: tuple[int, int] = (30, 100)
    blur_p: float = 0.1
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    downscale_p: float = 0.25
    downscale: tuple[float, float] = (0.3, 0.85)
    #: grayscale copies, so a gray photo or clip is neither a REAL nor a FAKE cue
    grayscale_p: float = 0.1
    #: the face shrunk onto a black canvas (as dataset tools export crops), so black borders are no cue either
    canvas_p: float = 0.1
    canvas_scale: tuple[float, float] = (0.6, 0.9)
    #: the face box alone, mirror-filled back to the crop's margin: what ``predict`` makes of a tight face-crop
    #: clip (padded-canvas detection, then a crop filled by reflection). Off by default, so that runs made
    #: before it existed draw the same random numbers; ``fakelens train --tight-crop-p`` turns it on.
    tight_p: float = 0.0
    #: side of the face region kept, as a fraction of the crop's face box (the crop's central 1/1.3)
    tight_side: tuple[float, float] = (0.85, 1.1)
    #: share of tight faces also made soft (shrunk and upscaled back), as most face-crop clips are
    tight_soft_p: float = 0.5
    tight_soft: tuple[float, float] = (0.3, 0.8)
    #: compression in the loop: a video codec's intra frame at a platform's quality and size (see
    #: :func:`fakelens.robustness.codec_roundtrip`), drawn last, as an upload is re-encoded last. Both images of
    #: an SBI pair draw the same settings (they share the augmentation's generator). Off by default, so that
    #: runs made before it existed draw the same random numbers; ``fakelens train --codec-p`` turns it on.
    codec_p: float = 0.0
    codec_crf: tuple[int, int] = (18, 40)
    codec_scale: tuple[float, float] = (0.5, 1.0)
    #: drawn uniformly; H.264 twice, as most of the web's video is H.264
    codecs: tuple[str, ...] = ("h264", "h264", "hevc")

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        out = image
        if rng.random() < self.hflip_p:
            out = out[:, ::-1]
        if rng.random() < self.affine_p:
            scale = 1.0 + rng.uniform(-self.max_scale, self.max_scale)
            matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-self.max_rotate, self.max_rotate), scale)
            matrix[:, 2] += rng.uniform(-self.max_translate, self.max_translate, size=2) * (w, h)
            out = cv2.warpAffine(np.ascontiguousarray(out), matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101)
        if rng.random() < self.color_p:
            out = self._colour(out, rng)
        if self.tight_p > 0 and rng.random() < self.tight_p:
            out = self._tight(out, rng)
        if rng.random() < self.canvas_p:
            out = self._canvas(out, rng)
        if rng.random() < self.grayscale_p:
            gray = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2GRAY)
            out = np.repeat(gray[..., None], 3, axis=2)
        if rng.random() < self.downscale_p:
            factor = rng.uniform(*self.downscale)
            small = cv2.resize(np.ascontiguousarray(out), (max(8, int(w * factor)), max(8, int(h * factor))), interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if rng.random() < self.blur_p:
            out = cv2.GaussianBlur(np.ascontiguousarray(out), (0, 0), rng.uniform(*self.blur_sigma))
        if rng.random() < self.jpeg_p:
            quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
            ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(out[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                out = cv2.imdecode(buffer, cv2.IMREAD_COLOR)[..., ::-1]
        if self.codec_p > 0 and rng.random() < self.codec_p:
            from fakelens.robustness import codec_roundtrip

            codec = self.codecs[int(rng.integers(len(self.codecs)))]
            crf = int(rng.integers(self.codec_crf[0], self.codec_crf[1] + 1))
            out = codec_roundtrip(np.ascontiguousarray(out), codec, crf, float(rng.uniform(*self.codec_scale)))
        return np.ascontiguousarray(out)

    def _canvas(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        scale = rng.uniform(*self.canvas_scale)
        sw, sh = max(8, int(w * scale)), max(8, int(h * scale))
        x0, y0 = int(rng.integers(0, w - sw + 1)), int(rng.integers(0, h - sh + 1))
        canvas = np.zeros_like(image)
        canvas[y0 : y0 + sh, x0 : x0 + sw] = cv2.resize(np.ascontiguousarray(image), (sw, sh), interpolation=cv2.INTER_AREA)
        return canvas

    def _tight(self, image: np.ndarray, rng: np.random.Generator, margin: float = CROP_MARGIN) -> np.ndarray:
        h, w = image.shape[:2]
        side = min(w, h, max(16, int(round(min(w, h) / (1.0 + margin) * rng.uniform(*self.tight_side)))))
        shift = rng.uniform(-0.04, 0.04, size=2) * (w, h)
        x0 = int(np.clip(round((w - side) / 2 + shift[0]), 0, w - side))
        y0 = int(np.clip(round((h - side) / 2 + shift[1]), 0, h - side))
        face = np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side])
        if rng.random() < self.tight_soft_p:
            small = max(16, int(side * rng.uniform(*self.tight_soft)))
            face = cv2.resize(cv2.resize(face, (small, small), interpolation=cv2.INTER_AREA), (side, side), interpolation=cv2.INTER_CUBIC)
        pad = int(round(side * margin / 2))
        framed = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        return cv2.resize(framed, (w, h), interpolation=cv2.INTER_AREA if framed.shape[0] > h else cv2.INTER_CUBIC)

    def _colour(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = image.astype(np.float32) / 255.0
        out = out * (1.0 + rng.uniform(-self.brightness, self.brightness))
        mean = out.mean()
        out = (out - mean) * (1.0 + rng.uniform(-self.contrast, self.contrast)) + mean
        out = np.clip(out, 0, 1)
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-self.hue, self.hue)) % 360.0
        hsv[..., 1] = np.clip(hsv[..., 1] * (1.0 + rng.uniform(-self.saturation, self.saturation)), 0, 1)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def sample_rng(seed: int, purpose: int, epoch: int, index: int, draw: int = 0, stream: int = 0) -> np.random.Generator:
    """The generator for one sample: a pure function of its key, whatever process or worker asks."""
    key = [int(seed), int(purpose), int(epoch), int(index), int(draw)] + ([int(stream)] if stream else [])
    return np.random.default_rng(key)


__all__ = ["Augmenter", "load_crop", "sample_rng"]
