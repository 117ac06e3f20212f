"""Calibration: temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017).

A classifier's sigmoid outputs are scores, not probabilities, until checked. Temperature scaling divides
every logit by one number ``T`` fitted on a validation split (minimum binary cross-entropy), which keeps
the ranking (so AUC) unchanged and makes ``P(fake)`` mean what it says when the validation data resemble
what the model meets. :func:`expected_calibration_error` (ECE, equal-width bins) and
:func:`reliability_curve` measure it; :func:`fold_temperature` writes ``T`` into the classifier's last
layer, so every backend (PyTorch, ONNX) serves calibrated probabilities with no extra code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Bins of the reliability diagram and of the ECE.
CALIBRATION_BINS = 15


def _nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    # log(1 + exp(-|z|)) + max(z, 0) - y z: BCE with logits, stable for large |z|.
    return float(np.mean(np.logaddexp(0.0, z) - targets * z))


def fit_temperature(logits, targets, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature ``T`` minimising the BCE of ``sigmoid(logits / T)`` (golden-section search on log T).

    ``logits`` and ``targets`` (1 = FAKE) are 1-D; ``bounds`` (default 0.05-20) limits the search.
    """
    logits = np.asarray(logits, dtype=np.float64).ravel()
    targets = np.asarray(targets, dtype=np.float64).ravel()
    if logits.size == 0 or logits.size != targets.size:
        raise ValueError("need as many targets as logits, and at least one")
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(logits, targets, np.exp(a)), _nll(logits, targets, np.exp(b))
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(logits, targets, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(logits, targets, np.exp(b))
    return float(np.exp((lo + hi) / 2.0))


@dataclass
class ReliabilityCurve:
    """Per-bin mean predicted P(fake), observed share of FAKE and count (empty bins left out)."""

    confidence: list[float]
    observed: list[float]
    counts: list[int]
    ece: float

    def to_dict(self) -> dict:
        return asdict(self)


def reliability_curve(probs, targets, bins: int = CALIBRATION_BINS) -> ReliabilityCurve:
    """Equal-width bins of P(fake) (default 15): mean prediction vs observed FAKE rate, and the ECE."""
    probs = np.asarray(probs, dtype=np.float64).ravel()
    targets = np.asarray(targets, dtype=np.float64).ravel()
    if probs.size == 0 or probs.size != targets.size:
        raise ValueError("need as many targets as probabilities, and at least one")
    which = np.minimum((probs * bins).astype(int), bins - 1)
    confidence, observed, counts, ece = [], [], [], 0.0
    for k in range(bins):
        inside = which == k
        n = int(inside.sum())
        if not n:
            continue
        conf, obs = float(probs[inside].mean()), float(targets[inside].mean())
        confidence.append(conf)
        observed.append(obs)
        counts.append(n)
        ece += n / probs.size * abs(conf - obs)
    return ReliabilityCurve(confidence, observed, counts, float(ece))


def expected_calibration_error(probs, targets, bins: int = CALIBRATION_BINS) -> float:
    """ECE: the count-weighted mean gap between predicted P(fake) and observed FAKE rate over bins."""
    return reliability_curve(probs, targets, bins).ece


def fold_temperature(model, temperature: float) -> None:
    """Divide the classifier's final linear layer by ``temperature`` in place: logits become ``logit / T``."""
    import torch

    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.div_(temperature)
        if last.bias is not None:
            last.bias.div_(temperature)


def plot_reliability(curves: dict[str, ReliabilityCurve], path, title: str = "reliability") -> None:
    """A reliability diagram with one line per curve (e.g. before / after scaling), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fakelens import atomic

    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, curve in curves.items():
        ax.plot(curve.confidence, curve.observed, marker="o", label=f"{name} (ECE {curve.ece:.3f})")
    ax.set(xlabel="predicted P(fake)", ylabel="observed share of FAKE", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
