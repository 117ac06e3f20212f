"""MTCNN face detection on the bundled examples.

The expected boxes and landmarks were read off renders of the detections (box and the five points
drawn on the frame, checked by eye: eyes on the pupils, nose on the tip, points on the mouth corners).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fakelens.errors import CheckpointError, FakelensError, MediaError
from fakelens.media import read_image, read_video
from fakelens.mtcnn import MTCNN, Face, find_weights, load_network

# examples/real_ffpp_ex_original.png (640x480): one frontal face.
PNG_BOX = (296.2, 57.1, 391.6, 190.1)
PNG_LANDMARKS = ((329.4, 109.6), (371.1, 116.2), (349.8, 136.9), (325.1, 156.1), (363.2, 161.9))
# First of 8 sampled frames (index 19) of examples/real_ffpp_004.mp4 (1280x720): a presenter, head turned.
VIDEO_BOX = (713.1, 123.8, 843.0, 302.4)
VIDEO_LANDMARKS = ((731.9, 194.0), (786.7, 192.7), (743.3, 229.5), (737.1, 262.4), (781.8, 262.1))


@pytest.fixture(scope="module")
def detector() -> MTCNN:
    return MTCNN(device="cpu")


@pytest.fixture(scope="module")
def png(examples) -> np.ndarray:
    return read_image(examples / "real_ffpp_ex_original.png")


@pytest.fixture(scope="module")
def video_frames(examples) -> list[np.ndarray]:
    return [frame.image for frame in read_video(examples / "real_ffpp_004.mp4", num_frames=8)]


@pytest.fixture(scope="module")
def presenter_crops(video_frames) -> list[np.ndarray]:
    """480x400 crops around the presenter's face: same-size frames that are quicker to search than 720p."""
    return [np.ascontiguousarray(frame[0:400, 560:1040]) for frame in video_frames[:3]]


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def assert_sane_landmarks(face: Face) -> None:
    (lex, ley), (rex, rey), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    x1, y1, x2, y2 = face.box
    for x, y in face.landmarks:
        assert x1 <= x <= x2 and y1 <= y <= y2, f"landmark {(x, y)} outside box {face.box}"
    assert lex < rex and mlx < mrx, "left/right swapped"
    assert max(ley, rey) < ny < min(mly, mry), "eyes, nose and mouth out of vertical order"


# --------------------------------------------------------------------------- weights


def test_weights_load_with_expected_layer_shapes():
    pnet, rnet, onet = (load_network(name) for name in ("pnet", "rnet", "onet"))
    assert pnet.conv1.weight.shape == (10, 3, 3, 3)
    assert pnet.prelu1.weight.shape == (10,)
    assert pnet.conv4_1.weight.shape == (2, 32, 1, 1) and pnet.conv4_2.weight.shape == (4, 32, 1, 1)
    assert rnet.conv3.weight.shape == (64, 48, 2, 2)
    assert rnet.dense4.weight.shape == (128, 576)
    assert rnet.dense5_1.weight.shape == (2, 128) and rnet.dense5_2.weight.shape == (4, 128)
    assert onet.dense5.weight.shape == (256, 1152)
    assert onet.dense6_1.weight.shape == (2, 256)
    assert onet.dense6_2.weight.shape == (4, 256) and onet.dense6_3.weight.shape == (10, 256)
    for net in (pnet, rnet, onet):
        assert not net.training
        assert all(torch.isfinite(p).all() and p.abs().sum() > 0 for p in net.parameters())


def test_missing_weights_package_is_a_clear_error():
    assert find_weights("pnet").name == "pnet.lz4"
    with pytest.raises(CheckpointError, match="pip install"):
        find_weights("pnet", distribution="fakelens-no-such-package")
    with pytest.raises(CheckpointError, match="no weights/qnet.lz4"):
        find_weights("qnet")


# --------------------------------------------------------------------------- known faces


