"""The deepfake-detection field's metrics, in plain numpy: AUC, AP, EER, threshold metrics, video aggregation.

Conventions: ``labels`` are 1 for FAKE and 0 for REAL, ``scores`` are P(fake) in [0, 1], and a sample is
called FAKE when ``score >= threshold``.

* :func:`roc_auc` is the Mann-Whitney statistic with ties counted half, equal to scikit-learn's
  ``roc_auc_score``. :func:`average_precision` is the step-wise (non-interpolated) area under the
  precision-recall curve, equal to scikit-learn's ``average_precision_score``.
* :func:`equal_error_rate` is where the ROC curve, linearly interpolated between its points, meets the line
  FPR = FNR (the same value as the common ``brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1)``); its
  threshold is that of the ROC point closest to the crossing.
* :func:`best_threshold` picks the decision threshold on *validation* scores. The default criterion is
  **balanced accuracy** (mean of TPR and TNR, equivalently Youden's J), because validation sets in this
  field are often unbalanced and accuracy or F1 would then favour the majority class. The threshold is
  placed half-way between the chosen score and the next lower distinct score, so that it keeps a margin on
  both sides instead of sitting on a validation sample.
* Video-level scores aggregate frame scores per video: ``"mean"`` (default) or ``"confident"``, the strategy
  of the DFDC winner (selimsef, ``confident_strategy``): if more than ``n // 2.5`` and more than 11 frames
  score above 0.8, the mean of those; else if more than 90% of the frames score below 0.2, the mean of those;
  else the plain mean.

Metrics that need both classes (AUC, AP, EER) are ``None`` when a set holds only one class.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from fakelens.constants import AGGREGATIONS, THRESHOLD_CRITERIA  # re-exported: fakelens.metrics.AGGREGATIONS
from fakelens.errors import InvalidArgument


def _as_arrays(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y, s


def _has_both_classes(y: np.ndarray) -> bool:
    return bool(y.size) and 0 < int(y.sum()) < y.size


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (as scipy.stats.rankdata does)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start of each run of equal values; every member of a run gets the run's mean rank.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(labels, scores) -> float | None:
    """Area under the ROC curve (probability that a random fake outscores a random real, ties = 1/2)."""
    y, s = _as_arrays(labels, scores)
    if not _has_both_classes(y):
        return None
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    rank_sum = _ranks(s)[y == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _cumulative_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives when thresholding at each distinct score, highest score first."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_value = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), y.size - 1]
    tps = np.cumsum(y_sorted)[last_of_value]
    fps = (last_of_value + 1) - tps
    return tps.astype(np.float64), fps.astype(np.float64), s_sorted[last_of_value]


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``, starting at (0, 0) with threshold +inf, one point per distinct score."""
    y, s = _as_arrays(labels, scores)
    if not _has_both_classes(y):
        raise ValueError("the ROC curve needs both real and fake samples")
    tps, fps, thresholds = _cumulative_counts(y, s)
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return fpr, tpr, np.r_[np.inf, thresholds]


