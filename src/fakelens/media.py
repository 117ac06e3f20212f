"""Stage 1: media -> frames.

Reads images (JPEG, PNG, WebP, BMP) and videos (MP4, AVI, MOV, MKV, WebM, and frame sequences such as
animated GIF) into 8-bit RGB frames. What a file is comes from its content (magic bytes, then a PyAV
probe), not its name: an MP4 without an extension, or named .png, is still read as a video.
Videos are sampled at ``num_frames`` indices spread evenly over the whole clip. Short gaps between
sampled frames are decoded straight through (seeking once per frame in H.264 costs ~10x more),
long gaps are crossed with one keyframe seek, so an hour-long file costs about as much as a short one.

Every failure (missing, empty, truncated, corrupt, non-media, absurdly large) raises
:class:`fakelens.errors.MediaError` naming the file and the reason.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fakelens.constants import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from fakelens.errors import InvalidArgument, MediaError, UnsupportedMedia

log = logging.getLogger(__name__)

#: Largest frame accepted, in pixels: 8K UHD (7680 x 4320).
MAX_FRAME_PIXELS = 7680 * 4320
#: Largest still image accepted, in pixels (about 8K x 8K); bigger files are refused before decoding.
MAX_IMAGE_PIXELS = 8192 * 8192
#: Videos longer than this (seconds) are sampled over their first ``MAX_DURATION`` seconds only.
MAX_DURATION = 2 * 60 * 60
#: A gap of more than this many frames between two sampled frames is crossed by a keyframe seek.
SEEK_GAP = 250


@dataclass
class Frame:
    """One decoded frame: ``image`` is an (H, W, 3) uint8 RGB array."""

    index: int
    timestamp: float
    image: np.ndarray = field(repr=False)


@dataclass
class VideoInfo:
    """What the container says about a video stream, checked and filled in where it is silent."""

    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    rotation: int = 0


#: Leading bytes of the still-image formats Pillow reads here.
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM")
#: Leading bytes of containers PyAV reads (GIF is a frame sequence, so a video).
_VIDEO_MAGIC = (b"\x1a\x45\xdf\xa3", b"GIF87a", b"GIF89a", b"FLV", b"\x00\x00\x01\xba")
#: FFmpeg demuxers that "find" a video stream in files that are not videos: tty renders any text file, and
#: image2 opens any file named like an image (real images are recognised by their magic bytes first).
_NOT_VIDEO_FORMATS = frozenset({"tty", "ansi", "bin", "xbin", "idf", "adf", "image2"})
#: ISO base media (MP4, MOV, M4V, 3GP) boxes that may open a file, at bytes 4-8.
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")


def suffix_kind(name: str | Path) -> str | None:
    """``"image"`` or ``"video"`` from a file name's suffix alone; None when the suffix is not a media one."""
    suffix = Path(name).suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def sniff_kind(head: bytes) -> str | None:
    """``"image"`` or ``"video"`` from a file's first bytes; None when they match no known format."""
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if head.startswith(_VIDEO_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"AVI ") or head[4:8] in _ISO_BOXES:
        return "video"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:  # MPEG transport stream sync bytes
        return "video"
    return None