def test_single_face_in_image(detector, png):
    faces = detector.detect([png])[0]
    assert len(faces) == 1
    face = faces[0]
    assert face.prob > 0.99
    np.testing.assert_allclose(face.box, PNG_BOX, atol=4)
    np.testing.assert_allclose(face.landmarks, PNG_LANDMARKS, atol=3)
    assert_sane_landmarks(face)


def test_single_face_in_video_frame(detector, video_frames):
    faces = detector.detect(video_frames[:1])[0]
    assert len(faces) == 1
    face = faces[0]
    assert face.prob > 0.99
    np.testing.assert_allclose(face.box, VIDEO_BOX, atol=4)
    np.testing.assert_allclose(face.landmarks, VIDEO_LANDMARKS, atol=3)
    assert_sane_landmarks(face)
    assert face.width == pytest.approx(face.box[2] - face.box[0])
    assert face.area == pytest.approx(face.width * face.height)


def test_face_to_dict_is_json(detector, png):
    face = detector.detect([png])[0][0]
    data = json.loads(json.dumps(face.to_dict()))
    assert set(data) == {"box", "prob", "landmarks"}
    assert len(data["box"]) == 4 and len(data["landmarks"]) == 5
    assert data["box"] == pytest.approx(list(face.box))


# --------------------------------------------------------------------------- batching and inputs


def test_batch_gives_the_same_faces_as_one_by_one(detector, presenter_crops):
    frames = presenter_crops
    batched = detector.detect(frames)
    single = [detector.detect([frame])[0] for frame in frames]
    assert [len(f) for f in batched] == [len(f) for f in single]
    assert all(len(faces) >= 1 for faces in batched)
    for faces_b, faces_s in zip(batched, single):
        for b, s in zip(faces_b, faces_s):
            np.testing.assert_allclose(b.box, s.box, atol=1e-2)
            np.testing.assert_allclose(b.landmarks, s.landmarks, atol=1e-2)
            assert b.prob == pytest.approx(s.prob, abs=1e-5)


def test_array_tensor_and_list_inputs_agree(detector, presenter_crops):
    frames = presenter_crops[:2]
    as_list = detector.detect(frames)
    as_array = detector.detect(np.stack(frames))
    as_tensor = detector.detect(torch.from_numpy(np.stack(frames)))
    one_frame = detector.detect(frames[0])  # a single (H, W, 3) frame is a batch of one
    assert len(as_array) == len(as_tensor) == 2 and len(one_frame) == 1
    assert all(len(faces) >= 1 for faces in as_list)
    for other in (as_array, as_tensor):
        for faces_a, faces_b in zip(as_list, other):
            assert [f.box for f in faces_a] == [f.box for f in faces_b]
    # A batch of one may take other kernels than a batch of two: equal up to float rounding.
    np.testing.assert_allclose([f.box for f in one_frame[0]], [f.box for f in as_list[0]], atol=1e-2)


def test_frames_of_different_sizes_keep_their_order(detector, png, video_frames):
    tiny = np.zeros((8, 8, 3), np.uint8)
    results = detector.detect([video_frames[0], tiny, png, video_frames[1]])
    assert len(results) == 4
    assert results[1] == []
    np.testing.assert_allclose(results[0][0].box, VIDEO_BOX, atol=4)
    np.testing.assert_allclose(results[2][0].box, PNG_BOX, atol=4)
    assert iou(results[3][0].box, VIDEO_BOX) > 0.7  # the same presenter a few frames later


def test_faces_sorted_by_probability(detector, video_frames):
    # The last sampled frames also show a still of a (furry) face in an inset, at lower probability.
    faces = detector.detect(video_frames[-1:])[0]
    assert len(faces) >= 2
    probs = [f.prob for f in faces]
    assert probs == sorted(probs, reverse=True)


def test_detection_size_downscales_but_reports_frame_coordinates(video_frames):
    full = MTCNN(device="cpu").detect(video_frames[:1])[0][0]
    small = MTCNN(detection_size=640, device="cpu").detect(video_frames[:1])[0]
    assert len(small) == 1
    assert iou(small[0].box, full.box) > 0.85
    # Landmarks land within a few frame pixels (2 px at detection size).
    assert np.abs(np.subtract(small[0].landmarks, full.landmarks)).max() < 6
    assert_sane_landmarks(small[0])


