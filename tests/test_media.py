"""Reading images and videos: formats, sampling, rotation and bad input."""

from __future__ import annotations

import av
import numpy as np
import pytest
from media_support import encode_clip
from PIL import Image

from fakelens.errors import FakelensError, MediaError, UnsupportedMedia
from fakelens.media import (
    frames_from_array,
    load_frames,
    media_kind,
    probe_video,
    read_image,
    read_video,
    sample_indices,
)


@pytest.fixture(scope="module")
def face_image(examples) -> np.ndarray:
    return read_image(examples / "real_ffpp_ex_original.png")


@pytest.fixture(scope="module")
def small_frames(examples) -> list[np.ndarray]:
    frames = read_video(examples / "real_ffpp_004.mp4", num_frames=12)
    # Downscale to keep encoding fast; even sizes for yuv420p.
    return [np.asarray(Image.fromarray(f.image).resize((320, 180))) for f in frames]


# ---------------------------------------------------------------- images


def test_reads_png_as_rgb8(face_image):
    assert face_image.dtype == np.uint8
    assert face_image.shape == (480, 640, 3)


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("BMP", ".bmp")])
def test_reads_each_image_format(tmp_path, face_image, fmt, suffix):
    path = tmp_path / f"face{suffix}"
    Image.fromarray(face_image).save(path, fmt)
    image = read_image(path)
    assert image.shape == face_image.shape and image.dtype == np.uint8
    assert np.abs(image.astype(int) - face_image.astype(int)).mean() < 8  # lossy formats stay close


def test_exif_orientation_is_applied(tmp_path, face_image):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(face_image).save(path, "JPEG", exif=exif)
    image = read_image(path)
    assert image.shape == (640, 480, 3)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "I;16"])
def test_converts_modes_to_rgb8(tmp_path, face_image, mode):
    source = Image.fromarray(face_image)
    if mode == "I;16":
        gray16 = np.asarray(source.convert("L")).astype(np.uint16) * 257
        source = Image.fromarray(gray16)
    elif mode == "P":
        source = source.convert("P", palette=Image.Palette.ADAPTIVE)
    else:
        source = source.convert(mode)
    path = tmp_path / f"mode_{mode.replace(';', '')}.png"
    source.save(path)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (480, 640, 3)
    assert 20 < image.mean() < 235  # 16-bit values were scaled, not clipped to white


def test_huge_image_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (12000, 9000)).save(path)  # 108 MP, a few KB on disk
    with pytest.raises(MediaError, match="MP limit"):
        read_image(path)


def test_array_input(face_image):
    frames = frames_from_array(face_image)
    assert len(frames) == 1 and frames[0].image.shape == (480, 640, 3)
    with pytest.raises(MediaError):
        frames_from_array(np.zeros((10, 10, 3), dtype=np.float32))


# ---------------------------------------------------------------- videos


def test_samples_32_frames_spread_over_the_clip(examples):
    info = probe_video(examples / "real_ffpp_004.mp4")
    frames = read_video(examples / "real_ffpp_004.mp4")
    assert len(frames) == 32
    indices = [f.index for f in frames]
    assert indices == sample_indices(info.frame_count, 32)
    assert indices[0] < 10 and indices[-1] > info.frame_count - 10
    for frame in frames:
        assert frame.image.shape == (720, 1280, 3)
        assert frame.timestamp == pytest.approx(frame.index / info.fps, abs=0.05)


def test_sampled_frames_match_a_full_decode(examples):
    """Frame i returned by the sampler is the i-th frame of the stream, pixel for pixel."""
    path = examples / "fake_dfdc_abhggqdift.mp4"
    with av.open(str(path)) as container:
        every = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    for frame in read_video(path, num_frames=7):
        np.testing.assert_array_equal(frame.image, every[frame.index])


