"""Adapters over the ``grad-cam`` package (``pytorch_grad_cam``): peak scaling for every method, the
top-channel Score-CAM and the sign-fixed Eigen-CAM. The explainers in :mod:`fakelens.explain.cams` name
the class they use; :func:`cam_class` hands it out.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn


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


@functools.cache
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
                    masks = nn.functional.interpolate(acts[i, chosen][None], size=input_tensor.shape[-2:], mode="bilinear", align_corners=False)[0]
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
    bases = (GradCAM, GradCAMPlusPlus, TopChannelScoreCAM, SignedEigenCAM)
    return {base.__name__: type(f"PeakScaled{base.__name__}", (PeakScaled, base), {}) for base in bases}


def cam_class(name: str) -> type:
    """The peak-scaled pytorch_grad_cam class ``name``: "GradCAM", "GradCAMPlusPlus", "TopChannelScoreCAM"
    or "SignedEigenCAM"."""
    return _cam_classes()[name]