def test_min_face_size_filters_small_faces(video_frames):
    # The presenter's face is ~130 px wide. min_face_size only sets the pyramid's base, so faces a bit
    # smaller than it can still be found; far smaller ones cannot.
    assert len(MTCNN(min_face_size=100, device="cpu").detect(video_frames[:1])[0]) == 1
    assert MTCNN(min_face_size=400, device="cpu").detect(video_frames[:1])[0] == []


def test_no_face_gives_empty_lists(detector, video_frames):
    background = video_frames[0][380:720, 0:560]  # desk and studio wall beside the presenter
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    flat = np.full((240, 320, 3), 128, np.uint8)
    assert detector.detect([background, noise, flat]) == [[], [], []]
    assert detector.detect([]) == []


def test_bad_input_raises_media_error(detector):
    with pytest.raises(MediaError, match="uint8"):
        detector.detect([np.zeros((32, 32, 3), np.float32)])
    with pytest.raises(MediaError, match="shape"):
        detector.detect([np.zeros((32, 32, 5), np.uint8)])
    with pytest.raises(MediaError, match="empty"):
        detector.detect([np.zeros((0, 32, 3), np.uint8)])
    with pytest.raises(FakelensError):
        detector.detect("frame.png")


def test_bad_parameters_raise_value_error():
    with pytest.raises(ValueError):
        MTCNN(min_face_size=0)
    with pytest.raises(ValueError):
        MTCNN(thresholds=(0.6, 0.7))
    with pytest.raises(ValueError):
        MTCNN(scale_factor=1.2)
    with pytest.raises(ValueError):
        MTCNN(detection_size=8)


def test_summed_area_tables_are_exact(video_frames):
    """CPU tables come from OpenCV (GPU ones from torch's cumsum): they equal the exact integer sums, and a
    pyramid level read from them equals torch's area interpolation."""
    from fakelens.mtcnn.pyramid import area_resize, integral, resize_plan

    frames = torch.from_numpy(np.stack(video_frames[:2]))[:, 100:163, 200:297]  # a strided view
    exact = torch.zeros(2, 64, 98, 3, dtype=torch.int64)
    exact[:, 1:, 1:] = frames
    exact = exact.cumsum(1).cumsum(2)
    table = integral(frames)
    assert table.dtype == torch.int32 and torch.equal(table.long(), exact)
    level = area_resize(table, resize_plan(table, 21, 33))
    expected = torch.nn.functional.interpolate(frames.permute(0, 3, 1, 2).float(), size=(21, 33), mode="area")
    torch.testing.assert_close(level, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("channels", [10, 28])
@pytest.mark.parametrize("shape", [(2, 13, 16), (1, 7, 9), (3, 31, 45)])  # the last two leave a remainder
def test_wide_prelu_equals_prelu_bit_for_bit(channels, shape):
    """P-Net's and R-Net's part-register PReLUs run on a wide view of channels-last maps: same values exactly."""
    from fakelens.mtcnn.nets import WidePReLU, prelu

    torch.manual_seed(channels)
    batch, height, width = shape
    x = torch.randn(batch, channels, height, width).contiguous(memory_format=torch.channels_last)
    wide = prelu(channels)
    assert isinstance(wide, WidePReLU)
    with torch.no_grad():
        wide.weight.uniform_(-1.3, 1.3)  # the trained slopes span about this range, negative ones included
        plain = torch.nn.PReLU(channels)
        plain.weight.copy_(wide.weight)
        for tensor in (x, x.contiguous()):  # channels-last takes the wide view; the other layout the plain kernel
            out = wide(tensor)
            assert torch.equal(out, plain(tensor))
            assert out.is_contiguous(memory_format=torch.channels_last) == (tensor is x)
    assert not isinstance(prelu(32), WidePReLU)
