"""The shared machinery of every explanation method: targets, input batches, the model guard, the
:class:`Explainer` base class and the method registry.

A method is a thin :class:`Explainer` subclass (see :mod:`fakelens.explain.cams`) decorated with
:func:`register`; the registry's names are exactly those of :data:`fakelens.constants.CAM_METHODS`, the
one place where method names and display labels are written down.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from fakelens.constants import CAM_METHODS, CAM_TARGETS, DEFAULT_CAM_METHOD, check_threshold, sigmoid
from fakelens.errors import FakelensError
from fakelens.explain.adapters import cam_class
from fakelens.model import INPUT_SIZE, preprocess_crops

#: Method used when none is named (:data:`fakelens.constants.DEFAULT_CAM_METHOD`).
DEFAULT_METHOD = DEFAULT_CAM_METHOD
#: Targets :meth:`Explainer.explain` accepts (:data:`fakelens.constants.CAM_TARGETS`).
TARGETS = CAM_TARGETS

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


# --------------------------------------------------------------------------- registry

#: Registered explainer classes by method name, filled by :func:`register`.
_REGISTRY: dict[str, type[Explainer]] = {}
#: Spellings :func:`resolve_method` forgives: each display label in lower case ("grad-cam++"), and two more.
_ALIASES = {label.lower(): name for name, label in CAM_METHODS.items()} | {
    "gradcampp": "gradcam++",
    "gradcamplusplus": "gradcam++",
}


def register(cls: type[Explainer]) -> type[Explainer]:
    """Class decorator: make ``cls`` the explainer for its ``method``, a name of ``CAM_METHODS``."""
    if cls.method not in CAM_METHODS:
        raise ExplainError(f"{cls.__name__}.method {cls.method!r} is not one of fakelens.constants.CAM_METHODS")
    if _REGISTRY.get(cls.method, cls) is not cls:
        raise ExplainError(f"{cls.method!r} is already registered to {_REGISTRY[cls.method].__name__}")
    _REGISTRY[cls.method] = cls
    return cls


def available_methods() -> list[str]:
    """Names of the registered methods, in the order of ``CAM_METHODS`` (the default first)."""
    return [name for name in CAM_METHODS if name in _REGISTRY]


def resolve_method(method: str) -> str:
    """Canonical name of ``method`` (case and common spellings forgiven) or :class:`ExplainError`."""
    key = str(method).strip().lower().replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ExplainError(f"unknown explanation method {method!r}; choose one of {', '.join(available_methods())}")
    return key


def get_explainer(method: str) -> type[Explainer]:
    """The :class:`Explainer` subclass registered for ``method`` (spellings as :func:`resolve_method`)."""
    return _REGISTRY[resolve_method(method)]


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
    model : the classifier; it is not modified (see :mod:`fakelens.explain`).
    method : a name of :data:`fakelens.constants.CAM_METHODS`: ``"gradcam"`` (default), ``"gradcam++"``,
        ``"scorecam"`` or ``"eigencam"``.
    device : where to compute (default None: the model's own device). A different device works on a
        copy of the model, so the caller's model never moves.
    target_layer : module or dotted name (default None: ``model.features[-1]``, MobileNetV2's last
        conv block).
    batch_size : crops per forward/backward pass (default 16).
    threshold : P(fake) at which "predicted" counts as FAKE (default 0.5; pass a checkpoint's
        ``info["threshold"]`` to match its verdicts).
    """

    #: Registry name (a key of ``CAM_METHODS``); set by each subclass.
    method: ClassVar[str] = ""
    #: The peak-scaled pytorch_grad_cam class that computes the maps (see :func:`adapters.cam_class`).
    cam_class_name: ClassVar[str] = ""
    #: Whether the map depends on the target (False for Eigen-CAM).
    class_specific: ClassVar[bool] = True
    uses_gradients: ClassVar[bool] = True

    @classmethod
    def methods(cls) -> list[str]:
        """Names of the registered methods (:func:`available_methods`)."""
        return available_methods()

    @classmethod
    def resolve_method(cls, method: str) -> str:
        """Canonical name of ``method`` (case and common spellings forgiven) or :class:`ExplainError`."""
        return resolve_method(method)

    def __new__(cls, model: nn.Module | None = None, method: str | None = None, **kwargs):
        if cls is Explainer:
            cls = get_explainer(method or DEFAULT_METHOD)
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
        threshold = check_threshold(threshold)
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
        return cam_class(self.cam_class_name)(model=self.model, target_layers=[self.target_layer])

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
        scores = sigmoid(logit_array).astype(np.float32)
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
            detach_handle = self.target_layer.register_forward_hook(lambda module, args, output: output.detach().requires_grad_(True))
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


def explain_crops(model: nn.Module, crops: Any, method: str = DEFAULT_METHOD, target: str = "predicted", **kwargs) -> Explanation:
    """One-call form: ``Explainer(model, method, **kwargs).explanation(crops, target)``."""
    return Explainer(model, method=method, **kwargs).explanation(crops, target)
