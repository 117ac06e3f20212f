"""fakelens.report: exports, chosen faces, annotated frames and the analysis behind the app, on real media."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from app_support import EXAMPLES, faceless_image, make_checkpoint

from fakelens import report
from fakelens.media import load_frames


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    from fakelens.detector import Detector

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAKELENS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield Detector.from_checkpoint(make_checkpoint(tmp_path_factory.mktemp("model")), num_frames=4)


@pytest.fixture(scope="module")
def video_analysis(detector):
    stages = []
    analysis = report.analyse(
        detector,
        EXAMPLES / "fake_ffpp_NeuralTextures_004_982.mp4",
        name="clip.mp4",
        method="gradcam",
        top_k=2,
        progress=lambda s, f: stages.append((s, f)),
    )
    return analysis, stages


@pytest.mark.slow
def test_analyse_video(video_analysis):
    analysis, stages = video_analysis
    prediction = analysis.prediction
    assert prediction.source == "clip.mp4" and prediction.kind == "video"
    assert prediction.label in ("REAL", "FAKE") and prediction.num_faces >= 2
    # Stages arrive in order, with fractions that never go back, ending at 1.
    names = [s for s, _ in stages]
    assert names[:3] == ["reading frames", "finding faces", "scoring"] and names[-1] == "done"
    assert "explaining" in names
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # The suspicious faces are the verdict track's highest scores, and each has its full frame.
    scores = [prediction.faces[i].score for i in analysis.suspicious]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)
    in_track = [f.score for f in prediction.faces if f.track == prediction.track]
    assert scores[0] == max(in_track)
    assert set(analysis.frames) == {prediction.faces[i].frame_index for i in analysis.suspicious}
    maps = analysis.heatmaps["gradcam"]
    assert maps.shape == (2, 224, 224) and 0.0 <= maps.min() and maps.max() <= 1.0 and maps.max() > 0.5
    full = analysis.frame_overlay(0, "gradcam")
    frame = analysis.frames[prediction.faces[analysis.suspicious[0]].frame_index]
    assert full.shape == frame.shape and not np.array_equal(full, frame)
    assert analysis.crop_overlay(0, "gradcam").shape == (224, 224, 3)
    # Any spelling the explainer accepts finds the same maps (they are stored under the canonical name).
    assert np.array_equal(analysis.crop_overlay(0, "Grad-CAM"), analysis.crop_overlay(0, "gradcam"))
    assert np.array_equal(analysis.frame_overlay(0, "GradCAM"), full)
    assert analysis.sheet is not None and analysis.sheet.ndim == 3


@pytest.mark.slow
def test_switching_method_adds_maps_for_the_same_faces(video_analysis, detector):
    analysis, _ = video_analysis
    plus = analysis.explain(detector, "Grad-CAM++")  # spellings are forgiven
    assert set(analysis.heatmaps) == {"gradcam", "gradcam++"}
    assert plus.shape == analysis.heatmaps["gradcam"].shape
    assert not np.allclose(plus, analysis.heatmaps["gradcam"])
    assert analysis.explain(detector, "gradcam++") is plus  # computed once


@pytest.mark.slow
def test_exports_match_the_prediction(video_analysis):
    prediction = video_analysis[0].prediction
    rows = list(csv.DictReader(io.StringIO(report.to_csv(prediction))))
    assert len(rows) == prediction.num_faces
    assert tuple(rows[0]) == report.CSV_COLUMNS
    for row, face in zip(rows, prediction.faces):
        assert int(row["frame_index"]) == face.frame_index and int(row["track"]) == face.track
        assert float(row["score"]) == pytest.approx(face.score, abs=1e-5)
        assert row["above_threshold"] == str(face.score >= prediction.threshold)
        assert row["source"] == "clip.mp4" and row["verdict"] == prediction.label
    data = json.loads(report.to_json(prediction))
    assert data == json.loads(prediction.to_json())
    timeline = report.timeline_rows(prediction)
    assert [t["score"] for t in timeline] == [f.score for f in prediction.faces]
    png = report.png_bytes(video_analysis[0].sheet)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_frames_at_gives_back_the_sampled_frames():
    path = EXAMPLES / "real_ffpp_004.mp4"
    sampled = load_frames(path, num_frames=6)
    wanted = [sampled[1].index, sampled[4].index]
    frames = report.frames_at(path, wanted, num_frames=6)
    assert sorted(frames) == sorted(wanted)
    assert np.array_equal(frames[wanted[0]], sampled[1].image)
    assert report.frames_at(path, [], num_frames=6) == {}


@pytest.mark.slow
def test_no_face(detector, tmp_path):
    from PIL import Image

    path = tmp_path / "skyline.png"
    Image.fromarray(faceless_image()).save(path)
    analysis = report.analyse(detector, path)
    assert analysis.prediction.label == "NO_FACE"
    assert analysis.suspicious == [] and analysis.heatmaps == {} and analysis.sheet is None
    assert report.to_csv(analysis.prediction) == ",".join(report.CSV_COLUMNS) + "\n"


def test_annotate_frame_colours_boxes_by_threshold():
    from fakelens.detector import FaceScore

    frame = np.zeros((200, 300, 3), np.uint8)
    fake = FaceScore(0, 0.0, 0, (20, 60, 100, 140), 0.99, 0.9, (0, 0, 0, 0))
    real = FaceScore(0, 0.0, 1, (180, 60, 260, 140), 0.99, 0.1, (0, 0, 0, 0))
    out = report.annotate_frame(frame, [fake, real], threshold=0.5)
    assert tuple(out[100, 20]) == report.FAKE_COLOUR  # left edge of the first box
    assert tuple(out[100, 260]) == report.REAL_COLOUR  # right edge of the second
    assert not frame.any()  # the input is not drawn on


def test_contact_sheet_layout():
    images = [np.full((100, 200, 3), v, np.uint8) for v in (10, 20, 30, 40, 50)]
    sheet = report.contact_sheet(images, [f"#{i}" for i in range(5)], columns=2, width=100)
    # 3 rows of (50 px image + 24 px caption) with 6 px gaps; 2 columns of 100 px.
    assert sheet.shape == (3 * (74 + 6) + 6, 2 * (100 + 6) + 6, 3)
    assert tuple(sheet[6 + 10, 6 + 10]) == (10, 10, 10)
    with pytest.raises(ValueError):
        report.contact_sheet([], [])


def test_most_suspicious_puts_the_verdict_track_first():
    from fakelens.detector import FaceScore, Prediction, TrackScore

    faces = [
        FaceScore(i, i / 10, track, (0, 0, 1, 1), 1.0, score, (0, 0, 1, 1))
        for i, (track, score) in enumerate([(0, 0.2), (1, 0.95), (0, 0.7), (0, 0.6), (1, 0.1)])
    ]
    prediction = Prediction(
        "x", "video", "FAKE", 0.5, 0.5, "mean", 0.0, 0, [TrackScore(0, 0.5, 3), TrackScore(1, 0.525, 2)], faces, 5, [], "m", "torch", {}
    )
    assert report.most_suspicious(prediction, 4) == [2, 3, 0, 1]
    assert report.most_suspicious(prediction, 0) == []
    assert report.faces_per_track(prediction, per_track=2) == {0: [0, 3], 1: [1, 4]}
