"""The overlapped pipeline (fakelens.pipeline) against the stages run one after the other, on real media:
same faces, tracks and scores; folders equal file-by-file predictions; faces found on frames downscaled
once equal faces found on the full frames; the smallest scored face is in pixels of the original frame;
keyframe-only sampling happens only where keyframes are dense, and is recorded."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch

from fakelens.detector import Detector
from fakelens.errors import InvalidArgument, MediaError
from fakelens.media import DECODE_THREADING, Frame, iter_video, keyframe_indices, load_frames, plan_sampling, probe_video
from fakelens.pipeline import MAX_FACE_THREADS, decode_threading, face_threads
from fakelens.sysinfo import available_cores

FRAMES = 8


@pytest.fixture(scope="module")
def detectors(checkpoint) -> tuple[Detector, Detector]:
    """(overlapped, sequential) detectors over the same model, reading the frames asked for."""
    overlapped = Detector.from_checkpoint(checkpoint, num_frames=FRAMES, keyframes="never")
    sequential = Detector.from_checkpoint(checkpoint, num_frames=FRAMES, keyframes="never", overlap=False)
    assert overlapped.overlap and not sequential.overlap
    return overlapped, sequential


def _faces(result) -> list[tuple]:
    return [(f.frame_index, f.track, f.box, f.crop_box) for f in result.faces]


def _same(a, b) -> None:
    assert (a.label, a.frames, a.frame_times, a.sampling) == (b.label, b.frames, b.frame_times, b.sampling)
    assert _faces(a) == _faces(b)
    assert [t.to_dict()["faces"] for t in a.tracks] == [t.to_dict()["faces"] for t in b.tracks]
    np.testing.assert_allclose([f.score for f in a.faces], [f.score for f in b.faces], atol=1e-4)
    for fa, fb in zip(a.faces, b.faces):
        assert np.array_equal(fa.crop, fb.crop)


@pytest.mark.parametrize("name", ["fake_ffpp_NeuralTextures_004_982.mp4", "real_dfdc_aayrffkzxn.mp4", "real_ffpp_ex_original.png"])
def test_overlapped_predict_equals_sequential(detectors, examples, name):
    overlapped, sequential = detectors
    a, b = overlapped.predict(examples / name), sequential.predict(examples / name)
    assert a.num_faces > 0
    _same(a, b)
    assert {"decode", "faces", "classify", "wait", "total"} <= set(a.timings)
    # Overlapped stages: the wall time is at most the sum of what each stage was busy.
    busy = a.timings["decode"] + a.timings["faces"] + a.timings["classify"] + a.timings["wait"]
    assert a.timings["total"] <= busy + 0.05


def test_folder_equals_one_by_one_and_survives_a_bad_file(detectors, examples, tmp_path):
    overlapped, sequential = detectors
    names = ["real_ffpp_004.mp4", "fake_dfdc_abhggqdift.mp4", "fake_ffpp_ex_deepfakes.png"]
    for name in names:
        shutil.copy(examples / name, tmp_path / name)
    (tmp_path / "broken.mp4").write_bytes((examples / names[0]).read_bytes()[:3000])  # truncated
    paths = [tmp_path / names[0], tmp_path / "broken.mp4", tmp_path / names[1], tmp_path / names[2]]
    results = list(overlapped.predict_many(paths))
    assert [p for p, _ in results] == paths
    assert isinstance(results[1][1], MediaError)
    for path, result in (results[0], results[2], results[3]):
        _same(result, sequential.predict(path))
    assert [type(r) for _, r in results] == [type(r) for _, r in sequential.predict_many(paths)]
    with pytest.raises(MediaError):
        overlapped.predict(tmp_path / "broken.mp4")


def test_faces_on_frames_downscaled_once_equal_faces_on_full_frames(detectors, examples):
    """MTCNN.reduce + original_sizes (what the face finders do) finds exactly what detect finds on
    full frames, for 720p and for the same frames upscaled to 1080p."""
    mtcnn = detectors[0].faces.detector
    frames = [f.image for f in load_frames(examples / "real_ffpp_004.mp4", num_frames=3)]
    for images in (frames, [cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_LINEAR) for f in frames]):
        reduced = [mtcnn.reduce(img) for img in images]
        assert max(reduced[0].shape[:2]) == mtcnn.detection_size
        full = mtcnn.detect(images)
        small = mtcnn.detect(reduced, original_sizes=[img.shape[:2] for img in images])
        assert [[f.to_dict() for f in fs] for fs in full] == [[f.to_dict() for f in fs] for fs in small]
        assert all(full)


def _face_on_canvas(image: np.ndarray, box, height: int, canvas=(1080, 1920)) -> np.ndarray:
    """``image`` scaled so that the face in ``box`` is ``height`` px tall, pasted on a grey 1080p canvas."""
    factor = height / (box[3] - box[1])
    small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    out = np.full((*canvas, 3), 110, np.uint8)
    h, w = min(canvas[0], small.shape[0]), min(canvas[1], small.shape[1])
    out[300 : 300 + h, 500 : 500 + w] = small[: canvas[0] - 300, : canvas[1] - 500][:h, :w]
    return out


def test_the_smallest_scored_face_is_in_pixels_of_the_original_frame(detectors, examples):
    """Detection runs at 640 px, but the 60 px minimum is in pixels of the 1080p frame: every frame holding
    a 130 px or a 70 px face gets it scored (at 640 px they are 43 and 23 px). The minimum is the size the
    search guarantees, not a filter (MTCNN finds some 30-40 px faces too); a 20 px face, 7 px at 640, is not found."""
    detector = detectors[0]
    assert detector.faces.detector.min_face_size == 60 and detector.faces.detector.detection_size == 640
    frames = load_frames(examples / "real_ffpp_004.mp4", num_frames=6)
    boxes = [max(fs, key=lambda f: f.area).box for fs in detector.faces.detect(frames)]
    for height, expected in ((130, True), (70, True), (20, False)):
        canvases = [Frame(f.index, f.timestamp, _face_on_canvas(f.image, box, height)) for f, box in zip(frames, boxes)]
        crops = [c for c in detector.faces.extract_frames(canvases) if c.prob >= detector.min_face_prob]
        with_face = {c.frame_index for c in crops}
        if expected:
            assert with_face == {f.index for f in frames}, height
            assert all(c.box[3] - c.box[1] >= 0.8 * height for c in crops)
        else:
            assert not with_face


def test_keyframes_are_sampled_only_where_dense_and_recorded(checkpoint, examples, shared_data):
    dense = shared_data / "videos" / "other" / "fwa__demo.mp4"  # MPEG-4, a keyframe every 12 frames
    sparse = examples / "real_ffpp_004.mp4"  # H.264, a keyframe every 250 frames
    info = probe_video(dense)
    keys = keyframe_indices(dense)
    plan = plan_sampling(dense, FRAMES, "auto")
    assert plan.mode == "keyframes" and set(plan.indices) <= set(keys) and len(set(plan.indices)) == len(plan.indices)
    assert max(abs(a - b) for a, b in zip(plan.indices, plan.requested)) <= 0.5 * info.frame_count / FRAMES
    assert plan_sampling(dense, FRAMES, "never").mode == "even"
    assert plan_sampling(sparse, FRAMES, "auto").mode == "even" and "sparse" in plan_sampling(sparse, FRAMES, "auto").note

    auto = Detector.from_checkpoint(checkpoint, num_frames=FRAMES, keyframes="auto")
    result = auto.predict(dense)
    assert result.sampling == "keyframes" and result.to_dict()["sampling"] == "keyframes" and "keyframe" in result.sampling_note
    assert [i for i, _ in result.frame_times] == plan.indices
    never = Detector.from_checkpoint(checkpoint, num_frames=FRAMES).predict(dense)  # the default
    assert never.sampling == "even" and [i for i, _ in never.frame_times] == plan.requested
    assert auto.predict(sparse).sampling == "even"
    # The keyframes decoded alone are the frames a full decode gives at those indices.
    full = {f.index: f.image for f in load_frames(dense, num_frames=info.frame_count)}
    kept = auto.predict(dense, keep_frames=True).frame_images or {}
    assert kept and all(np.array_equal(image, full[index]) for index, image in kept.items())


@pytest.mark.parametrize("name", ["fake_ffpp_NeuralTextures_004_982.mp4", "real_dfdc_aayrffkzxn.mp4"])
def test_frames_decoded_without_unasked_b_frames_are_bit_identical(examples, name):
    """iter_video skips the non-reference frames nobody asked for; the frames it returns are those a plain
    decode of every frame gives at the same indices (and those indices are the ones asked for), with
    FFmpeg's frame threads, slice threads only (the overlapped path on 2 cores) or none."""
    import av

    path = examples / name
    frames = load_frames(path, num_frames=FRAMES)
    assert [f.index for f in frames] == plan_sampling(path, FRAMES).requested
    with av.open(str(path)) as container:
        every = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(every) == probe_video(path).frame_count
    for frame in frames:
        assert np.array_equal(frame.image, every[frame.index]), frame.index
    for threads in DECODE_THREADING:
        again = list(iter_video(path, plan_sampling(path, FRAMES), threads))
        assert [f.index for f in again] == [f.index for f in frames]
        assert all(np.array_equal(a.image, b.image) for a, b in zip(again, frames)), threads
    with pytest.raises(InvalidArgument, match="decode_threads"):
        next(iter_video(path, plan_sampling(path, FRAMES), "FAST"))


