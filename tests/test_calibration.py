"""Temperature scaling makes over-confident scores honest without changing their ranking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakelens.calibration import expected_calibration_error, fit_temperature, fold_temperature, reliability_curve
from fakelens.metrics import roc_auc


def _overconfident(n=4000, seed=0, scale=4.0):
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(0, 1.5, n)
    targets = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(float)
    return true_logit * scale, targets  # a model 4x too sure of itself


def test_temperature_recovers_the_overconfidence():
    logits, targets = _overconfident()
    t = fit_temperature(logits, targets)
    assert 3.3 < t < 4.8
    before = expected_calibration_error(1 / (1 + np.exp(-logits)), targets)
    after = expected_calibration_error(1 / (1 + np.exp(-logits / t)), targets)
    assert after < before / 2 and after < 0.04
    # Scaling never changes the ranking.
    assert roc_auc(targets, logits) == pytest.approx(roc_auc(targets, logits / t))


def test_reliability_curve_bins_and_errors():
    curve = reliability_curve([0.05, 0.05, 0.95, 0.95], [0, 0, 1, 0], bins=10)
    assert curve.counts == [2, 2] and curve.observed == [0.0, 0.5]
    assert curve.ece == pytest.approx(0.5 * 0.05 + 0.5 * 0.45)
    with pytest.raises(ValueError):
        reliability_curve([], [])
    with pytest.raises(ValueError):
        fit_temperature([1.0, 2.0], [1.0])


def test_folding_the_temperature_divides_the_logits():
    from fakelens.model import DeepfakeClassifier

    torch.manual_seed(0)
    model = DeepfakeClassifier().eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        before = model(x)
        fold_temperature(model, 2.5)
        after = model(x)
    assert torch.allclose(after, before / 2.5, atol=1e-5)
