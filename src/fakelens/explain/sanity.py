"""Sanity checks of explanations.

* :func:`randomization_sanity` is the model-randomisation test of Adebayo et al. (2018): maps from a
  model whose weights were re-initialised (top-down cascade or all at once) should *not* look like the
  trained model's maps (low Spearman rank correlation).
* :func:`target_sanity` checks that the REAL and FAKE explanations of the same crops differ.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fakelens.explain.core import DEFAULT_METHOD, Explainer, ExplainError, _model_device, _to_batch


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps' pixels (ties get average ranks); NaN if either is constant."""
    from scipy.stats import rankdata

    ra = rankdata(np.asarray(a, dtype=np.float64).ravel())
    rb = rankdata(np.asarray(b, dtype=np.float64).ravel())
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _paired_spearman(first: np.ndarray, second: np.ndarray) -> tuple[float, float, int]:
    """Mean and sd of :func:`spearman` over paired maps, leaving out (and counting) the NaN of constant maps."""
    rhos = np.array([spearman(a, b) for a, b in zip(first, second)], dtype=np.float64)
    valid = rhos[np.isfinite(rhos)]
    mean = float(valid.mean()) if len(valid) else float("nan")
    sd = float(valid.std(ddof=1)) if len(valid) > 1 else 0.0
    return mean, sd, int((~np.isfinite(rhos)).sum())


def _cascade_stages(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """Top-down groups of layers for cascading randomisation: the head, then each feature block."""
    stages: list[tuple[str, list[nn.Module]]] = []
    head = getattr(model, "head", None)
    if isinstance(head, nn.Module):
        stages.append(("head", [head]))
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        for index in reversed(range(len(features))):
            stages.append((f"features.{index}", [features[index]]))
    if not stages:
        stages.append(("all", [model]))
    return stages


def _reinitialise(modules: Sequence[nn.Module], generator: torch.Generator) -> list[nn.modules.batchnorm._BatchNorm]:
    """Re-initialise weights the way torchvision's MobileNetV2 does at construction (Kaiming-normal
    fan-out convs, N(0, 0.01) linears, unit/zero batch norms). Returns the batch norms touched."""
    norms = []
    with torch.no_grad():
        for root in modules:
            for module in root.modules():
                if isinstance(module, nn.Conv2d):
                    fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1] // module.groups
                    module.weight.normal_(0.0, math.sqrt(2.0 / fan_out), generator=generator)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.Linear):
                    module.weight.normal_(0.0, 0.01, generator=generator)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.reset_parameters()
                    norms.append(module)
    return norms


def _recalibrate(model: nn.Module, norms: list, inputs: torch.Tensor) -> None:
    """Re-estimate the running statistics of re-initialised batch norms on the crops themselves.

    Running statistics are data statistics, not learnt weights; leaving the trained ones under random
    convolutions (or resetting them to 0/1) makes activations explode or vanish, and the "randomised"
    maps then measure numerical collapse rather than the model."""
    if not norms:
        return
    momenta = [n.momentum for n in norms]
    for n in norms:
        n.reset_running_stats()
        n.momentum = None  # cumulative average over the passes below
        n.train()
    with torch.no_grad():
        for start in range(0, len(inputs), 32):
            model(inputs[start : start + 32])
    for n, momentum in zip(norms, momenta):
        n.momentum = momentum
        n.eval()


