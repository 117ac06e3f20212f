"""Faithfulness: ROAD (Rong et al., 2022, "remove and debias") for each method against random maps.

Pixels are removed in relevance order and in-filled by noisy linear imputation, at several percentiles;
a faithful map's most relevant pixels move the target logit more than its least relevant ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from fakelens.constants import CAM_METHODS
from fakelens.explain.core import Explainer, ExplainError, LogitTarget, _model_device, _preserved, _to_batch
from fakelens.model import INPUT_SIZE

#: ROAD percentiles used by default: 4 points keep the in-filling cost (a sparse solve per crop,
#: percentile and ordering) affordable on a CPU; pytorch_grad_cam's own default is 10..90 in steps of 10.
DEFAULT_ROAD_PERCENTILES = (20, 40, 60, 80)
#: Spatial resolution of the random baseline maps: the CAM's own (7 x 7 for a 224 crop), so that the
#: baseline differs from a CAM only in *where* relevance is, not in how smooth it is.
RANDOM_MAP_GRID = 7
#: Crops per ROAD forward pass (:func:`road_scores`' default).
ROAD_BATCH_SIZE = 32


def random_maps(count: int, size: int = INPUT_SIZE, grid: int = RANDOM_MAP_GRID, seed: int = 0) -> np.ndarray:
    """(count, size, size) float32 random relevance maps in [0, 1]: uniform noise on a ``grid`` x ``grid``
    lattice, upsampled bilinearly like a CAM. The baseline every method must beat."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((count, grid, grid)).astype(np.float32)
    maps = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR) for c in coarse])
    low = maps.reshape(count, -1).min(axis=1)[:, None, None]
    high = maps.reshape(count, -1).max(axis=1)[:, None, None]
    return ((maps - low) / (high - low + 1e-7)).astype(np.float32)


def _break_ties(maps: np.ndarray, seed: int) -> np.ndarray:
    """Add a 1e-4-scale smooth random field. ROAD thresholds maps at percentiles; a Grad-CAM map is often
    exactly 0 over much of the crop, and with ties a "remove 20%" step could remove 60%. The field is
    the same kind as the random baseline's, so ties are broken without favouring any method."""
    return (maps + 1e-4 * random_maps(len(maps), maps.shape[-1], seed=seed + 7919)).astype(np.float32)


def _road_metrics():
    """ROAD's MoRF and LeRF metrics from pytorch_grad_cam, with its noisy linear imputer assembled faster.

    The library builds the imputation system in a ``lil_matrix``, which takes as long as solving it;
    :class:`FastNoisyLinearImputer` builds the *same* matrix in COO form and solves it with the same
    ``spsolve``, so results are identical (``tests/test_explain.py`` checks this) at ~1.5x the speed.
    """
    from pytorch_grad_cam.metrics.perturbation_confidence import (
        PerturbationConfidenceMetric,
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    class FastNoisyLinearImputer(NoisyLinearImputer):
        @staticmethod
        def setup_sparse_system(mask, img, neighbors_weights):
            mask_flat = mask.flatten()
            image_flat = img.reshape((img.shape[0], -1))
            missing = np.flatnonzero(mask_flat == 0)
            variable = np.zeros(len(mask_flat), dtype=int)
            variable[missing] = np.arange(len(missing))
            count = len(missing)
            rhs = np.zeros((count, img.shape[0]))
            weight_sum = np.ones(count)
            rows, cols, values = [np.arange(count)], [np.arange(count)], []
            for offset, weight in neighbors_weights:
                valid, coords = NoisyLinearImputer.add_offset_to_indices(missing, offset, mask.shape)
                valid_coords, valid_ids = coords[valid], np.flatnonzero(valid)
                known = mask_flat[valid_coords] > 0.5
                rhs[valid_ids[known], :] -= weight * image_flat[:, valid_coords[known]].T
                unknown = mask_flat[valid_coords] < 0.5
                rows.append(valid_ids[unknown])
                cols.append(variable[valid_coords[unknown]])
                values.append(np.full(int(unknown.sum()), weight))
                weight_sum[~valid] -= weight
            values.insert(0, -weight_sum)
            matrix = coo_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(count, count)).tocsc()
            return matrix, rhs

        def __call__(self, img, mask):
            image_flat = img.reshape(img.shape[0], -1)
            missing = np.argwhere(mask.reshape(-1) == 0).flatten()
            matrix, rhs = self.setup_sparse_system(mask.numpy(), img.numpy(), self.weighting)
            solution = torch.tensor(spsolve(matrix, rhs), dtype=torch.float)
            filled = image_flat.clone()
            filled[:, missing] = solution.t() + self.noise * torch.randn_like(solution.t())
            return filled.reshape_as(img)

    def most_relevant_first(percentile):
        return PerturbationConfidenceMetric(RemoveMostRelevantFirst(percentile, FastNoisyLinearImputer()))

    def least_relevant_first(percentile):
        return PerturbationConfidenceMetric(RemoveLeastRelevantFirst(percentile, FastNoisyLinearImputer()))

    return most_relevant_first, least_relevant_first


