"""The explanation methods, one thin :class:`~fakelens.explain.core.Explainer` subclass each, registered
under their :data:`fakelens.constants.CAM_METHODS` names. What they compute is described in
:mod:`fakelens.explain`; the pytorch_grad_cam classes behind them are in :mod:`fakelens.explain.adapters`.
"""

from __future__ import annotations

from torch import nn

from fakelens.explain.adapters import cam_class
from fakelens.explain.core import Explainer, ExplainError, register


@register
class GradCAMExplainer(Explainer):
    """Grad-CAM: ReLU of the activations weighted by their spatially averaged gradients."""

    method = "gradcam"
    cam_class_name = "GradCAM"


@register
class GradCAMPlusPlusExplainer(Explainer):
    """Grad-CAM++: positive-gradient weights with per-location coefficients."""

    method = "gradcam++"
    cam_class_name = "GradCAMPlusPlus"


@register
class ScoreCAMExplainer(Explainer):
    """Score-CAM (gradient-free): channel weights from the target scores of activation-masked inputs.

    ``max_channels`` (default 64) scores the channels with the most spatial variance only, a 20x
    saving over the full 1280; None scores all of them (the original method).
    """

    method = "scorecam"
    cam_class_name = "TopChannelScoreCAM"
    uses_gradients = False

    def __init__(self, model: nn.Module, method: str | None = None, max_channels: int | None = 64, **kwargs):
        super().__init__(model, method, **kwargs)
        if max_channels is not None and max_channels < 1:
            raise ExplainError("max_channels must be at least 1 (or None for all)")
        self.max_channels = max_channels

    def _make_cam(self):
        cls = cam_class(self.cam_class_name)
        return cls(self.model, [self.target_layer], max_channels=self.max_channels, batch_size=max(self.batch_size, 32))


@register
class EigenCAMExplainer(Explainer):
    """Eigen-CAM (gradient-free, class agnostic): first principal component of the activations."""

    method = "eigencam"
    cam_class_name = "SignedEigenCAM"
    uses_gradients = False
    class_specific = False