def precision_recall_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)`` with thresholds in decreasing order, one point per distinct score."""
    y, s = _as_arrays(labels, scores)
    if not _has_both_classes(y):
        raise ValueError("the precision-recall curve needs both real and fake samples")
    tps, fps, thresholds = _cumulative_counts(y, s)
    return tps / (tps + fps), tps / tps[-1], thresholds


def average_precision(labels, scores) -> float | None:
    """Average precision: sum over thresholds of (R_n - R_{n-1}) * P_n, as scikit-learn computes it."""
    y, s = _as_arrays(labels, scores)
    if not _has_both_classes(y):
        return None
    precision, recall, _ = precision_recall_curve(y, s)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def equal_error_rate(labels, scores) -> tuple[float | None, float | None]:
    """``(eer, threshold)``: the error rate where FPR equals FNR, and the threshold closest to it."""
    y, s = _as_arrays(labels, scores)
    if not _has_both_classes(y):
        return None, None
    fpr, tpr, thresholds = roc_curve(y, s)
    gap = (1.0 - tpr) - fpr  # FNR - FPR: +1 at the first point, -1 at the last, never increasing
    i = int(np.flatnonzero(gap <= 0)[0])  # first point at or past the crossing (i >= 1)
    a, b = gap[i - 1], gap[i]
    t = a / (a - b)  # fraction of the way from point i-1 to point i where the gap is zero
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    j = i if abs(b) <= abs(a) else i - 1
    threshold = thresholds[j]
    if not np.isfinite(threshold):  # the crossing is at the (0, 0) end: no sample is called fake
        threshold = float(s.max()) + 1e-6
    return float(eer), float(threshold)


@dataclass
class ThresholdMetrics:
    """Counts and rates when calling FAKE every score ``>= threshold``.

    ``confusion`` is ``[[tn, fp], [fn, tp]]``: rows are the true class (real, fake), columns the prediction,
    as scikit-learn's ``confusion_matrix(labels, predictions, labels=[0, 1])`` lays it out.
    Rates with an empty denominator are ``None``.
    """

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: float | None
    balanced_accuracy: float | None
    precision: float | None
    recall: float | None
    specificity: float | None
    f1: float | None
    confusion: list[list[int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def threshold_metrics(labels, scores, threshold: float = 0.5) -> ThresholdMetrics:
    """Accuracy, balanced accuracy, precision, recall (TPR), specificity (TNR), F1 and confusion matrix."""
    y, s = _as_arrays(labels, scores)
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    tn = int(np.sum(~pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    precision = _ratio(tp, tp + fp)
    rates = [r for r in (recall, specificity) if r is not None]
    return ThresholdMetrics(
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        accuracy=_ratio(tp + tn, y.size),
        balanced_accuracy=float(np.mean(rates)) if rates else None,
        precision=precision,
        recall=recall,
        specificity=specificity,
        # F1 = 2 TP / (2 TP + FP + FN): defined (as 0) even when precision is undefined.
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        confusion=[[tn, fp], [fn, tp]],
    )


def best_threshold(labels, scores, criterion: str = "balanced_accuracy") -> float:
    """The threshold on P(fake) that maximises ``criterion`` (``"balanced_accuracy"`` or ``"f1"``) on these scores.

    Meant for validation scores only. Returns 0.5 when the set does not hold both classes.
    Among equally good thresholds the highest is taken (fewest FAKE calls); the value returned lies half-way
    between the chosen score and the next lower distinct score (just below the chosen score when it is the
    lowest), so the validation predictions are those of the chosen score with a margin on both sides.
    """
    if criterion not in THRESHOLD_CRITERIA:
        raise InvalidArgument(f"criterion must be one of {', '.join(THRESHOLD_CRITERIA)}, got {criterion!r}")
    y, s = _as_arrays(labels, scores)
    if not _has_both_classes(y):
        return 0.5
    tps, fps, thresholds = _cumulative_counts(y, s)
    n_pos, n_neg = tps[-1], fps[-1]
    if criterion == "balanced_accuracy":
        value = 0.5 * (tps / n_pos + (n_neg - fps) / n_neg)
    else:
        value = 2 * tps / (2 * tps + fps + (n_pos - tps))
    k = int(np.argmax(value))  # first maximum = highest threshold among ties
    lower = thresholds[k + 1] if k + 1 < thresholds.size else max(0.0, thresholds[k] - 1e-3)
    return float((thresholds[k] + lower) / 2.0)


@dataclass
class BinaryMetrics:
    """Every figure reported for one set of samples (frames or videos), with how many stand behind it."""

    n: int
    n_real: int
    n_fake: int
    auc: float | None
    ap: float | None
    eer: float | None
    eer_threshold: float | None
    at_threshold: ThresholdMetrics

    def to_dict(self) -> dict:
        out = asdict(self)
        out["at_threshold"] = self.at_threshold.to_dict()
        return out


def binary_metrics(labels, scores, threshold: float = 0.5) -> BinaryMetrics:
    """AUC, AP, EER and the threshold metrics of one set of labelled scores."""
    y, s = _as_arrays(labels, scores)
    eer, eer_threshold = equal_error_rate(y, s)
    return BinaryMetrics(
        n=int(y.size),
        n_real=int(np.sum(y == 0)),
        n_fake=int(np.sum(y == 1)),
        auc=roc_auc(y, s),
        ap=average_precision(y, s),
        eer=eer,
        eer_threshold=eer_threshold,
        at_threshold=threshold_metrics(y, s, threshold),
    )


# --------------------------------------------------------------------------- video-level aggregation


def mean_strategy(pred: np.ndarray) -> float:
    """Mean of the frame scores."""
    return float(np.mean(pred))


def confident_strategy(pred: np.ndarray, t: float = 0.8) -> float:
    """The DFDC winner's aggregation (selimsef/dfdc_deepfake_challenge, ``kernel_utils.confident_strategy``)."""
    pred = np.asarray(pred, dtype=np.float64)
    sz = len(pred)
    fakes = np.count_nonzero(pred > t)
    # 11 frames is the winner's own constant: with 32 frames a video needs a third of them confidently fake.
    if fakes > sz // 2.5 and fakes > 11:
        return float(np.mean(pred[pred > t]))
    elif np.count_nonzero(pred < 0.2) > 0.9 * sz:
        return float(np.mean(pred[pred < 0.2]))
    else:
        return float(np.mean(pred))


STRATEGIES: dict[str, Callable[[np.ndarray], float]] = {"mean": mean_strategy, "confident": confident_strategy}


@dataclass
class VideoScores:
    """One aggregated score per video, in order of first appearance."""

    videos: list[str]
    scores: np.ndarray
    labels: np.ndarray
    n_frames: np.ndarray

    def to_dict(self) -> dict:
        return {
            "videos": list(self.videos),
            "scores": [float(v) for v in self.scores],
            "labels": [int(v) for v in self.labels],
            "n_frames": [int(v) for v in self.n_frames],
        }


def aggregate_videos(videos: Sequence[str], scores, labels, strategy: str = "mean") -> VideoScores:
    """Group frame scores by video id and aggregate each group with ``strategy`` (``"mean"`` or ``"confident"``).

    Every frame of a video must carry the same label; a video with mixed labels raises ``ValueError``.
    """
    if strategy not in STRATEGIES:
        raise InvalidArgument(f"aggregate must be one of {', '.join(AGGREGATIONS)}, got {strategy!r}")
    y, s = _as_arrays(labels, scores)
    if len(videos) != y.size:
        raise ValueError(f"videos ({len(videos)}) and scores ({y.size}) differ in length")
    groups: dict[str, list[int]] = {}
    for i, video in enumerate(videos):
        groups.setdefault(str(video), []).append(i)
    names, agg, lab, counts = [], [], [], []
    fn = STRATEGIES[strategy]
    for name, idx in groups.items():
        video_labels = np.unique(y[idx])
        if video_labels.size != 1:
            raise ValueError(f"video {name!r} has frames labelled both real and fake")
        names.append(name)
        agg.append(fn(s[idx]))
        lab.append(int(video_labels[0]))
        counts.append(len(idx))
    return VideoScores(names, np.asarray(agg, dtype=np.float64), np.asarray(lab, dtype=np.int64), np.asarray(counts))


def json_safe(value):
    """Replace NaN/inf floats (not valid JSON) by ``None``, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value