def media_kind(path: str | Path) -> str:
    """``"image"`` or ``"video"``, from the file's content: its magic bytes, else a PyAV probe for a video
    stream, else Pillow's identification; the suffix plays no part. Raises :class:`MediaError` for a missing
    or empty file and :class:`UnsupportedMedia` for content that is neither (a text file renamed .mp4)."""
    path = Path(path)
    _check_file(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        raise MediaError(path, f"cannot read the file ({exc.strerror or exc})") from None
    kind = sniff_kind(head)
    if kind is None:  # no known magic: ask the decoders themselves
        kind = "video" if _has_video_stream(path) else "image" if _is_image(path) else None
    if kind is None:
        supported = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        raise UnsupportedMedia(path, f"not an image or video (its content matches no format this version reads); supported: {supported}")
    by_name = suffix_kind(path)
    if by_name is not None and by_name != kind:
        log.info("%s: the content is a%s %s, whatever the suffix says", path, "n" if kind == "image" else "", kind)
    return kind


def _is_image(path: Path) -> bool:
    """Whether Pillow identifies ``path`` as an image (header only, nothing decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path):
                return True
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for non-images
        return False


def _has_video_stream(path: Path) -> bool:
    """Whether PyAV opens ``path`` and finds a video stream in it (for files whose first bytes say nothing)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            name = container.format.name
            return bool(container.streams.video) and name not in _NOT_VIDEO_FORMATS and not name.endswith("_pipe")
    except (av.FFmpegError, OSError, ValueError):
        return False


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError(path, "file not found")
    if not path.is_file():
        raise MediaError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty")


# --------------------------------------------------------------------------- images


def _to_rgb8(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode (grayscale, palette, alpha, 16/32-bit) to (H, W, 3) uint8 RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image).astype(np.float64)
        # 16-bit files use the full 0..65535 range; 32-bit 'I' files from 16-bit PNGs do too.
        peak = 65535.0 if array.max(initial=0) > 255 else 255.0
        gray = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite on white, as a browser shows a transparent PNG, rather than dropping alpha.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB with its EXIF orientation applied."""
    path = Path(path)
    _check_file(path)
    try:
        with warnings.catch_warnings():
            # We enforce our own, clearer pixel limit below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise MediaError(
                    path,
                    f"image is {width}x{height} ({width * height / 1e6:.0f} MP), above the {MAX_IMAGE_PIXELS / 1e6:.0f} MP limit; downscale it first",
                )
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb8(image)
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError(path, f"image is too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(path, f"not a readable image ({exc})") from None


# --------------------------------------------------------------------------- videos


def _open_container(path: Path):
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(path, f"not a readable video ({exc})") from None
    if not container.streams.video:
        container.close()
        raise MediaError(path, "the file has no video stream")
    return container


def _count_packets(path: Path) -> int:
    """Count video packets without decoding: the exact frame count when the container has no index."""
    import av

    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size > 0)
    except av.FFmpegError as exc:
        raise MediaError(path, f"the video is corrupt ({exc})") from None
    finally:
        container.close()


def _rotation(stream) -> int:
    """Counter-clockwise display rotation from the legacy 'rotate' tag (which counts clockwise).

    Frames decoded by FFmpeg carry the display matrix's own angle (``frame.rotation``), which wins.
    """
    tag = (stream.metadata or {}).get("rotate")
    try:
        return int(-float(tag)) % 360 if tag is not None else 0
    except ValueError:
        return 0


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's size, frame rate, frame count, duration and rotation without decoding frames."""
    path = Path(path)
    _check_file(path)
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        width = stream.codec_context.width
        height = stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        frame_count = int(stream.frames or 0)
        rotation = _rotation(stream)
    finally:
        container.close()
    if not width or not height:
        raise MediaError(path, "the video stream has no frame size (corrupt header?)")
    if width * height > MAX_FRAME_PIXELS:
        raise MediaError(path, f"frames are {width}x{height}, above the 8K (7680x4320) limit")
    if frame_count <= 0:
        frame_count = _count_packets(path)
    if frame_count <= 0:
        raise MediaError(path, "the video has no frames")
    if fps <= 0:
        fps = frame_count / duration if duration > 0 else 25.0
    if duration <= 0:
        duration = frame_count / fps
    return VideoInfo(width, height, fps, frame_count, duration, rotation)


def sample_indices(frame_count: int, num_frames: int) -> list[int]:
    """``num_frames`` frame indices spread evenly over ``frame_count`` frames (fewer if the clip is shorter)."""
    if num_frames <= 0:
        raise ValueError("num_frames must be positive")
    if frame_count <= num_frames:
        return list(range(frame_count))
    # Centre each sample in its segment, so the first and last frames (often black or faded) are avoided.
    step = frame_count / num_frames
    return sorted({min(frame_count - 1, int(step * (i + 0.5))) for i in range(num_frames)})


def _apply_rotation(image: np.ndarray, rotation: int) -> np.ndarray:
    # Both FFmpeg's display-matrix angle and np.rot90 turn counter-clockwise.
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


#: Keyframe-only sampling (``keyframes="auto"``) is used when every sampled frame has its own keyframe
#: within this share of the sampling step; a keyframe stands in for it, and only keyframes are decoded.
KEYFRAME_TOLERANCE = 0.5


@dataclass
class SamplingPlan:
    """Which frames of a video to decode: ``indices``, and how they relate to the evenly spread ``requested`` ones.

    ``mode`` is ``"even"`` (``indices == requested``, decoded straight through) or ``"keyframes"`` (each
    requested frame replaced by its nearest keyframe, and only keyframes decoded); ``note`` says why.
    """

    info: VideoInfo
    requested: list[int]
    indices: list[int]
    mode: str = "even"
    note: str = ""


def keyframe_indices(path: str | Path, info: VideoInfo | None = None) -> list[int]:
    """Frame indices of a video's keyframes, from its packets (nothing decoded); [] when it says nothing."""
    import av

    path = Path(path)
    info = info or probe_video(path)
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        time_base, start_pts = stream.time_base or Fraction(1, 1), stream.start_time or 0
        found = set()
        for packet in container.demux(stream):
            if packet.size > 0 and packet.is_keyframe and packet.pts is not None:
                found.add(int(round(float((packet.pts - start_pts) * time_base) * info.fps)))
        return sorted(found)
    except av.FFmpegError:
        return []
    finally:
        container.close()


def plan_sampling(
    path: str | Path,
    num_frames: int = 32,
    keyframes: str = "never",
    max_duration: float = MAX_DURATION,
    info: VideoInfo | None = None,
) -> SamplingPlan:
    """The frames :func:`iter_video` will decode. ``keyframes="auto"`` samples keyframes only when they are
    dense enough (each requested frame has a keyframe of its own within :data:`KEYFRAME_TOLERANCE` of the
    sampling step), which skips decoding every other frame; ``"never"`` (default) always decodes the
    requested frames. The plan records which was done."""
    path = Path(path)
    info = info or probe_video(path)
    usable = info.frame_count
    if info.duration > max_duration:
        usable = max(1, int(max_duration * info.fps))
        log.warning("%s lasts %.0f s; sampling only its first %.0f s", path.name, info.duration, max_duration)
    wanted = sample_indices(usable, num_frames)
    plan = SamplingPlan(info, wanted, list(wanted), "even", "every requested frame decoded")
    if keyframes == "never" or len(wanted) < 2:
        return plan
    if keyframes != "auto":
        raise ValueError(f"keyframes must be 'auto' or 'never', got {keyframes!r}")
    keys = np.asarray(keyframe_indices(path, info), dtype=np.int64)
    tolerance = KEYFRAME_TOLERANCE * usable / len(wanted)
    if len(keys) < len(wanted):
        plan.note = f"keyframes too sparse ({len(keys)} for {len(wanted)} frames): decoded straight through"
        return plan
    nearest = [int(keys[np.abs(keys - target).argmin()]) for target in wanted]
    far = max(abs(k - t) for k, t in zip(nearest, wanted))
    if len(set(nearest)) < len(wanted) or far > tolerance:
        plan.note = f"keyframes too sparse (a sampled frame is {far} frames from its nearest one): decoded straight through"
        return plan
    plan.indices, plan.mode = nearest, "keyframes"
    plan.note = f"keyframes only: each sampled frame is its nearest keyframe, at most {far} frames ({far / info.fps:.2f} s) away"
    return plan


def read_video(
    path: str | Path,
    num_frames: int = 32,
    max_duration: float = MAX_DURATION,
    info: VideoInfo | None = None,
) -> list[Frame]:
    """Decode ``num_frames`` frames spread evenly over a video, each with its index and timestamp.

    Parameters
    ----------
    path : video file.
    num_frames : frames to sample (default 32, as DeepfakeBench and the DFDC winner use).
    max_duration : only the first ``max_duration`` seconds of longer videos are sampled (default 2 h),
        with a warning, so an hours-long file never costs hours.
    info : a :class:`VideoInfo` from :func:`probe_video`, to avoid probing twice.
    """
    return list(iter_video(path, plan_sampling(path, num_frames, max_duration=max_duration, info=info)))


def _decode(container, stream, wanted: set[int], keyframes_only: bool, fps: float):
    """The stream's frames, decoding only what is needed: with ``keyframes_only`` the keyframes; otherwise
    every frame, except the frames no other frame refers to (most B-frames) that were not asked for, which
    the decoder skips unread (a quarter to a half of H.264's frames; the frames returned are bit-identical).
    Frame indices come from packet timestamps, so skipping stops for good at the first timestamp off the
    frame grid (variable frame rate: a frame that was not asked for may have to stand in for one that was)."""
    context = stream.codec_context
    if keyframes_only:
        context.skip_frame = "NONKEY"
    time_base, start_pts = stream.time_base or Fraction(1, 1), stream.start_time or 0
    skipping = not keyframes_only
    for packet in container.demux(stream):
        if skipping:
            if packet.pts is None:
                context.skip_frame = "DEFAULT"
            else:
                exact = float((packet.pts - start_pts) * time_base) * fps
                index = int(round(exact))
                skipping = abs(exact - index) < 0.01
                context.skip_frame = "NONREF" if skipping and index not in wanted else "DEFAULT"
        yield from stream.decode(packet)


#: FFmpeg's decoder threading (PyAV's ``thread_type``): ``AUTO`` uses frame and slice threads, ``SLICE`` only
#: splits frames coded in several slices, ``NONE`` decodes on the calling thread.
DECODE_THREADING = ("AUTO", "SLICE", "NONE")


def iter_video(path: str | Path, plan: SamplingPlan, decode_threads: str = "AUTO"):
    """Decode the frames of a :class:`SamplingPlan` one at a time (a generator: the pipeline detects faces
    in the first frames while later ones decode). Raises :class:`MediaError` when no frame decodes.

    ``decode_threads`` is one of :data:`DECODE_THREADING` (default ``"AUTO"``, fastest when decoding has the cores
    to itself). The frames are the same either way; frame threads cost CPU time to save wall time, which does
    not pay where another stage holds the other cores (see :mod:`fakelens.pipeline`)."""
    import av

    if decode_threads not in DECODE_THREADING:
        raise InvalidArgument(f"decode_threads must be one of {', '.join(DECODE_THREADING)}, got {decode_threads!r}")
    path = Path(path)
    info, wanted = plan.info, plan.indices
    count = 0
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = decode_threads
        keyframes_only = plan.mode == "keyframes"
        time_base = stream.time_base or Fraction(1, 1)
        start_pts = stream.start_time or 0
        frame_period = 1.0 / info.fps
        position = -1  # index of the last decoded frame
        seeked_for = None  # the target of the last seek, so a long GOP never seeks twice
        targets = iter(wanted)
        target = next(targets)
        decoder = _decode(container, stream, set(wanted), keyframes_only, info.fps)
        while target is not None:
            if not keyframes_only and target - position > SEEK_GAP and seeked_for != target:
                # Jump close to the target, then decode forward; a keyframe seek lands at or before it.
                offset = int(target * frame_period / time_base)
                container.seek(start_pts + offset, stream=stream, backward=True)
                decoder = _decode(container, stream, set(wanted), keyframes_only, info.fps)
                seeked_for = target
                position = -1
            try:
                frame = next(decoder)
            except StopIteration:
                break
            if frame.pts is not None:
                seconds = float((frame.pts - start_pts) * time_base)
                index = max(int(round(seconds * info.fps)), position + 1)
            else:  # no timestamps: count frames
                index = position + 1
                seconds = index * frame_period
            position = index
            if index >= target:
                # Variable frame rate can step over a target: the first frame at or after it stands in.
                image = frame.to_ndarray(format="rgb24")
                rotation = int(getattr(frame, "rotation", 0) or info.rotation)
                count += 1
                yield Frame(index, round(seconds, 4), _apply_rotation(image, rotation))
                while target is not None and target <= index:
                    target = next(targets, None)
    except av.FFmpegError as exc:
        if not count:
            raise MediaError(path, f"the video is corrupt ({exc})") from None
        log.warning("%s: decoding stopped early (%s); kept %d frames", path.name, exc, count)
    finally:
        container.close()
    if not count:
        raise MediaError(path, "no frame could be decoded (truncated or corrupt video)")
    if count < len(wanted):
        log.info("%s: decoded %d of %d sampled frames", path.name, count, len(wanted))


def load_frames(path: str | Path, num_frames: int = 32, kind: str | None = None, keyframes: str = "never") -> list[Frame]:
    """Frames of any supported file: one frame (index 0, time 0) for an image, a sample for a video.
    ``kind`` skips the content check when the caller has made it already (see :func:`media_kind`);
    ``keyframes="auto"`` samples as ``Detector.predict`` does by default (see :func:`plan_sampling`)."""
    kind = kind or media_kind(path)
    if kind == "image":
        return [Frame(0, 0.0, read_image(path))]
    return list(iter_video(path, plan_sampling(path, num_frames, keyframes)))


def frames_from_array(image: np.ndarray) -> list[Frame]:
    """Wrap an in-memory (H, W, 3) uint8 RGB image as a single frame, checking shape and size."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise MediaError(None, f"expected an (H, W, 3) RGB array, got shape {array.shape}")
    if array.shape[0] * array.shape[1] > MAX_IMAGE_PIXELS:
        raise MediaError(None, f"image of {array.shape[1]}x{array.shape[0]} is above the size limit")
    if array.dtype != np.uint8:
        raise MediaError(None, f"expected a uint8 array, got {array.dtype}")
    return [Frame(0, 0.0, np.ascontiguousarray(array[..., :3]))]


__all__ = [
    "Frame",
    "VideoInfo",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "media_kind",
    "read_image",
    "probe_video",
    "read_video",
    "iter_video",
    "plan_sampling",
    "keyframe_indices",
    "SamplingPlan",
    "sample_indices",
    "load_frames",
    "frames_from_array",
]