def test_short_clip_gives_every_frame(tmp_path, small_frames):
    path = encode_clip(tmp_path / "short.mp4", small_frames[:5])
    assert [f.index for f in read_video(path, num_frames=32)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("suffix,codec", [(".avi", "mpeg4"), (".mov", "libx264"), (".mkv", "libx264"), (".webm", "libvpx-vp9")])
def test_reads_each_container(tmp_path, small_frames, suffix, codec):
    path = encode_clip(tmp_path / f"clip{suffix}", small_frames, codec=codec)
    info = probe_video(path)
    assert info.frame_count == len(small_frames)
    frames = read_video(path, num_frames=4)
    assert len(frames) == 4 and frames[0].image.shape == (180, 320, 3)


def test_long_gaps_are_crossed_by_seeking(tmp_path, small_frames):
    """A long clip returns the requested indices too (the seek path), and their timestamps."""
    frames = [small_frames[i % len(small_frames)] for i in range(900)]
    path = encode_clip(tmp_path / "long.mp4", [np.ascontiguousarray(f[::4, ::4][:44]) for f in frames], rate=25)
    result = read_video(path, num_frames=3)
    assert [f.index for f in result] == sample_indices(900, 3)
    assert [f.timestamp for f in result] == pytest.approx([i / 25 for i in sample_indices(900, 3)], abs=0.05)


def test_rotation_metadata_is_honoured(tmp_path):
    image = np.zeros((48, 64, 3), dtype=np.uint8)
    image[:12, :16] = 255  # marker in the top-left corner
    path = encode_clip(tmp_path / "portrait.mp4", [image] * 4, rotation=-90)  # display rotated 90 deg clockwise
    frame = read_video(path, num_frames=1)[0].image
    assert frame.shape == (64, 48, 3)
    assert frame[:6, -6:].mean() > 200 and frame[:6, :6].mean() < 50  # marker now top-right


def test_load_frames_dispatches_on_kind(examples):
    assert len(load_frames(examples / "real_ffpp_ex_original.png")) == 1
    assert len(load_frames(examples / "real_dfdc_aayrffkzxn.mp4", num_frames=5)) == 5


# ---------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="not found"):
        load_frames(tmp_path / "nope.mp4")


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        load_frames(tmp_path / "empty.mp4")


def test_a_file_that_is_neither_image_nor_video_is_refused_by_content(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n" * 100)
    with pytest.raises(MediaError, match="not an image or video"):
        media_kind(tmp_path / "notes.txt")
    with pytest.raises(MediaError, match="file not found"):
        media_kind(tmp_path / "missing.mp4")
    for name in ("notes.mp4", "notes.png", "notes"):  # a renamed text file is no media, whatever its name
        (tmp_path / name).write_text("hello\n" * 100)
        with pytest.raises(UnsupportedMedia):
            media_kind(tmp_path / name)


def test_the_content_decides_the_kind_whatever_the_name(tmp_path, examples):
    """An MP4 without an extension or named .png is a video; a PNG named .mp4 is an image."""
    video = next(examples.glob("*.mp4"))
    image = examples / "real_ffpp_ex_original.png"
    for name, source, kind in (("clip", video, "video"), ("clip.png", video, "video"), ("still.mp4", image, "image"), ("still", image, "image")):
        target = tmp_path / name
        target.write_bytes(source.read_bytes())
        assert media_kind(target) == kind, name
    frames = load_frames(tmp_path / "clip", num_frames=4)
    assert len(frames) == 4 and frames[0].image.shape == read_video(video, num_frames=4)[0].image.shape
    assert np.array_equal(load_frames(tmp_path / "still.mp4")[0].image, read_image(image))


def test_an_animated_gif_is_a_video(tmp_path, examples):
    from PIL import Image

    video = next(examples.glob("*.mp4"))
    frames = [Image.fromarray(f.image).resize((320, 180)) for f in read_video(video, num_frames=6)]
    gif = tmp_path / "clip.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert media_kind(gif) == "video"
    decoded = load_frames(gif, num_frames=3)
    assert len(decoded) == 3 and decoded[0].image.shape == (180, 320, 3)
    assert [f.index for f in decoded] == sample_indices(6, 3)


@pytest.mark.parametrize("name", ["text.mp4", "text.png", "text.webm"])
def test_non_media_content_with_a_media_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_text("this is not a video or an image\n" * 50)
    with pytest.raises(MediaError) as info:
        load_frames(path)
    assert info.value.path == str(path)


def test_truncated_video_keeps_what_decodes_or_fails_cleanly(tmp_path, examples):
    data = (examples / "real_ffpp_004.mp4").read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    try:
        frames = read_video(path, num_frames=8)
    except FakelensError as exc:
        assert "truncated.mp4" in str(exc)
    else:
        assert 0 < len(frames) <= 8


def test_corrupt_bytes_in_the_middle(tmp_path, examples):
    data = bytearray((examples / "fake_dfdc_abhggqdift.mp4").read_bytes())
    rng = np.random.default_rng(0)
    data[2000:40000] = rng.integers(0, 256, 38000, dtype=np.uint8).tobytes()
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    try:
        frames = read_video(path, num_frames=8)
    except FakelensError as exc:
        assert "corrupt.mp4" in str(exc)
    else:
        assert all(f.image.shape == (256, 256, 3) for f in frames)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = np.zeros((1, 1024), dtype=np.float32)
        for _ in range(5):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(MediaError, match="no video stream"):
        load_frames(path)
