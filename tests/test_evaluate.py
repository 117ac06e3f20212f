"""Evaluation: metrics at the checkpoint's validation threshold, breakdowns with counts, JSON report and plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from shared_paths import IMAGENET_WEIGHTS
from sklearn import metrics as skm

from fakelens.checkpoint import load_model, save_checkpoint
from fakelens.data import load_crop, manifest_from_face_images, read_manifest
from fakelens.evaluate import evaluate, predict_crops, predict_manifest, write_report
from fakelens.model import DeepfakeClassifier, load_backbone_weights

WEIGHTS = IMAGENET_WEIGHTS
THRESHOLD = 0.4321


@pytest.fixture(scope="module")
def manifest(shared_data, tmp_path_factory) -> Path:
    """Test-split crops from two datasets and several methods, several frames per video for some."""
    with open(shared_data / "media.csv", newline="") as fh:
        media = [r for r in csv.DictReader(fh) if r["kind"] == "image" and r["label"] in ("real", "fake")]
    wanted = {
        "images/ffpp-c23/gend__original__000": 2,  # real, FF++
        "images/ffpp-c23/gend__Deepfakes__000_003": 2,
        "images/ffpp-c23/gend__FaceSwap__000_003": 2,
        "images/dfdc/cvit__real": 3,
        "images/dfdc/cvit__fake": 3,
    }
    entries, seen = [], set()
    for r in media:
        folder = r["path"].rsplit("/", 1)[0]
        if wanted.get(folder, 0) > 0 and not (r["dataset"] == "dfdc" and r["group"] in seen):
            wanted[folder] -= 1
            seen.add(r["group"])
            # FF++ crops are frames of one video per folder; DFDC crops are one video per group.
            video = folder if r["dataset"] == "ffpp-c23" else r["group"]
            entries.append(dict(path=shared_data / r["path"], label=r["label"], split="test", group=r["group"],
                                video=video, method=r["method"], dataset=r["dataset"]))  # fmt: skip
    return manifest_from_face_images(entries, tmp_path_factory.mktemp("eval"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    if not WEIGHTS.is_file():
        pytest.skip(f"needs {WEIGHTS}")
    torch.manual_seed(0)
    model = DeepfakeClassifier()
    load_backbone_weights(model, WEIGHTS)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    return save_checkpoint(path, model, epoch=1, config={"note": "untrained head"}, threshold=THRESHOLD, name="tiny")


def test_predict_manifest_equals_predict_crops(manifest, checkpoint):
    model, _ = load_model(checkpoint)
    rows = read_manifest(manifest)
    from_manifest = predict_manifest(model, rows, batch_size=4, progress=False)
    crops = [load_crop(r)[0] for r in rows]
    from_crops = predict_crops(model, crops, batch_size=5)
    assert from_manifest.shape == (len(rows),) and np.all((from_manifest >= 0) & (from_manifest <= 1))
    np.testing.assert_allclose(from_manifest, from_crops, rtol=0, atol=1e-6)


def test_evaluate_reports_at_validation_threshold_with_counts(manifest, checkpoint, tmp_path):
    report = evaluate(manifest, checkpoint, split="test", device="cpu", progress=False)
    rows = report.rows
    assert report.threshold == pytest.approx(THRESHOLD) and "validation" in report.threshold_source
    labels = np.array([r.target for r in rows])
    scores = report.frame_scores

    frame = report.overall.frame
    assert report.overall.n_frames == len(rows) == 12
    assert frame.auc == pytest.approx(skm.roc_auc_score(labels, scores))
    assert frame.ap == pytest.approx(skm.average_precision_score(labels, scores))
    pred = (scores >= THRESHOLD).astype(int)
    assert frame.at_threshold.confusion == skm.confusion_matrix(labels, pred, labels=[0, 1]).tolist()
    assert frame.at_threshold.f1 == pytest.approx(skm.f1_score(labels, pred, zero_division=0))

    # Videos: 3 FF++ videos of 2 frames each + 6 single-crop DFDC videos.
    assert report.overall.n_videos == 9 and report.overall.video.n == 9
    ff = report.per_dataset["ffpp-c23"]
    assert ff.n_frames == 6 and ff.n_videos == 3
    ff_rows = [i for i, r in enumerate(rows) if r.dataset == "ffpp-c23"]
    video_mean = {}
    for i in ff_rows:
        video_mean.setdefault(rows[i].video_key, []).append(scores[i])
    video_scores = [np.mean(v) for v in video_mean.values()]
    video_labels = [rows[next(i for i in ff_rows if rows[i].video_key == k)].target for k in video_mean]
    assert ff.video.auc == pytest.approx(skm.roc_auc_score(video_labels, video_scores))

    # Per method: that method's fakes against the REAL crops of its dataset.
    deepfakes = report.per_method["Deepfakes"]
    assert deepfakes.n_frames == 4 and deepfakes.frame.n_real == 2 and deepfakes.frame.n_fake == 2
    assert report.per_method["dfdc"].frame.n_real == 3

    paths = write_report(report, tmp_path / "out")
    data = json.loads(paths["report"].read_text())
    assert data["threshold"] == pytest.approx(THRESHOLD) and data["overall"]["n_frames"] == 12
    assert set(data["per_method"]) == {"Deepfakes", "FaceSwap", "dfdc"}
    for name in ("frame_roc", "frame_pr", "frame_hist", "video_roc", "video_pr", "video_hist"):
        assert paths[name].is_file() and paths[name].read_bytes()[:4] == b"\x89PNG", name
    with open(paths["predictions"], newline="") as fh:
        predicted = list(csv.DictReader(fh))
    assert len(predicted) == 12
    np.testing.assert_allclose([float(p["score"]) for p in predicted], scores, atol=1e-6)
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_confident_aggregation_and_threshold_override(manifest, checkpoint):
    confident = evaluate(manifest, checkpoint, aggregate="confident", threshold=0.9, device="cpu", progress=False)
    assert confident.aggregate == "confident" and confident.threshold == 0.9 and confident.threshold_source == "given"
    assert confident.overall.frame.at_threshold.threshold == 0.9
    with pytest.raises(ValueError):
        evaluate(manifest, checkpoint, aggregate="max", progress=False)


def test_cli_evaluate(manifest, checkpoint, tmp_path, capsys):
    from fakelens.cli import main

    assert main(["evaluate", "--manifest", str(manifest), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "r"),
                 "--device", "cpu", "--no-plots"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "threshold 0.4321" in out and "dataset ffpp-c23" in out and "method Deepfakes" in out
    assert (tmp_path / "r" / "report.json").is_file() and not (tmp_path / "r" / "frame_roc.png").exists()
    assert main(["evaluate", "--manifest", str(manifest), "--checkpoint", str(tmp_path / "nope.pt")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["evaluate", "--manifest", str(manifest), "--checkpoint", str(checkpoint), "--split", "val"]) == 1
    assert "no labelled rows" in capsys.readouterr().err
