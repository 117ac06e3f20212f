"""Metrics agree with scikit-learn on fixed arrays and give known values on constructed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from fakelens import metrics as fm


def _fixed_cases():
    rng = np.random.default_rng(1234)
    cases = []
    for n in (2, 5, 17, 60, 301):
        labels = rng.integers(0, 2, n)
        labels[0], labels[-1] = 0, 1  # both classes present
        # Rounding creates ties, which is where hand-written AUC/AP usually disagree with scikit-learn.
        scores = np.round(rng.random(n) * 0.6 + labels * 0.3, 1 if n > 20 else 3)
        cases.append((labels, scores))
    return cases


@pytest.mark.parametrize("case", range(5))
def test_auc_ap_curves_match_sklearn(case):
    labels, scores = _fixed_cases()[case]
    assert fm.roc_auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert fm.average_precision(labels, scores) == pytest.approx(skm.average_precision_score(labels, scores), abs=1e-12)
    fpr, tpr, thresholds = skm.roc_curve(labels, scores, drop_intermediate=False)
    ours = fm.roc_curve(labels, scores)
    np.testing.assert_allclose(ours[0], fpr)
    np.testing.assert_allclose(ours[1], tpr)
    np.testing.assert_allclose(ours[2][1:], thresholds[1:])


@pytest.mark.parametrize("case", range(5))
def test_eer_matches_interpolated_roc_crossing(case):
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq

    labels, scores = _fixed_cases()[case]
    fpr, tpr, _ = skm.roc_curve(labels, scores, drop_intermediate=False)
    expected = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    eer, threshold = fm.equal_error_rate(labels, scores)
    assert eer == pytest.approx(expected, abs=1e-9)
    assert np.isfinite(threshold)


def test_eer_known_case():
    # 4 real, 4 fake; at threshold 0.6 exactly one real is above (FPR 1/4) and one fake below (FNR 1/4).
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    eer, threshold = fm.equal_error_rate(labels, scores)
    assert eer == pytest.approx(0.25)
    assert threshold == pytest.approx(0.6)
    # Perfect separation: EER 0; fully inverted: EER 1.
    assert fm.equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])[0] == pytest.approx(0.0)
    assert fm.equal_error_rate([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])[0] == pytest.approx(1.0)


@pytest.mark.parametrize("threshold", [0.25, 0.5, 0.7])
def test_threshold_metrics_match_sklearn(threshold):
    labels, scores = _fixed_cases()[3]
    pred = (scores >= threshold).astype(int)
    m = fm.threshold_metrics(labels, scores, threshold)
    assert m.accuracy == pytest.approx(skm.accuracy_score(labels, pred))
    assert m.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(labels, pred))
    assert m.precision == pytest.approx(skm.precision_score(labels, pred, zero_division=0))
    assert m.recall == pytest.approx(skm.recall_score(labels, pred))
    assert m.f1 == pytest.approx(skm.f1_score(labels, pred))
    assert m.confusion == skm.confusion_matrix(labels, pred, labels=[0, 1]).tolist()
    assert m.tp + m.fp + m.tn + m.fn == len(labels)


def test_best_threshold_maximises_balanced_accuracy_on_validation():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    t = fm.best_threshold(labels, scores)
    # Best balanced accuracy (0.875) is reached at score 0.7 or 0.4; the highest wins, placed half-way to 0.6.
    assert t == pytest.approx(0.65)
    best = fm.threshold_metrics(labels, scores, t).balanced_accuracy
    for candidate in np.linspace(0, 1, 101):
        assert fm.threshold_metrics(labels, scores, candidate).balanced_accuracy <= best + 1e-12
    assert fm.best_threshold(labels, scores, "f1") == pytest.approx(0.35)  # F1 prefers calling 0.4 fake too
    assert fm.best_threshold([1, 1], [0.2, 0.9]) == 0.5  # one class only
    with pytest.raises(ValueError):
        fm.best_threshold(labels, scores, "accuracy")


def test_single_class_gives_none_and_json():
    m = fm.binary_metrics([1, 1, 1], [0.2, 0.6, 0.9], threshold=0.5)
    assert m.auc is None and m.ap is None and m.eer is None
    assert m.at_threshold.recall == pytest.approx(2 / 3)
    assert m.at_threshold.specificity is None
    text = json.dumps(m.to_dict())
    assert json.loads(text)["n_fake"] == 3


def test_confident_strategy_follows_dfdc_winner():
    # 32 frames, 14 confidently fake (> 32 // 2.5 = 12 and > 11): mean of those frames only.
    pred = np.r_[np.full(14, 0.9), np.full(18, 0.3)]
    assert fm.confident_strategy(pred) == pytest.approx(0.9)
    # 11 confident fakes is not enough (> 11 needed): falls through to the plain mean.
    pred = np.r_[np.full(11, 0.9), np.full(21, 0.3)]
    assert fm.confident_strategy(pred) == pytest.approx(pred.mean())
    # Over 90% below 0.2: mean of those.
    pred = np.r_[np.full(30, 0.1), np.full(2, 0.7)]
    assert fm.confident_strategy(pred) == pytest.approx(0.1)
    assert fm.mean_strategy(pred) == pytest.approx(pred.mean())


def test_video_aggregation_groups_and_checks_labels():
    videos = ["a", "a", "b", "b", "b", "c"]
    scores = [0.2, 0.4, 0.9, 0.7, 0.8, 0.1]
    labels = [0, 0, 1, 1, 1, 0]
    v = fm.aggregate_videos(videos, scores, labels, "mean")
    assert v.videos == ["a", "b", "c"]
    np.testing.assert_allclose(v.scores, [0.3, 0.8, 0.1])
    assert v.labels.tolist() == [0, 1, 0] and v.n_frames.tolist() == [2, 3, 1]
    with pytest.raises(ValueError, match="both real and fake"):
        fm.aggregate_videos(["a", "a"], [0.1, 0.2], [0, 1])
    with pytest.raises(ValueError):
        fm.aggregate_videos(videos, scores, labels, "median")


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        fm.roc_auc([0, 1], [0.5])
    with pytest.raises(ValueError):
        fm.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError):
        fm.roc_auc([0, 1], [0.1, float("nan")])
