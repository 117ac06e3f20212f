"""The one-call detector and `fakelens predict`, on real media."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from fakelens import Detector
from fakelens.backends import OnnxBackend, TorchBackend, export_onnx
from fakelens.checkpoint import load_model
from fakelens.errors import MediaError
from fakelens.media import read_image


@pytest.fixture(scope="module")
def detector(checkpoint) -> Detector:
    return Detector.from_checkpoint(checkpoint, num_frames=8)


def test_video_prediction_has_everything(detector, examples):
    result = detector.predict(examples / "real_ffpp_004.mp4")
    assert result.kind == "video" and result.frames == 8
    assert result.label in ("REAL", "FAKE")
    assert 0.0 <= result.score <= 1.0
    assert result.label == ("FAKE" if result.score >= result.threshold else "REAL")
    assert result.num_faces >= 8 and result.tracks
    principal = [t for t in result.tracks if t.principal]
    assert result.score == max(t.score for t in principal)  # verdict follows the most suspicious principal track
    assert {"decode", "faces", "classify", "total"} <= set(result.timings)
    data = json.loads(result.to_json())
    assert data["label"] == result.label and len(data["face_scores"]) == result.num_faces


def test_image_path_and_array_agree(detector, examples):
    path = examples / "fake_ffpp_ex_deepfakes.png"
    from_path = detector.predict(path)
    from_array = detector.predict(read_image(path))
    assert from_path.kind == "image" and from_path.frames == 1
    assert from_array.score == pytest.approx(from_path.score, abs=1e-6)


def test_no_face(detector, examples, tmp_path):
    frame = read_image(examples / "real_ffpp_ex_original.png")
    result = detector.predict(np.ascontiguousarray(frame[300:480, 0:180]))  # a corner without a face
    assert result.label == "NO_FACE" and result.score is None and result.num_faces == 0


def test_threshold_and_aggregate_options(detector, examples):
    low = detector.predict(examples / "real_dfdc_aayrffkzxn.mp4", threshold=0.0)
    high = detector.predict(examples / "real_dfdc_aayrffkzxn.mp4", threshold=1.0)
    assert low.label == "FAKE" and high.label == "REAL"
    mean = detector.predict(examples / "real_dfdc_aayrffkzxn.mp4")
    confident = detector.predict(examples / "real_dfdc_aayrffkzxn.mp4", aggregate="confident")
    from fakelens.detector import aggregate_scores

    # The same face scores, aggregated the other way: each track's score is the named strategy over its faces.
    assert [f.score for f in confident.faces] == [f.score for f in mean.faces]
    for prediction, how in ((mean, "mean"), (confident, "confident")):
        for track in prediction.tracks:
            faces = [f.score for f in prediction.faces if f.track == track.track]
            assert track.score == pytest.approx(aggregate_scores(faces, how))


def test_bad_input_raises_media_error(detector, tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(MediaError):
        detector.predict(bad)


def test_onnx_matches_pytorch(checkpoint, tmp_path, examples):
    model, _ = load_model(checkpoint)
    crops = np.stack([read_image(examples / "real_ffpp_ex_original.png")[100:324, 200:424]] * 3)
    model.train()  # the export must leave the caller's model as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = export_onnx(model, tmp_path / "m.onnx")
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.eval()
    np.testing.assert_allclose(OnnxBackend(path)(crops), TorchBackend(model)(crops), atol=1e-4)


def test_engines_give_the_same_verdict(checkpoint, examples):
    video = examples / "fake_dfdc_abhggqdift.mp4"
    onnx = Detector.from_checkpoint(checkpoint, num_frames=4, backend="onnx").predict(video)
    torch_ = Detector.from_checkpoint(checkpoint, num_frames=4, backend="torch").predict(video)
    assert onnx.backend == "onnxruntime" and torch_.backend == "torch"
    assert onnx.score == pytest.approx(torch_.score, abs=1e-4)


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "fakelens", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_predict_json_lines_and_exit_code(checkpoint, examples, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    result = run_cli(
        "predict",
        "--json",
        "--frames",
        "4",
        "--checkpoint",
        str(checkpoint),
        str(examples / "real_dfdc_aayrffkzxn.mp4"),
        str(bad),
        str(examples / "real_ffpp_ex_original.png"),
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in rows][1] == "ERROR"
    assert result.returncode == 1  # one input failed
    for row in rows:
        assert set(row) >= {"path", "label", "score", "frames", "faces", "error"}
    assert rows[0]["label"] in ("REAL", "FAKE") and rows[0]["frames"] == 4 and rows[0]["error"] is None
    assert rows[1]["score"] is None and "broken.mp4" in rows[1]["path"] and rows[1]["error"]
    assert rows[2]["frames"] == 1 and rows[2]["faces"] == 1


@pytest.mark.slow
def test_predict_table_on_a_folder(checkpoint, examples):
    result = run_cli("predict", "--frames", "2", "--checkpoint", str(checkpoint), str(examples))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split()[:3] == ["verdict", "P(fake)", "frames"]
    assert len(lines) == 2 + 6  # header + one line per bundled example


def test_export_command(checkpoint, tmp_path):
    result = run_cli("export", "--onnx", str(tmp_path / "c.onnx"), "--checkpoint", str(checkpoint))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c.onnx").stat().st_size > 1_000_000


def test_keep_frames_returns_the_frames_with_faces(detector, examples):
    result = detector.predict(examples / "real_dfdc_aayrffkzxn.mp4", num_frames=3, keep_frames=True)
    assert sorted(result.frame_images) == sorted({f.frame_index for f in result.faces})
    assert all(image.shape == (256, 256, 3) for image in result.frame_images.values())
    assert "frame_images" not in result.to_dict()


def test_explain_attaches_a_heatmap_to_every_face(detector, examples):
    result = detector.predict(examples / "real_ffpp_ex_original.png", explain="gradcam")
    assert result.explain_method == "gradcam" and "explain" in result.timings
    heatmap = result.faces[0].heatmap
    assert heatmap.shape == (224, 224) and 0.0 <= heatmap.min() and heatmap.max() <= 1.0 and heatmap.max() > 0


def test_a_briefly_seen_face_does_not_decide_the_verdict(checkpoint, examples, tmp_path):
    """A second face in 2 of 8 frames is reported as its own track, but the verdict follows the main one."""
    import av

    from fakelens.media import read_video

    main = read_video(examples / "real_dfdc_aayrffkzxn.mp4", num_frames=8)
    other = read_video(examples / "fake_dfdc_abhggqdift.mp4", num_frames=8)
    path = tmp_path / "glimpse.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=4)
        stream.width, stream.height, stream.pix_fmt = 512, 256, "yuv420p"
        for i, (a, b) in enumerate(zip(main, other)):
            right = b.image if i < 2 else np.full_like(b.image, 128)
            frame = av.VideoFrame.from_ndarray(np.concatenate([a.image, right], axis=1), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    result = Detector.from_checkpoint(checkpoint, num_frames=8).predict(path)
    assert len(result.tracks) == 2
    main_track, glimpse = sorted(result.tracks, key=lambda t: -t.faces)
    assert main_track.principal and not glimpse.principal
    assert result.track == main_track.track and result.score == main_track.score


def test_bundled_model_is_checksummed_and_loads(examples):
    from fakelens.detector import DEFAULT_MODEL, verify_default_model

    assert verify_default_model() == DEFAULT_MODEL
    assert DEFAULT_MODEL.stat().st_size < 15_000_000
    detector = Detector.default(num_frames=4)
    assert detector.name == "fakelens-default-v6" and 0.0 < detector.threshold < 1.0


def test_a_tampered_checkpoint_is_refused(tmp_path):
    from fakelens.checkpoint import verify_sha256
    from fakelens.detector import DEFAULT_MODEL
    from fakelens.errors import CheckpointError

    copy = tmp_path / "default.pt"
    data = bytearray(DEFAULT_MODEL.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    expected = __import__("json").loads(DEFAULT_MODEL.with_suffix(".json").read_text())["sha256"]
    with pytest.raises(CheckpointError):
        verify_sha256(copy, expected)


@pytest.mark.parametrize(
    "option, value, message",
    [("--frames", "0", "frames must be a whole number of at least 1, got 0"),
     ("--threshold", "1.5", "threshold must be in [0, 1], got 1.5"),
     ("--threshold", "nan", "threshold must be in [0, 1]"),
     ("--device", "gpu7", "device must be auto, cpu, cuda or cuda:N")],
)  # fmt: skip
def test_predict_refuses_bad_options_with_one_clear_error(examples, capsys, option, value, message):
    """The CLI and the library check each option once, the same way: a FakelensError, no traceback."""
    from fakelens.cli import main

    assert main(["predict", str(examples / "real_dfdc_aayrffkzxn.mp4"), option, value]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_library_raises_the_same_errors(detector, examples):
    from fakelens.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="frames must be"):
        detector.predict(examples / "real_ffpp_ex_original.png", num_frames=0)
    with pytest.raises(InvalidArgument, match=r"threshold must be in \[0, 1\]"):
        detector.predict(examples / "real_ffpp_ex_original.png", threshold=-0.1)
    with pytest.raises(InvalidArgument, match="aggregate must be one of mean, confident"):
        detector.predict(examples / "real_ffpp_ex_original.png", aggregate="max")
