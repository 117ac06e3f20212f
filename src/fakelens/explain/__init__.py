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
  method and for a random-map baseline on the same crops (:mod:`fakelens.explain.faithfulness`).
* :func:`randomization_sanity` is the model-randomisation test of Adebayo et al. (2018): maps from a
  model whose weights were re-initialised (top-down cascade or all at once) should *not* look like the
  trained model's maps (low Spearman rank correlation). :func:`target_sanity` checks that the REAL and
  FAKE explanations differ (:mod:`fakelens.explain.sanity`).

Explaining never changes the model: hooks are removed, training/eval mode, ``requires_grad`` flags
and any accumulated ``.grad`` are restored, even on error. Explanations in one process are serialised
by a lock; other threads must not run the *same* model while one is computed, since the hooks would
see their forward passes too (the Detector's default ONNX backend does not share it).

The package, in pytorch-grad-cam's shape:

* :mod:`~fakelens.explain.core`: targets, input batches, the model guard, the :class:`Explainer` base
  class and the method registry (:func:`register`, :func:`get_explainer`, :func:`available_methods`);
* :mod:`~fakelens.explain.cams`: one thin subclass per method, over :mod:`~fakelens.explain.adapters`
  (the pytorch_grad_cam classes);
* :mod:`~fakelens.explain.render`: overlays, figures with a colour bar, PNG and JSON output;
* :mod:`~fakelens.explain.gallery`: REAL/FAKE x correct/wrong grids and per-class mean maps;
* :mod:`~fakelens.explain.faithfulness`: ROAD; :mod:`~fakelens.explain.sanity`: randomisation and
  target checks.

Method names and display labels come from :data:`fakelens.constants.CAM_METHODS` alone; the registry
holds exactly those names (checked at import).
"""

from __future__ import annotations

from fakelens.constants import CAM_METHODS
from fakelens.explain.cams import EigenCAMExplainer, GradCAMExplainer, GradCAMPlusPlusExplainer, ScoreCAMExplainer
from fakelens.explain.core import (
    DEFAULT_METHOD,
    TARGETS,
    Explainer,
    ExplainError,
    Explanation,
    LogitTarget,
    available_methods,
    explain_crops,
    get_explainer,
    register,
    resolve_method,
)
from fakelens.explain.faithfulness import (
    DEFAULT_ROAD_PERCENTILES,
    RANDOM_MAP_GRID,
    ROAD_BATCH_SIZE,
    FaithfulnessReport,
    FaithfulnessRow,
    evaluate_faithfulness,
    random_maps,
    road_scores,
    road_steps,
)
from fakelens.explain.gallery import GALLERY_CELLS, Gallery, build_gallery, explain_gallery
from fakelens.explain.render import (
    colorize,
    crop_to_frame_matrix,
    overlay,
    overlay_on_frame,
    render_explanation,
    save_png,
    write_json,
)
from fakelens.explain.sanity import (
    SanityResult,
    SanityStage,
    TargetSanity,
    randomization_sanity,
    randomized_model,
    spearman,
    target_sanity,
)

if available_methods() != list(CAM_METHODS):
    raise ImportError(f"fakelens.explain registers {available_methods()}, but fakelens.constants.CAM_METHODS names {list(CAM_METHODS)}")

__all__ = [
    "DEFAULT_METHOD",
    "TARGETS",
    "ExplainError",
    "LogitTarget",
    "Explanation",
    "Explainer",
    "register",
    "get_explainer",
    "available_methods",
    "resolve_method",
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
    "DEFAULT_ROAD_PERCENTILES",
    "RANDOM_MAP_GRID",
    "ROAD_BATCH_SIZE",
    "random_maps",
    "road_steps",
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
