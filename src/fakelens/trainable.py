"""What trains and how fast: the initial weights, the parameter groups with their learning rates, the
learning-rate schedule, and which layers train in each phase (see :mod:`fakelens.train` for the run itself)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch import nn

from fakelens.checkpoint import load_checkpoint
from fakelens.errors import TrainingError
from fakelens.model import DeepfakeClassifier, load_backbone_weights

log = logging.getLogger(__name__)


def init_model(model: DeepfakeClassifier, init: str | None) -> str:
    """Load ``init`` into ``model``; returns a description for the log."""
    if init is None:
        log.warning("no --init/--pretrained: the backbone starts from random weights (expect poor results)")
        return "random"
    if str(init) == "imagenet":
        try:
            load_backbone_weights(model, "imagenet")
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            raise TrainingError(
                f"could not fetch torchvision's ImageNet weights ({exc}); pass --init PATH to a local mobilenet_v2 state dict"
            ) from exc
        return "torchvision IMAGENET1K_V2"
    path = Path(init)
    if not path.is_file():
        raise TrainingError(f"{path}: --init file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise TrainingError(f"{path}: cannot read --init weights ({exc})") from exc
    if isinstance(payload, dict) and payload.get("format") == "fakelens-checkpoint":
        payload = load_checkpoint(path)
        try:
            model.load_state_dict(payload["model_state"], strict=True)
        except RuntimeError as exc:
            raise TrainingError(f"{path}: checkpoint does not fit this model (--hidden?): {exc}") from exc
        return f"fakelens checkpoint {path}"
    try:
        load_backbone_weights(model, path)
    except (RuntimeError, KeyError, AttributeError) as exc:
        raise TrainingError(f"{path}: not a torchvision mobilenet_v2 state dict ({exc})") from exc
    return f"backbone {path}"


def param_groups(model: DeepfakeClassifier, lr: float, weight_decay: float, backbone_lr_mult: float) -> list[dict]:
    """Head first (its LR is the one logged), then the backbone at ``lr * backbone_lr_mult``; biases and norm
    scales are not decayed."""
    groups = []
    for params, group_lr in ((list(model.head.parameters()), lr), (list(model.features.parameters()), lr * backbone_lr_mult)):
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        groups.append({"params": decay, "weight_decay": weight_decay, "lr": group_lr})
        groups.append({"params": no_decay, "weight_decay": 0.0, "lr": group_lr})
    return groups


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Linear warm-up to 1 over ``warmup_steps``, then cosine decay to ``min_ratio`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_phase(model: DeepfakeClassifier, frozen_backbone: bool, freeze_bn: bool, freeze_blocks: int = 0, backbone_params: str = "all") -> None:
    """Train mode with the backbone (un)frozen and its batch norm statistics frozen or not; the first
    ``freeze_blocks`` blocks stay frozen throughout; with ``backbone_params="norm"`` only the backbone's batch
    norm affine parameters train."""
    model.train()
    for module in model.features.modules():
        is_norm = isinstance(module, nn.modules.batchnorm._BatchNorm)
        for param in module.parameters(recurse=False):
            param.requires_grad_(not frozen_backbone and (backbone_params == "all" or is_norm))
    if frozen_backbone or freeze_bn:
        for module in model.features.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    for block in list(model.features)[:freeze_blocks]:
        block.eval()
        for param in block.parameters():
            param.requires_grad_(False)
