"""Robustness: the same crops, degraded the way media are degraded on their way to a detector.

Each perturbation maps the crops of one video (in frame order) to degraded crops of the same size:
JPEG at several qualities, a 0.5x downscale and back, an H.264 re-encode of the crop sequence at two CRFs
(through PyAV's libx264), grayscale, and a *tight crop*: the face box alone (no margin) treated as the
input frame and sent back through the same detection and cropping path ``predict`` uses
(:func:`fakelens.faces.detect_faces`: padded canvas, mirror fill), as a user's tight face-crop clip is.
:func:`perturb_crops` applies one; ``scripts/robustness.py`` scores a manifest under all of them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import cast

import cv2
import numpy as np

#: Perturbation names, in table order ("none" is the clean baseline).
PERTURBATIONS = (
    "none", "jpeg90", "jpeg70", "jpeg50", "downscale0.5", "h264_crf23", "h264_crf35", "half_h264_crf35", "grayscale", "tight_crop",
)  # fmt: skip
#: Codecs :func:`codec_roundtrip` encodes with (PyAV encoder names), as platforms re-encode uploads.
CODECS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9"}


def _jpeg(crops: Sequence[np.ndarray], quality: int) -> list[np.ndarray]:
    out = []
    for crop in crops:
        ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(crop[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        out.append(np.ascontiguousarray(cv2.imdecode(buffer, cv2.IMREAD_COLOR)[..., ::-1]))
    return out


def _downscale(crops: Sequence[np.ndarray], factor: float) -> list[np.ndarray]:
    out = []
    for crop in crops:
        h, w = crop.shape[:2]
        small = cv2.resize(crop, (max(1, int(w * factor)), max(1, int(h * factor))), interpolation=cv2.INTER_AREA)
        out.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))
    return out


def _resize_all(crops: Sequence[np.ndarray], factor: float) -> list[np.ndarray]:
    out = []
    for crop in crops:
        h, w = crop.shape[:2]
        size = (max(16, int(w * factor) // 2 * 2), max(16, int(h * factor) // 2 * 2))
        out.append(cv2.resize(crop, size, interpolation=cv2.INTER_AREA))
    return out


def _downscale_back(small: Sequence[np.ndarray], like: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [cv2.resize(s, (c.shape[1], c.shape[0]), interpolation=cv2.INTER_LINEAR) for s, c in zip(small, like)]


def _grayscale(crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.repeat(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2) for c in crops]


def h264_roundtrip(crops: Sequence[np.ndarray], crf: int, fps: int = 10) -> list[np.ndarray]:
    """Encode the crops as one H.264 stream (libx264, yuv420p, ``crf``) in memory and decode it back."""
    import av

    h, w = crops[0].shape[:2]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for crop in crops:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(crop), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer, mode="r") as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    if len(decoded) != len(crops):
        raise RuntimeError(f"H.264 round trip returned {len(decoded)} frames for {len(crops)}")
    return decoded


def codec_roundtrip(image: np.ndarray, codec: str = "h264", crf: int = 23, scale: float = 1.0) -> np.ndarray:
    """One RGB image encoded as a single intra-coded frame by ``codec`` (a key of :data:`CODECS`) at ``crf``,
    after a resize by ``scale`` (even sides, as yuv420p needs), decoded and resized back to its size.

    This is what a platform's re-encode does to a face (chroma subsampling, block transforms, the loop filter),
    without a container: one codec context each way, about a millisecond for a 224 px crop with H.264.
    """
    import av

    h, w = image.shape[:2]
    sw, sh = max(16, int(round(w * scale / 2)) * 2), max(16, int(round(h * scale / 2)) * 2)
    small = image if (sw, sh) == (w, h) else cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    from av.video.codeccontext import VideoCodecContext

    encoder = cast(VideoCodecContext, av.CodecContext.create(CODECS[codec], "w"))
    encoder.width, encoder.height, encoder.pix_fmt = sw, sh, "yuv420p"
    encoder.time_base = Fraction(1, 25)
    if codec == "vp9":
        encoder.options = {"crf": str(crf), "b": "0", "deadline": "realtime", "cpu-used": "8"}
    elif codec == "hevc":
        encoder.options = {"crf": str(crf), "preset": "ultrafast", "x265-params": "log-level=none:pools=none:frame-threads=1"}
    else:
        encoder.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(small), format="rgb24").reformat(format="yuv420p")
    packets = list(encoder.encode(frame)) + list(encoder.encode(None))
    decoder = cast(VideoCodecContext, av.CodecContext.create(codec, "r"))
    decoded = [f for p in packets for f in decoder.decode(p)] + list(decoder.decode(None))
    if not decoded:
        raise RuntimeError(f"{codec} round trip returned no frame")
    out = decoded[0].to_ndarray(format="rgb24")
    if out.shape[:2] != (h, w):
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(out)


def tight_crops(crops: Sequence[np.ndarray], detector, margin: float = 0.3) -> list[np.ndarray | None]:
    """The face box of each crop (its central ``1 / (1 + margin)``) as a frame, re-detected and re-cropped
    as ``predict`` would; None where no face is found there."""
    from fakelens.faces import crop_face, detect_faces, largest_face

    out: list[np.ndarray | None] = []
    for crop in crops:
        size = crop.shape[0]
        side = int(round(size / (1.0 + margin)))
        start = (size - side) // 2
        frame = np.ascontiguousarray(crop[start : start + side, start : start + side])
        faces = detect_faces(detector, [frame])[0]
        if not faces:
            out.append(None)
            continue
        out.append(crop_face(frame, largest_face(faces), size=size, margin=margin)[0])
    return out


def perturb_crops(name: str, crops: Sequence[np.ndarray], detector=None) -> list[np.ndarray | None]:
    """``crops`` of one video (frame order) under perturbation ``name`` (one of :data:`PERTURBATIONS`).

    ``detector`` (an MTCNN) is needed for ``tight_crop`` only; entries are None where it finds no face.
    """
    table: dict[str, Callable[[Sequence[np.ndarray]], list]] = {
        "none": lambda c: list(c),
        "jpeg90": lambda c: _jpeg(c, 90),
        "jpeg70": lambda c: _jpeg(c, 70),
        "jpeg50": lambda c: _jpeg(c, 50),
        "downscale0.5": lambda c: _downscale(c, 0.5),
        "h264_crf23": lambda c: h264_roundtrip(c, 23),
        "h264_crf35": lambda c: h264_roundtrip(c, 35),
        # A platform's re-encode of an upload: half the size, then H.264 at CRF 35 (then back to the crop's size).
        "half_h264_crf35": lambda c: _downscale_back(h264_roundtrip(_resize_all(c, 0.5), 35), c),
        "grayscale": _grayscale,
    }
    if name == "tight_crop":
        if detector is None:
            raise ValueError("tight_crop needs a detector")
        return tight_crops(crops, detector)
    if name not in table:
        raise ValueError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}")
    return table[name](crops)