def road_steps(count: int, percentiles: Sequence[int], batch_size: int = ROAD_BATCH_SIZE) -> int:
    """Progress steps of one :func:`road_scores` call on ``count`` crops: one per percentile and batch."""
    return len(percentiles) * math.ceil(count / batch_size)


def road_scores(
    model: nn.Module,
    crops: Any,
    heatmaps: np.ndarray,
    targets: Sequence[str],
    percentiles: Sequence[int] = DEFAULT_ROAD_PERCENTILES,
    seed: int = 0,
    batch_size: int = ROAD_BATCH_SIZE,
    bar: Any = None,
    break_ties: bool = True,
) -> dict[str, np.ndarray]:
    """ROAD per crop: ``morf`` and ``lerf`` (mean change of the target logit when the most / least
    relevant pixels are in-filled, over ``percentiles``) and ``combined`` = (lerf - morf) / 2, as
    ``pytorch_grad_cam.metrics.road.ROADCombined`` computes it. Higher combined = more faithful.

    ``targets`` are "fake"/"real" per crop (an :class:`Explanation`'s). The imputation noise is seeded
    with ``seed`` (default 0) so that several maps on the same crops are compared on the same noise.
    ``bar`` (default None) is a tqdm bar advanced once per percentile and batch (:func:`road_steps` in
    all). ``break_ties``
    (default True) adds a 1e-4 smooth random field first, so that percentiles remove what they say.
    """
    most_relevant_first, least_relevant_first = _road_metrics()
    inputs = _to_batch(crops)
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.shape != (inputs.shape[0], *inputs.shape[2:]):
        raise ExplainError(f"heatmaps of shape {heatmaps.shape} do not match crops {tuple(inputs.shape)}")
    if len(targets) != len(inputs):
        raise ExplainError("one target per crop is needed")
    signs = [1 if str(t) == "fake" else -1 for t in targets]
    maps = _break_ties(heatmaps, seed) if break_ties else heatmaps
    device = _model_device(model)
    morf = np.zeros((len(percentiles), len(inputs)), np.float32)
    lerf = np.zeros_like(morf)
    with _preserved(model), torch.no_grad(), torch.random.fork_rng(devices=[]):
        for p_index, percentile in enumerate(percentiles):
            for start in range(0, len(inputs), batch_size):
                stop = start + batch_size
                batch = inputs[start:stop].to(device)
                batch_targets = [LogitTarget(s) for s in signs[start:stop]]
                for make_metric, out in ((most_relevant_first, morf), (least_relevant_first, lerf)):
                    torch.manual_seed(seed * 1000 + p_index * 100 + start)
                    out[p_index, start:stop] = make_metric(percentile)(batch, maps[start:stop], batch_targets, model)
                if bar is not None:
                    bar.update(1)
    morf_mean, lerf_mean = morf.mean(axis=0), lerf.mean(axis=0)
    return {"morf": morf_mean, "lerf": lerf_mean, "combined": (lerf_mean - morf_mean) / 2.0}


@dataclass
class FaithfulnessRow:
    """ROAD combined score of one method (mean and sd over crops), paired against the random baseline."""

    method: str
    mean: float
    sd: float
    morf: float
    lerf: float
    delta_vs_random: float
    delta_sd: float
    win_rate: float
    p_value: float | None
    n: int

    def to_dict(self) -> dict:
        return {k: (None if v is None else (round(v, 6) if isinstance(v, float) else v)) for k, v in self.__dict__.items()}