def test_more_face_finders_give_the_same_faces_and_scores(checkpoint, detectors, examples):
    """Face finders work batches in parallel and are collected in frame order: with 3 of them on batches of 2
    frames (4 batches), the result equals the sequential path's, and torch's thread setting is restored."""
    threads_before = torch.get_num_threads()
    parallel = Detector.from_checkpoint(checkpoint, num_frames=FRAMES, keyframes="never", face_threads=3)
    sequential = detectors[1]
    saved = sequential.faces.batch_size
    parallel.faces.batch_size = sequential.faces.batch_size = 2
    try:
        for name in ("fake_ffpp_NeuralTextures_004_982.mp4", "real_ffpp_004.mp4"):
            a, b = parallel.predict(examples / name), sequential.predict(examples / name)
            assert a.num_faces > 0
            _same(a, b)
        assert torch.get_num_threads() == threads_before
    finally:
        sequential.faces.batch_size = saved
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidArgument, match="face_threads"):
            Detector.from_checkpoint(checkpoint, face_threads=bad)


def test_threads_follow_the_cores():
    """One face finder on 2 cores (the design point), and slice-only decoding there up to 720p, where finding faces
    is the slower stage; more cores, more finders, up to 4, and frame threads for the decoder."""
    assert [face_threads(cores) for cores in (1, 2, 3, 4, 8, 64)] == [1, 1, 2, 3, 4, MAX_FACE_THREADS]
    hd, full_hd = 1280 * 720, 1920 * 1080
    assert [decode_threading(hd, cores) for cores in (1, 2, 3, 16)] == ["SLICE", "SLICE", "AUTO", "AUTO"]
    assert [decode_threading(full_hd, cores) for cores in (1, 2, 3)] == ["SLICE", "AUTO", "AUTO"]
    assert face_threads() == max(1, min(MAX_FACE_THREADS, available_cores() - 1))


@pytest.mark.parametrize("name", ["real_ffpp_004.mp4", "real_ffpp_ex_original.png"])
def test_past_reading_frames_the_file_is_no_longer_read(detectors, examples, tmp_path, name):
    """The HTTP API deletes an upload at the first stage after "reading frames" (fakelens.serve.jobs); the
    overlapped path reports that stage only once every frame is decoded, so the prediction still completes."""
    path = tmp_path / name
    shutil.copy(examples / name, path)
    stages = []

    def progress(stage: str, fraction: float) -> None:
        stages.append(stage)
        if stage != "reading frames":
            path.unlink(missing_ok=True)

    result = detectors[0].predict(path, progress=progress)
    assert not path.exists() and result.num_faces > 0
    assert stages[0] == "reading frames" and stages[-1] == "done" and "finding faces" in stages
    _same(result, detectors[1].predict(examples / name))