def randomized_model(model: nn.Module, layers: str | Sequence[str] = "all", crops: Any = None, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with the named stages re-initialised ("all" = every weight; otherwise stage
    names from the cascade: "head", "features.18", ...). With ``crops`` the re-initialised batch norms
    get their statistics from them (recommended, see :func:`randomization_sanity`)."""
    randomised = copy.deepcopy(model).eval()
    generator = torch.Generator().manual_seed(seed)
    if isinstance(layers, str) and layers == "all":
        modules = [randomised]
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
        modules = []
        for name in names:
            try:
                modules.append(randomised.get_submodule(name))
            except AttributeError:
                raise ExplainError(f"the model has no layer named {name!r}") from None
    norms = _reinitialise(modules, generator)
    if crops is not None:
        _recalibrate(randomised, norms, _to_batch(crops).to(_model_device(randomised)))
    return randomised


@dataclass
class SanityStage:
    """Spearman correlation between the trained model's maps and those after randomising up to ``layers``."""

    layers: str
    spearman_mean: float
    spearman_sd: float
    n_constant: int

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class SanityResult:
    """Model-randomisation test (Adebayo et al., 2018) for one method.

    ``stages`` go from the least to the most randomised model. A trustworthy method's correlation falls
    towards 0 as layers are randomised; a method that stays high is explaining the input (edges,
    the face's shape), not the model. Maps that became constant count in ``n_constant``.
    """

    method: str
    mode: str
    target: str
    n: int
    stages: list[SanityStage]

    def to_dict(self) -> dict:
        return {"method": self.method, "mode": self.mode, "target": self.target, "n": self.n, "stages": [s.to_dict() for s in self.stages]}

    @property
    def final(self) -> SanityStage:
        """The most randomised stage."""
        return self.stages[-1]


def randomization_sanity(
    model: nn.Module,
    crops: Any,
    method: str = DEFAULT_METHOD,
    mode: str = "cascade",
    target: str = "fake",
    seed: int = 0,
    max_stages: int | None = None,
    progress: bool = False,
) -> SanityResult:
    """Compare maps of the trained ``model`` with maps of copies whose weights were re-initialised.

    ``mode="cascade"`` (default) randomises top-down, the head first, then one MobileNetV2 block more
    per stage; ``mode="full"`` randomises every weight at once. The target is fixed (default "fake")
    so that a flipped prediction does not change what is explained. ``max_stages`` (default None: all
    20 for MobileNetV2) stops the cascade early. The trained model is untouched.
    """
    if mode not in ("cascade", "full"):
        raise ExplainError(f"mode must be 'cascade' or 'full', got {mode!r}")
    if target == "predicted":
        raise ExplainError("use a fixed target ('fake' or 'real') for the randomisation test")
    inputs = _to_batch(crops)
    name = Explainer.resolve_method(method)
    reference = Explainer(model, method=name).explain(inputs, target)
    if mode == "full":
        plan = [("all", "all")]
    else:
        stages = _cascade_stages(model)
        plan = [(stage_name, [n for n, _ in stages[: i + 1]]) for i, (stage_name, _) in enumerate(stages)]
        plan = plan[:max_stages] if max_stages is not None else plan
    if progress:
        from tqdm import tqdm

        plan = tqdm(plan, desc=f"randomise ({name})", unit="stage")
    results = []
    for label, layers in plan:
        randomised = randomized_model(model, layers, crops=inputs, seed=seed)
        maps = Explainer(randomised, method=name).explain(inputs, target)
        mean, sd, n_constant = _paired_spearman(reference, maps)
        results.append(SanityStage(label if mode == "full" else f"{layers[-1]} and above", mean, sd, n_constant))
    return SanityResult(name, mode, target, len(inputs), results)


@dataclass
class TargetSanity:
    """Spearman correlation between each crop's REAL and FAKE maps: near 1 means the map ignores the class."""

    method: str
    spearman_mean: float
    spearman_sd: float
    n: int
    n_constant: int

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def target_sanity(model: nn.Module, crops: Any, method: str = DEFAULT_METHOD) -> TargetSanity:
    """Do the REAL-target and FAKE-target maps of the same crops differ? (Eigen-CAM's never do.)"""
    inputs = _to_batch(crops)
    explainer = Explainer(model, method=method)
    fake = explainer.explain(inputs, "fake")
    real = explainer.explain(inputs, "real")
    mean, sd, n_constant = _paired_spearman(fake, real)
    return TargetSanity(explainer.method, mean, sd, len(inputs), n_constant)
