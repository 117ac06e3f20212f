"""Explanations: which parts of a face crop drove the model's score, and how far to trust that.

Four class-activation-map methods, all on MobileNetV2's last conv block (``model.features[-1]``,
1280 x 7 x 7 for a 224 crop), through the ``grad-cam`` package (``pytorch_grad_cam``):

* ``gradcam`` (Selvaraju et al., 2017): channel weights = spatially averaged gradient of the target.
* ``gradcam++`` (Chattopadhay et al., 2018): higher-order weights, better with several evidence regions.
* ``scorecam`` (Wang et al., 2020): gradient-free and class specific; each channel's upsampled map masks
  the input and its weight is the target score that masked input earns. Full Score-CAM costs one
  forward pass per channel (1280 per crop), so by default only the ``max_channels`` (64) channels
  with the most spatial variance are scored ("Faster Score-CAM"); ``max_channels=None`` scores all.
  On DFDC crops the 64-channel maps keep a Spearman correlation of 0.97 with 256-channel maps (0.99 for
  128 channels, 0.96 for 32) at a quarter of the cost.
* ``eigencam`` (Muhammad & Yeasin, 2020): the first principal component of the activations. Cheap (one
  forward pass) but *class agnostic*: it ignores the head and the target, so its map is the same for
  REAL and FAKE. It is offered as a quick view of "what the backbone looks at", not as evidence.

Score-CAM is the gradient-free method we recommend: it depends on the target and the head, and scored
best on ROAD. Measured on the bundled model (32 validation crops, ``fakelens explain --evaluate``; 96
for Grad-CAM: +0.16 logit over random maps, better on 77% of crops, p < 1e-6), every method beats
random maps on ROAD and changes when the weights are randomised, but only Grad-CAM gives
clearly different maps for REAL and FAKE (Spearman -0.5); Grad-CAM++ (0.88) and Score-CAM (0.97) are
nearly class-insensitive there, because their weights are all positive (Score-CAM's softmax is almost
flat when masked inputs move the logit little), and Eigen-CAM (1.0) is class-agnostic by construction.
Hence Grad-CAM is the default.

The model gives one logit, positive = FAKE. The target explained is the logit itself for "fake" and
its negation for "real"; "predicted" picks per crop the class the model chose at ``threshold``.

Trust is measured, not assumed:

* :func:`evaluate_faithfulness` runs ROAD (Rong et al., 2022, "remove and debias": pixels are
  removed in relevance order and in-filled by noisy linear imputation) at several percentiles for each
  method and for a random-map baseline on the same crops.
* :func:`randomization_sanity` is the model-randomisation test of Adebayo et al. (2018): maps from a
  model whose weights were re-initialised (top-down cascade or all at once) should *not* look like the
  trained model's maps (low Spearman rank correlation). :func:`target_sanity` checks that the REAL and
  FAKE explanations differ.

Explaining never changes the model: hooks are removed, training/eval mode, ``requires_grad`` flags
and any accumulated ``.grad`` are restored, even on error. Explanations in one process are serialised
by a lock; other threads must not run the *same* model while one is computed, since the hooks would
see their forward passes too (the Detector's default ONNX backend does not share it).
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from fakelens import atomic
from fakelens.errors import FakelensError
from fakelens.model import INPUT_SIZE, preprocess_crops

log = logging.getLogger(__name__)

#: Method used when none is named.
DEFAULT_METHOD = "gradcam"
#: Targets :meth:`Explainer.explain` accepts.
TARGETS = ("predicted", "fake", "real")
#: ROAD percentiles used by default: 4 points keep the in-filling cost (a sparse solve per crop,
#: percentile and ordering) affordable on a CPU; pytorch_grad_cam's own default is 10..90 in steps of 10.
DEFAULT_ROAD_PERCENTILES = (20, 40, 60, 80)
#: Spatial resolution of the random baseline maps: the CAM's own (7 x 7 for a 224 crop), so that the
#: baseline differs from a CAM only in *where* relevance is, not in how smooth it is.
RANDOM_MAP_GRID = 7


#: Explanations in one process run one at a time: each one switches the model to eval mode and back and
#: hooks its target layer, which two overlapping calls on a shared model would undo for each other.
_LOCK = threading.RLock()


class ExplainError(FakelensError):
    """Bad input to an explanation: unknown method or target, crops of the wrong shape or type."""


# --------------------------------------------------------------------------- targets


class LogitTarget:
    """pytorch_grad_cam target for the single-logit model: ``sign * logit``.

    ``sign`` is +1 to explain FAKE and -1 for REAL. With ``sign=None`` the first output seen decides it
    (FAKE when sigmoid(logit) >= ``threshold``), which is how "predicted" is resolved in the same
    forward pass that records the activations; later calls (Score-CAM's masked inputs) keep that sign.
    """

    def __init__(self, sign: int | None = None, threshold: float = 0.5):
        self.sign = sign
        self.threshold = threshold

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        if self.sign is None:
            probability = torch.sigmoid(model_output.detach().float()).reshape(-1)[0].item()
            self.sign = 1 if probability >= self.threshold else -1
        return model_output * self.sign

    @property
    def name(self) -> str:
        return "fake" if self.sign == 1 else "real"


def _make_targets(target: str, count: int, threshold: float) -> list[LogitTarget]:
    if target not in TARGETS:
        raise ExplainError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    sign = {"fake": 1, "real": -1, "predicted": None}[target]
    return [LogitTarget(sign, threshold) for _ in range(count)]


# --------------------------------------------------------------------------- CAM back-ends


def _scale_to_peak(maps: np.ndarray) -> np.ndarray:
    """Each map min-max scaled to [0, 1] by its own range, whatever its magnitude; a flat map gives zeros.

    pytorch_grad_cam's ``scale_cam_image`` divides by ``max + 1e-7``: an absolute epsilon, so a map whose
    raw values are small (1e-11 on a randomly initialised backbone) peaks at max / (max + 1e-7), far
    below 1. Dividing by the range itself keeps the contract that every map with any positive evidence
    peaks at exactly 1 and that an all-zero map means none.
    """
    maps = np.asarray(maps, dtype=np.float64)
    flat = maps.reshape(len(maps), -1)
    low = flat.min(axis=1)
    span = flat.max(axis=1) - low
    shape = (-1,) + (1,) * (maps.ndim - 1)
    safe = np.where(span > 0, span, 1.0).reshape(shape)
    scaled = np.where(span.reshape(shape) > 0, (maps - low.reshape(shape)) / safe, 0.0)
    return scaled.astype(np.float32)


@functools.lru_cache(maxsize=None)
def _cam_classes():
    """pytorch_grad_cam classes, imported lazily (the package pulls in ttach, scipy and sklearn).

    Each is wrapped in ``PeakScaled``: pytorch_grad_cam scales each map (ReLU, then min-max with an
    absolute 1e-7 epsilon), resizes it to the input and scales it again. Here the raw map is brought to a
    peak of 1 first, so its epsilon is negligible whatever the map's magnitude, and the final scaling,
    after the resize, divides by the map's own range (:func:`_scale_to_peak`).
    """
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, ScoreCAM

    class PeakScaled:
        def get_cam_image(self, *args, **kwargs):
            cam = np.maximum(np.nan_to_num(np.asarray(super().get_cam_image(*args, **kwargs), dtype=np.float64)), 0.0)
            return _scale_to_peak(cam)

        def aggregate_multi_layers(self, cam_per_target_layer):
            stacked = np.maximum(np.concatenate(cam_per_target_layer, axis=1), 0.0)
            return _scale_to_peak(np.mean(stacked, axis=1))

    class TopChannelScoreCAM(ScoreCAM):
        """Score-CAM scoring only the ``max_channels`` activation maps with the most spatial variance.

        A channel whose map is (nearly) constant masks the input uniformly and says nothing about
        *where* the evidence is, so ranking by variance keeps the informative channels; the others
        get weight 0. ``max_channels=None`` is the original Score-CAM.
        """

        def __init__(self, model, target_layers, max_channels: int | None = 64, batch_size: int = 32):
            super().__init__(model, target_layers)
            self.max_channels = max_channels
            self.batch_size = batch_size

        def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads):
            # Resolve "predicted" on the clean outputs before any masked input reaches a target.
            for target, output in zip(targets, self.outputs):
                target(output)
            acts = torch.from_numpy(activations).to(self.device)
            count, channels = acts.shape[:2]
            keep = channels if self.max_channels is None else min(self.max_channels, channels)
            weights = np.zeros((count, channels), dtype=np.float32)
            with torch.no_grad():
                for i in range(count):
                    chosen = torch.topk(acts[i].flatten(1).var(dim=1), keep).indices
                    masks = nn.functional.interpolate(
                        acts[i, chosen][None], size=input_tensor.shape[-2:], mode="bilinear", align_corners=False
                    )[0]
                    low = masks.flatten(1).min(dim=1).values[:, None, None]
                    high = masks.flatten(1).max(dim=1).values[:, None, None]
                    masks = (masks - low) / (high - low + 1e-8)
                    scores = []
                    for start in range(0, keep, self.batch_size):
                        masked = input_tensor[i][None] * masks[start : start + self.batch_size, None]
                        scores.append(targets[i](self.model(masked)).float().cpu())
                    weights[i, chosen.cpu().numpy()] = torch.softmax(torch.cat(scores), dim=0).numpy()
            return weights

    class SignedEigenCAM(EigenCAM):
        """Eigen-CAM with the SVD's arbitrary sign fixed: the map must correlate positively with the mean
        activation, otherwise half the crops would show the background as "most relevant"."""

        def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
            projections = []
            for activation in np.nan_to_num(activations):
                # (locations, channels), centred per channel as pytorch_grad_cam's get_2d_projection does.
                # Its projection on the first right singular vector equals s1 * u1, the top eigenvector of
                # the small (locations x locations) Gram matrix scaled by its root eigenvalue: same map,
                # without an SVD of a 49 x 1280 matrix (~100x slower through LAPACK on a busy CPU).
                points = activation.reshape(activation.shape[0], -1).T.astype(np.float64)
                points = points - points.mean(axis=0)
                values, vectors = np.linalg.eigh(points @ points.T)
                projection = vectors[:, -1] * np.sqrt(max(values[-1], 0.0))
                mean_activation = activation.mean(axis=0).ravel()
                if float(projection @ (mean_activation - mean_activation.mean())) < 0:
                    projection = -projection
                projections.append(projection.reshape(activation.shape[1:]))
            return np.float32(projections)

    bases = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": TopChannelScoreCAM, "eigencam": SignedEigenCAM}
    return {name: type(f"PeakScaled{base.__name__}", (PeakScaled, base), {}) for name, base in bases.items()}


# --------------------------------------------------------------------------- inputs


def _to_batch(crops: Any) -> torch.Tensor:
    """uint8 (N, 224, 224, 3) / (224, 224, 3) RGB crops, a list of them, or an already normalised float
    tensor (N, 3, H, W) -> normalised float tensor (N, 3, H, W)."""
    if isinstance(crops, torch.Tensor):
        tensor = crops.detach()
        if tensor.dtype == torch.uint8:
            return _to_batch(tensor.cpu().numpy())
        if tensor.ndim == 3:
            tensor = tensor[None]
        if tensor.ndim != 4 or tensor.shape[1] != 3 or not tensor.is_floating_point():
            raise ExplainError(f"expected a float tensor (N, 3, H, W), got {tuple(tensor.shape)} {tensor.dtype}")
        if tensor.shape[0] == 0:
            raise ExplainError("no crops to explain")
        if not torch.isfinite(tensor).all():
            raise ExplainError("the input tensor has NaN or infinite values")
        return tensor.float()
    if isinstance(crops, (list, tuple)):
        if not crops:
            raise ExplainError("no crops to explain")
        arrays = [np.asarray(c) for c in crops]
        if any(a.shape != arrays[0].shape for a in arrays):
            raise ExplainError(f"crops differ in shape: {sorted({a.shape for a in arrays})}")
        array = np.stack(arrays)
    else:
        array = np.asarray(crops)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ExplainError(
            f"expected uint8 RGB crops of shape (N, {INPUT_SIZE}, {INPUT_SIZE}, 3), got {array.shape}; "
            "resize face crops to 224x224 first (fakelens.faces does)"
        )
    if array.dtype != np.uint8:
        raise ExplainError(f"expected uint8 crops, got {array.dtype}")
    if array.shape[0] == 0:
        raise ExplainError("no crops to explain")
    return preprocess_crops(array)


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _resolve_layer(model: nn.Module, layer: nn.Module | str | None) -> nn.Module:
    if layer is None:
        features = getattr(model, "features", None)
        if not isinstance(features, nn.Sequential):
            raise ExplainError("the model has no `features` Sequential; pass target_layer explicitly")
        return features[-1]
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError:
            raise ExplainError(f"the model has no layer named {layer!r}") from None
    return layer


def _layer_name(model: nn.Module, layer: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is layer:
            return name
    raise ExplainError("target_layer is not a submodule of the model")


@contextmanager
def _preserved(model: nn.Module) -> Iterator[None]:
    """Run in eval mode and give the model back exactly as it was: mode, requires_grad flags, .grad.

    Holds the module lock for the duration (see ``_LOCK``)."""
    with _LOCK:
        yield from _preserved_unlocked(model)


def _preserved_unlocked(model: nn.Module) -> Iterator[None]:
    was_training = {module: module.training for module in model.modules()}
    parameters = list(model.parameters())
    requires = [p.requires_grad for p in parameters]
    grads = [p.grad for p in parameters]
    model.eval()
    try:
        yield
    finally:
        for module, training in was_training.items():
            module.training = training
        for p, flag, grad in zip(parameters, requires, grads):
            p.requires_grad_(flag)
            p.grad = grad


def _count_hooks(model: nn.Module) -> int:
    """Forward, pre-forward and backward hooks on every submodule (for leak checks)."""
    total = 0
    for module in model.modules():
        for attribute in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            total += len(getattr(module, attribute, {}) or {})
    return total


# --------------------------------------------------------------------------- explainers


@dataclass
class Explanation:
    """Heatmaps for a batch of crops and what they explain.

    ``heatmaps`` is (N, H, W) float32 in [0, 1] (H = W = 224 for crops), 1 = most relevant to the
    target: each map is scaled to its own peak, so its maximum is exactly 1 however small the raw map's
    values are. An all-zero map means no region had positive evidence for that target.
    ``logits`` and ``scores`` (P(fake)) come from the same forward pass; ``targets`` says, per crop,
    whether FAKE or REAL was explained.
    """

    method: str
    heatmaps: np.ndarray = field(repr=False)
    logits: np.ndarray
    scores: np.ndarray
    targets: list[str]

    def to_dict(self) -> dict:
        """JSON-ready summary (heatmaps are left out; each one's peak is given in crop pixels)."""
        peaks = []
        for heatmap in self.heatmaps:
            y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
            peaks.append([int(x), int(y)])
        return {
            "method": self.method,
            "heatmap_shape": list(self.heatmaps.shape),
            "scores": [round(float(s), 6) for s in self.scores],
            "logits": [round(float(v), 6) for v in self.logits],
            "targets": list(self.targets),
            "peaks": peaks,
        }


class Explainer:
    """Class-activation maps for :class:`fakelens.model.DeepfakeClassifier` (or any model with one logit).

    ``Explainer(model, method="gradcam")`` returns the subclass registered for ``method``
    (:class:`GradCAMExplainer`, :class:`GradCAMPlusPlusExplainer`, :class:`ScoreCAMExplainer`,
    :class:`EigenCAMExplainer`); the subclasses can also be built directly.

    Parameters
    ----------
    model : the classifier; it is not modified (see the module notes).
    method : ``"gradcam"`` (default), ``"gradcam++"``, ``"scorecam"`` or ``"eigencam"``.
    device : where to compute (default None: the model's own device). A different device works on a
        copy of the model, so the caller's model never moves.
    target_layer : module or dotted name (default None: ``model.features[-1]``, MobileNetV2's last
        conv block).
    batch_size : crops per forward/backward pass (default 16).
    threshold : P(fake) at which "predicted" counts as FAKE (default 0.5; pass a checkpoint's
        ``info["threshold"]`` to match its verdicts).
    """

    method: ClassVar[str] = ""
    #: Whether the map depends on the target (False for Eigen-CAM).
    class_specific: ClassVar[bool] = True
    uses_gradients: ClassVar[bool] = True
    _registry: ClassVar[dict[str, type["Explainer"]]] = {}
    _aliases: ClassVar[dict[str, str]] = {
        "grad-cam": "gradcam",
        "gradcampp": "gradcam++",
        "gradcamplusplus": "gradcam++",
        "grad-cam++": "gradcam++",
        "score-cam": "scorecam",
        "eigen-cam": "eigencam",
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.method:
            Explainer._registry[cls.method] = cls

    @classmethod
    def methods(cls) -> list[str]:
        """Names of the registered methods, in registration order."""
        return list(cls._registry)

    @classmethod
    def resolve_method(cls, method: str) -> str:
        """Canonical name of ``method`` (case and common spellings forgiven) or :class:`ExplainError`."""
        key = str(method).strip().lower().replace("_", "")
        key = cls._aliases.get(key, key)
        if key not in cls._registry:
            raise ExplainError(f"unknown explanation method {method!r}; choose one of {', '.join(cls._registry)}")
        return key

    def __new__(cls, model: nn.Module | None = None, method: str | None = None, **kwargs):
        if cls is Explainer:
            cls = Explainer._registry[Explainer.resolve_method(method or DEFAULT_METHOD)]
        return super().__new__(cls)

    def __init__(
        self,
        model: nn.Module,
        method: str | None = None,
        device: str | torch.device | None = None,
        target_layer: nn.Module | str | None = None,
        batch_size: int = 16,
        threshold: float = 0.5,
    ):
        if method is not None and self.resolve_method(method) != self.method:
            raise ExplainError(f"{type(self).__name__} computes {self.method!r}, not {method!r}")
        if not isinstance(model, nn.Module):
            raise ExplainError(f"expected a torch model, got {type(model).__name__}")
        if batch_size < 1:
            raise ExplainError("batch_size must be at least 1")
        if not (math.isfinite(threshold) and -1e-6 <= threshold <= 1.0 + 1e-6):
            raise ExplainError(f"threshold must be a probability in [0, 1], got {threshold}")
        layer = _resolve_layer(model, target_layer)
        self.layer_name = _layer_name(model, layer)
        self.device = torch.device(device) if device is not None else _model_device(model)
        if self.device != _model_device(model):
            model = copy.deepcopy(model).to(self.device)
        self.model = model
        self.target_layer = model.get_submodule(self.layer_name)
        self.batch_size = batch_size
        self.threshold = threshold

    def _make_cam(self):
        return _cam_classes()[self.method](model=self.model, target_layers=[self.target_layer])

    def explanation(self, crops: Any, target: str = "predicted", progress: bool = False) -> Explanation:
        """Heatmaps plus the scores and the target explained, for uint8 crops or a normalised tensor."""
        inputs = _to_batch(crops)
        all_targets = _make_targets(target, len(inputs), self.threshold)
        heatmaps, logits = [], []
        starts = range(0, len(inputs), self.batch_size)
        if progress and len(starts) > 1:
            from tqdm import tqdm

            starts = tqdm(starts, desc=f"explain ({self.method})", unit="batch")
        with _preserved(self.model):
            for start in starts:
                batch = inputs[start : start + self.batch_size].to(self.device)
                targets = all_targets[start : start + self.batch_size]
                maps, outputs = self._run_cam(batch, targets)
                for t, output in zip(targets, outputs):
                    t(output)  # resolves "predicted" for methods that never call their targets
                heatmaps.append(maps)
                logits.append(outputs.detach().float().cpu().numpy().reshape(-1))
        heatmap_array = np.clip(np.concatenate(heatmaps).astype(np.float32), 0.0, 1.0)
        logit_array = np.concatenate(logits).astype(np.float32)
        scores = (1.0 / (1.0 + np.exp(-logit_array.astype(np.float64)))).astype(np.float32)
        return Explanation(self.method, heatmap_array, logit_array, scores, [t.name for t in all_targets])

    def explain(self, crops: Any, target: str = "predicted", progress: bool = False) -> np.ndarray:
        """(N, H, W) float32 heatmaps in [0, 1] for ``target`` ("predicted", "fake" or "real")."""
        return self.explanation(crops, target, progress).heatmaps

    def _run_cam(self, batch: torch.Tensor, targets: list[LogitTarget]) -> tuple[np.ndarray, torch.Tensor]:
        # Parameters never need gradients here; with them off, no autograd graph is recorded through the
        # backbone at all (``_preserved`` restores the flags).
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        detach_handle = None
        if self.uses_gradients:
            # Gradient methods need d(target)/d(activation) only. Making the block's output a fresh leaf
            # stops the backward pass there: no gradient through the 17 blocks below (most of the
            # cost), none into the parameters, and no autograd interplay with MobileNetV2's in-place
            # ReLU6. Registered before pytorch_grad_cam's hooks, so they see (and hook) this leaf.
            detach_handle = self.target_layer.register_forward_hook(
                lambda module, args, output: output.detach().requires_grad_(True)
            )
        cam = self._make_cam()
        try:
            # inference_mode(False): callers (Streamlit, predict loops) may run under inference mode.
            with torch.inference_mode(False), torch.set_grad_enabled(self.uses_gradients):
                maps = cam(input_tensor=batch.clone(), targets=targets)
                outputs = cam.outputs.detach()
        finally:
            cam.activations_and_grads.release()
            if detach_handle is not None:
                detach_handle.remove()
        return maps, outputs


class GradCAMExplainer(Explainer):
    """Grad-CAM: ReLU of the activations weighted by their spatially averaged gradients."""

    method = "gradcam"


class GradCAMPlusPlusExplainer(Explainer):
    """Grad-CAM++: positive-gradient weights with per-location coefficients."""

    method = "gradcam++"


class ScoreCAMExplainer(Explainer):
    """Score-CAM (gradient-free): channel weights from the target scores of activation-masked inputs.

    ``max_channels`` (default 64) scores the channels with the most spatial variance only, a 20x
    saving over the full 1280; None scores all of them (the original method).
    """

    method = "scorecam"
    uses_gradients = False

    def __init__(self, model: nn.Module, method: str | None = None, max_channels: int | None = 64, **kwargs):
        super().__init__(model, method, **kwargs)
        if max_channels is not None and max_channels < 1:
            raise ExplainError("max_channels must be at least 1 (or None for all)")
        self.max_channels = max_channels

    def _make_cam(self):
        cls = _cam_classes()["scorecam"]
        return cls(self.model, [self.target_layer], max_channels=self.max_channels, batch_size=max(self.batch_size, 32))


class EigenCAMExplainer(Explainer):
    """Eigen-CAM (gradient-free, class agnostic): first principal component of the activations."""

    method = "eigencam"
    uses_gradients = False
    class_specific = False


def explain_crops(
    model: nn.Module, crops: Any, method: str = DEFAULT_METHOD, target: str = "predicted", **kwargs
) -> Explanation:
    """One-call form: ``Explainer(model, method, **kwargs).explanation(crops, target)``."""
    return Explainer(model, method=method, **kwargs).explanation(crops, target)


# --------------------------------------------------------------------------- rendering


def colorize(heatmap: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 RGB through a matplotlib colormap ("jet", "inferno", ...)."""
    from matplotlib import colormaps

    try:
        cmap = colormaps[colormap]
    except KeyError:
        raise ExplainError(f"unknown colormap {colormap!r}") from None
    table = (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255.0 + 0.5).astype(np.uint8)
    index = (np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return table[index]


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ExplainError(f"alpha must be in [0, 1], got {alpha}")


def _blend(image: np.ndarray, colour: np.ndarray, alpha: float) -> np.ndarray:
    mixed = image.astype(np.float32) * (1.0 - alpha) + colour.astype(np.float32) * alpha
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def overlay(crop: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45, colormap: str = "jet") -> np.ndarray:
    """The heatmap blended over its crop: (H, W, 3) uint8 RGB. ``alpha`` is the heatmap's weight
    (default 0.45, enough to read the colours and still see the face). A heatmap of another size is
    resized to the crop."""
    _check_alpha(alpha)
    crop = np.asarray(crop)
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ExplainError(f"expected an (H, W, 3) uint8 RGB crop, got {crop.shape} {crop.dtype}")
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape != crop.shape[:2]:
        heatmap = cv2.resize(heatmap, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
    return _blend(crop, colorize(heatmap, colormap), alpha)


def crop_to_frame_matrix(face_crop: Any) -> np.ndarray | None:
    """2x3 similarity matrix taking crop pixels to frame pixels, from a ``FaceCrop``'s 5 landmark pairs.

    Needed for landmark-aligned crops (rotated: their square ``crop_box`` is not what they show);
    returns None when the landmarks are missing or degenerate.
    """
    source = np.asarray(getattr(face_crop, "crop_landmarks", ()) or (), dtype=np.float64)
    destination = np.asarray(getattr(face_crop, "landmarks", ()) or (), dtype=np.float64)
    if source.shape != (5, 2) or destination.shape != (5, 2):
        return None
    matrix, _ = cv2.estimateAffinePartial2D(source, destination, method=cv2.LMEDS)
    return matrix


def overlay_on_frame(
    frame: np.ndarray,
    heatmap: np.ndarray,
    crop_box: Sequence[float],
    alpha: float = 0.45,
    colormap: str = "jet",
    face_box: Sequence[float] | None = None,
    matrix: np.ndarray | None = None,
    box_colour: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """The crop's heatmap mapped back onto the full frame: (H, W, 3) uint8 RGB.

    ``crop_box`` (x1, y1, x2, y2, frame pixels) is the square region the crop shows; the heatmap is
    resized to it and clipped at the frame's borders (the box may reach past them). Pixels outside the
    box are left as they are. ``face_box``, if given, is outlined in ``box_colour``. ``matrix`` (2x3,
    crop -> frame, see :func:`crop_to_frame_matrix`) maps aligned, rotated crops exactly instead.
    """
    _check_alpha(alpha)
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ExplainError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
    heatmap = np.asarray(heatmap, dtype=np.float32)
    height, width = frame.shape[:2]
    result = frame.copy()
    if matrix is not None:
        colour = cv2.warpAffine(colorize(heatmap, colormap), np.asarray(matrix, np.float64), (width, height))
        inside = cv2.warpAffine(np.ones(heatmap.shape, np.uint8), np.asarray(matrix, np.float64), (width, height)) > 0
        result[inside] = _blend(frame[inside], colour[inside], alpha)
    else:
        x1, y1, x2, y2 = (int(round(float(v))) for v in crop_box)
        if x2 <= x1 or y2 <= y1:
            raise ExplainError(f"crop box {tuple(crop_box)} is empty")
        fx1, fy1, fx2, fy2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
        if fx2 > fx1 and fy2 > fy1:  # else the box lies wholly outside the frame: nothing to draw
            resized = cv2.resize(heatmap, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
            visible = resized[fy1 - y1 : fy2 - y1, fx1 - x1 : fx2 - x1]
            region = result[fy1:fy2, fx1:fx2]
            result[fy1:fy2, fx1:fx2] = _blend(region, colorize(visible, colormap), alpha)
    if face_box is not None:
        bx1, by1, bx2, by2 = (int(round(float(v))) for v in face_box)
        thickness = max(1, round(min(height, width) / 300))
        cv2.rectangle(result, (bx1, by1), (bx2, by2), box_colour, thickness)
    return result


_METHOD_LABELS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM", "eigencam": "Eigen-CAM"}


def _figure_to_array(figure) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def render_explanation(
    crop: np.ndarray,
    heatmap: np.ndarray,
    score: float,
    frame: np.ndarray | None = None,
    crop_box: Sequence[float] | None = None,
    face_box: Sequence[float] | None = None,
    method: str = DEFAULT_METHOD,
    target: str = "fake",
    threshold: float = 0.5,
    alpha: float = 0.45,
    colormap: str = "jet",
    title: str | None = None,
    matrix: np.ndarray | None = None,
) -> np.ndarray:
    """A captioned figure as (H, W, 3) uint8 RGB: [frame with the heatmap at the crop box], the crop,
    the crop with its heatmap, and a colour bar; the title gives P(fake), the verdict at ``threshold``
    and what the map explains. ``frame`` and ``crop_box`` (or ``matrix``) go together (default None:
    crop panels only)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    with_frame = frame is not None and (crop_box is not None or matrix is not None)
    panels = 3 if with_frame else 2
    ratios = ([1.6] if with_frame else []) + [1.0, 1.0]
    figure = Figure(figsize=(3.0 * sum(ratios) + 0.9, 3.6), dpi=100)
    grid = figure.add_gridspec(1, panels + 1, width_ratios=ratios + [0.06], wspace=0.08)
    axes = [figure.add_subplot(grid[0, i]) for i in range(panels)]
    index = 0
    if with_frame:
        shown = overlay_on_frame(frame, heatmap, crop_box or (0, 0, 1, 1), alpha, colormap, face_box, matrix)
        axes[0].imshow(shown)
        axes[0].set_title("frame", fontsize=9)
        index = 1
    axes[index].imshow(crop)
    axes[index].set_title("face crop", fontsize=9)
    axes[index + 1].imshow(overlay(crop, heatmap, alpha, colormap))
    axes[index + 1].set_title(f"{_METHOD_LABELS.get(method, method)} for {target.upper()}", fontsize=9)
    for axis in axes:
        axis.set_axis_off()
    colour_axis = figure.add_subplot(grid[0, panels])
    bar = figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), colormap), cax=colour_axis)
    bar.set_label(f"relevance for {target.upper()}", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    verdict = "FAKE" if score >= threshold else "REAL"
    figure.suptitle(title or f"P(fake) = {score:.3f}  ->  {verdict} (threshold {threshold:.2f})", fontsize=11)
    figure.subplots_adjust(left=0.02, right=0.93, bottom=0.03, top=0.83)
    return _figure_to_array(figure)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 RGB array as PNG, atomically (``name.tmp`` then ``os.replace``)."""
    from PIL import Image

    with atomic.atomic_path(path) as temporary:
        Image.fromarray(np.ascontiguousarray(image)).save(temporary, format="PNG")
    return Path(path)


def write_json(data: Any, path: str | Path) -> Path:
    """Write JSON atomically (``name.tmp`` then ``os.replace``)."""
    return atomic.write_json(path, data)


# --------------------------------------------------------------------------- galleries

GALLERY_CELLS = ("real_correct", "real_wrong", "fake_correct", "fake_wrong")


def _caption(tile: np.ndarray, text: str, colour: tuple[int, int, int]) -> np.ndarray:
    strip = np.full((22, tile.shape[1], 3), 24, np.uint8)
    cv2.putText(strip, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    return np.concatenate([tile, strip], axis=0)


def _grid(tiles: list[np.ndarray], title: str, columns: int, tile_size: int) -> np.ndarray:
    header = np.full((30, 1, 3), 255, np.uint8)
    if tiles:
        rows = math.ceil(len(tiles) / columns)
        columns = min(columns, len(tiles))
        tile_h, tile_w = tiles[0].shape[:2]
        pad = 4
        canvas = np.full((rows * (tile_h + pad) + pad, columns * (tile_w + pad) + pad, 3), 255, np.uint8)
        for i, tile in enumerate(tiles):
            r, c = divmod(i, columns)
            canvas[pad + r * (tile_h + pad) : pad + r * (tile_h + pad) + tile_h, pad + c * (tile_w + pad) : pad + c * (tile_w + pad) + tile_w] = tile
    else:
        canvas = np.full((tile_size // 2, max(tile_size * 2, 320), 3), 255, np.uint8)
        cv2.putText(canvas, "no crops in this cell", (10, tile_size // 4), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (90, 90, 90), 1, cv2.LINE_AA)
    header = np.full((30, canvas.shape[1], 3), 255, np.uint8)
    cv2.putText(header, title, (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, canvas], axis=0)


@dataclass
class Gallery:
    """PNG-ready grids for an evaluation run: REAL/FAKE x correct/wrong, and the mean heatmap per class.

    ``grids`` maps each of ``GALLERY_CELLS`` to an RGB image; ``mean_heatmaps`` is the per-class
    figure; ``counts`` gives how many crops fell in each cell (the grids show at most ``max_tiles``).
    """

    method: str
    target: str
    threshold: float
    grids: dict[str, np.ndarray] = field(repr=False)
    mean_heatmaps: np.ndarray = field(repr=False)
    counts: dict[str, int]
    shown: dict[str, list[int]]
    #: the per-crop heatmaps the grids were drawn from (kept for region statistics; not serialised)
    heatmaps: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "target": self.target,
            "threshold": self.threshold,
            "counts": dict(self.counts),
            "shown": {k: list(v) for k, v in self.shown.items()},
        }

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``gallery_<cell>.png``, ``gallery_mean_heatmaps.png`` and ``gallery.json``."""
        out_dir = Path(out_dir)
        paths = {cell: save_png(image, out_dir / f"gallery_{cell}.png") for cell, image in self.grids.items()}
        paths["mean_heatmaps"] = save_png(self.mean_heatmaps, out_dir / "gallery_mean_heatmaps.png")
        index = self.to_dict() | {"files": {k: p.name for k, p in paths.items()}}
        paths["index"] = write_json(index, out_dir / "gallery.json")
        return paths


def _normalise_labels(labels: Sequence[Any]) -> np.ndarray:
    values = []
    for label in labels:
        text = str(label).strip().lower()
        if text in ("fake", "1", "true"):
            values.append(1)
        elif text in ("real", "0", "false"):
            values.append(0)
        else:
            raise ExplainError(f"labels must be 'real'/'fake' (or 0/1), got {label!r}")
    return np.asarray(values, dtype=np.int64)


def build_gallery(
    crops: np.ndarray,
    heatmaps: np.ndarray,
    labels: Sequence[Any],
    scores: Sequence[float],
    threshold: float = 0.5,
    method: str = DEFAULT_METHOD,
    target: str = "predicted",
    max_tiles: int = 24,
    columns: int = 6,
    tile_size: int = 160,
    alpha: float = 0.45,
    colormap: str = "jet",
) -> Gallery:
    """Sort explained crops into REAL/FAKE x correct/wrong grids and average the heatmaps per class.

    ``labels`` are "real"/"fake" (or 0/1 with 1 = FAKE), ``scores`` P(fake). Correct cells show the most
    confident crops first, wrong cells the most confidently wrong first (the ones worth looking at).
    Each tile is the heatmap overlay captioned with P(fake). Defaults: at most 24 tiles per grid, 6
    columns, 160-pixel tiles.
    """
    crops = np.asarray(crops)
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    truth = _normalise_labels(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if not (len(crops) == len(heatmaps) == len(truth) == len(scores)):
        raise ExplainError(
            f"crops, heatmaps, labels and scores differ in length: {len(crops)}, {len(heatmaps)}, {len(truth)}, {len(scores)}"
        )
    if len(crops) == 0:
        raise ExplainError("no crops for the gallery")
    predicted = (scores >= threshold).astype(np.int64)
    grids, counts, shown = {}, {}, {}
    for cell in GALLERY_CELLS:
        class_name, outcome = cell.split("_")
        label = 1 if class_name == "fake" else 0
        correct = outcome == "correct"
        members = np.flatnonzero((truth == label) & ((predicted == label) == correct))
        # Confidence in the *predicted* class: |score - threshold| ranks both correct and wrong cells.
        order = members[np.argsort(-np.abs(scores[members] - threshold), kind="stable")]
        chosen = order[:max_tiles]
        tiles = []
        for i in chosen:
            tile = cv2.resize(overlay(crops[i], heatmaps[i], alpha, colormap), (tile_size, tile_size), interpolation=cv2.INTER_AREA)
            colour = (120, 230, 120) if correct else (255, 120, 120)
            tiles.append(_caption(tile, f"P(fake) {scores[i]:.3f}", colour))
        title = f"{class_name.upper()} crops, {'correct' if correct else 'WRONG'}: {len(members)} (showing {len(chosen)})"
        grids[cell] = _grid(tiles, title, columns, tile_size)
        counts[cell] = int(len(members))
        shown[cell] = [int(i) for i in chosen]
    mean_figure = _render_mean_heatmaps(crops, heatmaps, truth, method, target, colormap, alpha)
    return Gallery(method, target, float(threshold), grids, mean_figure, counts, shown)


def _render_mean_heatmaps(crops, heatmaps, truth, method, target, colormap, alpha) -> np.ndarray:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.4, 3.9), dpi=100)
    grid = figure.add_gridspec(1, 3, width_ratios=[1, 1, 0.06], wspace=0.08)
    for column, (label, name) in enumerate(((0, "REAL"), (1, "FAKE"))):
        axis = figure.add_subplot(grid[0, column])
        members = truth == label
        axis.set_axis_off()
        if not members.any():
            axis.set_title(f"{name}: no crops", fontsize=9)
            continue
        mean_crop = crops[members].astype(np.float32).mean(axis=0)
        grey = np.repeat(mean_crop.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
        # The mean map is shown on its own scale (not rescaled to [0, 1]) so the two classes compare.
        axis.imshow(overlay(grey, heatmaps[members].mean(axis=0), alpha, colormap))
        axis.set_title(f"{name} crops (n={int(members.sum())})", fontsize=9)
    bar = figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), colormap), cax=figure.add_subplot(grid[0, 2]))
    bar.set_label("mean relevance", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    target_text = "predicted class" if target == "predicted" else target.upper()
    figure.suptitle(f"Mean {_METHOD_LABELS.get(method, method)} heatmap per true class (target: {target_text})", fontsize=10)
    figure.subplots_adjust(left=0.02, right=0.92, bottom=0.03, top=0.85)
    return _figure_to_array(figure)


def explain_gallery(
    model: nn.Module,
    crops: np.ndarray,
    labels: Sequence[Any],
    method: str = DEFAULT_METHOD,
    target: str = "predicted",
    threshold: float = 0.5,
    progress: bool = False,
    **gallery_kwargs: Any,
) -> Gallery:
    """Explain ``crops`` with ``model`` and build their :class:`Gallery` (scores from the same pass)."""
    explanation = Explainer(model, method=method, threshold=threshold).explanation(crops, target, progress)
    gallery = build_gallery(
        np.asarray(crops), explanation.heatmaps, labels, explanation.scores, threshold, method, target, **gallery_kwargs
    )
    gallery.heatmaps = np.asarray(explanation.heatmaps)
    return gallery


# --------------------------------------------------------------------------- faithfulness (ROAD)


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
            matrix = coo_matrix(
                (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(count, count)
            ).tocsc()
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


def road_scores(
    model: nn.Module,
    crops: Any,
    heatmaps: np.ndarray,
    targets: Sequence[str],
    percentiles: Sequence[int] = DEFAULT_ROAD_PERCENTILES,
    seed: int = 0,
    batch_size: int = 32,
    bar: Any = None,
    break_ties: bool = True,
) -> dict[str, np.ndarray]:
    """ROAD per crop: ``morf`` and ``lerf`` (mean change of the target logit when the most / least
    relevant pixels are in-filled, over ``percentiles``) and ``combined`` = (lerf - morf) / 2, as
    ``pytorch_grad_cam.metrics.road.ROADCombined`` computes it. Higher combined = more faithful.

    ``targets`` are "fake"/"real" per crop (an :class:`Explanation`'s). The imputation noise is seeded
    with ``seed`` (default 0) so that several maps on the same crops are compared on the same noise.
    ``bar`` (default None) is a tqdm bar advanced once per percentile and batch. ``break_ties``
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
            lines.append(
                f"{row.method:<11} {f'{row.mean:+.3f} ± {row.sd:.3f}':>27} {row.morf:>+8.3f} {row.lerf:>+8.3f} {versus:>20} {wins:>6} {p:>8} {row.n:>4}"
            )
        lines.append(f"ROAD percentiles {list(self.percentiles)}; target: {self.target}; logit units; higher = more faithful")
        return "\n".join(lines)


def evaluate_faithfulness(
    model: nn.Module,
    crops: Any,
    methods: Sequence[str] = ("gradcam", "gradcam++", "scorecam", "eigencam"),
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

        bar = tqdm(total=len(maps) * len(percentiles) * math.ceil(len(inputs) / 32), desc="ROAD", unit="step")
    try:
        for name, heatmaps in maps.items():
            results[name] = road_scores(model, inputs, heatmaps, targets, percentiles, seed, bar=bar)
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


# --------------------------------------------------------------------------- sanity checks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps' pixels (ties get average ranks); NaN if either is constant."""
    from scipy.stats import rankdata

    ra = rankdata(np.asarray(a, dtype=np.float64).ravel())
    rb = rankdata(np.asarray(b, dtype=np.float64).ravel())
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


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
        rhos = np.array([spearman(a, b) for a, b in zip(reference, maps)], dtype=np.float64)
        valid = rhos[np.isfinite(rhos)]
        results.append(
            SanityStage(
                layers=label if mode == "full" else f"{layers[-1]} and above",
                spearman_mean=float(valid.mean()) if len(valid) else float("nan"),
                spearman_sd=float(valid.std(ddof=1)) if len(valid) > 1 else 0.0,
                n_constant=int((~np.isfinite(rhos)).sum()),
            )
        )
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
    rhos = np.array([spearman(a, b) for a, b in zip(fake, real)], dtype=np.float64)
    valid = rhos[np.isfinite(rhos)]
    return TargetSanity(
        explainer.method,
        float(valid.mean()) if len(valid) else float("nan"),
        float(valid.std(ddof=1)) if len(valid) > 1 else 0.0,
        len(inputs),
        int((~np.isfinite(rhos)).sum()),
    )


__all__ = [
    "DEFAULT_METHOD",
    "TARGETS",
    "ExplainError",
    "LogitTarget",
    "Explanation",
    "Explainer",
    "GradCAMExplainer",
    "GradCAMPlusPlusExplainer",
    "ScoreCAMExplainer",
    "EigenCAMExplainer",
    "explain_crops",
    "colorize",
    "overlay",
    "overlay_on_frame",
    "crop_to_frame_matrix",
    "render_explanation",
    "save_png",
    "write_json",
    "Gallery",
    "GALLERY_CELLS",
    "build_gallery",
    "explain_gallery",
    "random_maps",
    "road_scores",
    "FaithfulnessRow",
    "FaithfulnessReport",
    "evaluate_faithfulness",
    "spearman",
    "randomized_model",
    "SanityStage",
    "SanityResult",
    "randomization_sanity",
    "TargetSanity",
    "target_sanity",
]