@dataclass
class FaithfulnessReport:
    """ROAD results for several methods on the same crops, with the random-map baseline as a row."""

    rows: list[FaithfulnessRow]
    percentiles: list[int]
    target: str
    seed: int
    n: int
    per_crop: dict[str, list[float]] = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "metric": "ROAD combined = (LeRF - MoRF) / 2, change of the target logit; higher is more faithful",
            "percentiles": list(self.percentiles),
            "target": self.target,
            "seed": self.seed,
            "n": self.n,
            "rows": [row.to_dict() for row in self.rows],
            "per_crop": {k: [round(float(v), 6) for v in vs] for k, vs in self.per_crop.items()},
        }

    def format_table(self) -> str:
        """The table as plain text, one row per method."""
        header = f"{'method':<11} {'ROAD combined (mean ± sd)':>27} {'MoRF':>8} {'LeRF':>8} {'vs random (Δ ± sd)':>20} {'wins':>6} {'p':>8} {'n':>4}"
        lines = [header, "-" * len(header)]
        for row in self.rows:
            if row.method == "random":
                versus, wins, p = "—", "", ""
            else:
                versus = f"{row.delta_vs_random:+.3f} ± {row.delta_sd:.3f}"
                wins = f"{row.win_rate:.0%}"
                p = "" if row.p_value is None else f"{row.p_value:.2g}"
            score = f"{row.mean:+.3f} ± {row.sd:.3f}"
            lines.append(f"{row.method:<11} {score:>27} {row.morf:>+8.3f} {row.lerf:>+8.3f} {versus:>20} {wins:>6} {p:>8} {row.n:>4}")
        lines.append(f"ROAD percentiles {list(self.percentiles)}; target: {self.target}; logit units; higher = more faithful")
        return "\n".join(lines)


def evaluate_faithfulness(
    model: nn.Module,
    crops: Any,
    methods: Sequence[str] = tuple(CAM_METHODS),
    target: str = "predicted",
    percentiles: Sequence[int] = DEFAULT_ROAD_PERCENTILES,
    threshold: float = 0.5,
    seed: int = 0,
    progress: bool = False,
) -> FaithfulnessReport:
    """ROAD for each method and for random maps on the same crops (paired: same targets, same noise).

    Defaults: all four methods, the predicted class as target, percentiles 20/40/60/80, seed 0. The
    p-value is a two-sided Wilcoxon signed-rank test of method vs random over crops (None when n < 6).
    """
    inputs = _to_batch(crops)
    names = [Explainer.resolve_method(m) for m in methods]
    maps: dict[str, np.ndarray] = {}
    targets: list[str] | None = None
    for name in names:
        explanation = Explainer(model, method=name, threshold=threshold).explanation(inputs, target, progress)
        maps[name] = explanation.heatmaps
        targets = targets or explanation.targets
    if targets is None:  # no methods: still score the random baseline against the predicted class
        targets = Explainer(model, method="eigencam", threshold=threshold).explanation(inputs, target).targets
    maps["random"] = random_maps(len(inputs), inputs.shape[-1], seed=seed)
    results: dict[str, dict[str, np.ndarray]] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(maps) * road_steps(len(inputs), percentiles, ROAD_BATCH_SIZE), desc="ROAD", unit="step")
    try:
        for name, heatmaps in maps.items():
            results[name] = road_scores(model, inputs, heatmaps, targets, percentiles, seed, ROAD_BATCH_SIZE, bar=bar)
    finally:
        if bar is not None:
            bar.close()
    baseline = results["random"]["combined"]
    rows = []
    for name, scores in results.items():
        combined = scores["combined"]
        delta = combined - baseline
        p_value = None
        if name != "random" and len(combined) >= 6 and np.any(delta != 0):
            from scipy.stats import wilcoxon

            p_value = float(wilcoxon(combined, baseline).pvalue)
        rows.append(
            FaithfulnessRow(
                method=name,
                mean=float(combined.mean()),
                sd=float(combined.std(ddof=1)) if len(combined) > 1 else 0.0,
                morf=float(scores["morf"].mean()),
                lerf=float(scores["lerf"].mean()),
                delta_vs_random=float(delta.mean()),
                delta_sd=float(delta.std(ddof=1)) if len(delta) > 1 else 0.0,
                win_rate=float((delta > 0).mean()),
                p_value=p_value,
                n=int(len(combined)),
            )
        )
    per_crop = {name: scores["combined"].tolist() for name, scores in results.items()}
    return FaithfulnessReport(rows, [int(p) for p in percentiles], target, seed, len(inputs), per_crop)
