"""Model checkpoints: one ``torch.save`` dict of tensors and plain Python values, written atomically.

A fakelens checkpoint holds::

    format          "fakelens-checkpoint"      (tells our files from any other .pt)
    version         1
    name            a human-readable name (the run directory's name by default)
    model_config    DeepfakeClassifier's constructor arguments (model.config)
    model_state     the classifier's state dict
    optimizer_state / scheduler_state   for exact resumption (optional)
    epoch, config, metrics, threshold, extra

Only tensors and primitives (dict, list, str, int, float, bool, None) go in, so that loading works with
``torch.load(weights_only=True)``, which cannot run code hidden in a file. ``threshold`` is the decision
threshold on P(fake) chosen on validation scores; models without one use 0.5.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fakelens import atomic
from fakelens.errors import CheckpointError
from fakelens.model import DeepfakeClassifier

FORMAT = "fakelens-checkpoint"
VERSION = 1
DEFAULT_THRESHOLD = 0.5


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def _check_plain(value: Any, where: str) -> None:
    """Refuse anything weights_only loading would reject, at save time rather than at load time."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor, torch.Size)):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: dict key {key!r} is not a str or int")
            _check_plain(item, f"{where}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored in a weights_only checkpoint")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path.tmp`` then ``os.replace``: readers never see a half-written file."""
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    *,
    epoch: int = 0,
    config: dict | None = None,
    metrics: dict | None = None,
    threshold: float | None = None,
    extra: dict | None = None,
    name: str | None = None,
) -> Path:
    """Write a checkpoint atomically and return its path.

    Parameters
    ----------
    path : destination file (parent folders are created).
    model : the classifier, possibly wrapped in DDP / torch.compile (unwrapped here).
    optimizer, scheduler : saved through their ``state_dict()`` when given (default None).
    epoch : number of epochs completed (default 0).
    config : the training configuration as a plain dict (default None).
    metrics : validation (or other) figures as a plain dict (default None).
    threshold : decision threshold on P(fake) chosen on validation (default None: users get 0.5).
    extra : anything else plain, e.g. RNG states and training history (default None).
    name : human-readable model name (default: the parent folder's name).
    """
    path = Path(path)
    module = unwrap_model(model)
    model_config = dict(getattr(module, "config", {}) or {})
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "name": name or path.resolve().parent.name,
        "model_config": model_config,
        "model_state": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
        "epoch": int(epoch),
        "config": dict(config or {}),
        "metrics": dict(metrics or {}),
        "threshold": None if threshold is None else float(threshold),
        "extra": dict(extra or {}),
    }
    for key, value in payload.items():
        _check_plain(value, key)
    return atomic_torch_save(payload, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a fakelens checkpoint with ``weights_only=True``; raise :class:`CheckpointError` if it is not one."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses pickled objects: either a foreign file or one saved with arbitrary classes.
        raise CheckpointError(f"{path}: refused to load (not plain tensors; possibly unsafe): {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - garbage bytes fail inside the unpickler in many ways
        raise CheckpointError(f"{path}: corrupt or not a PyTorch checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a fakelens checkpoint (no format={FORMAT!r} entry); for ImageNet backbone weights use --init / model.load_backbone_weights"
        )
    if int(payload.get("version", 0)) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload['version']} is newer than this fakelens ({VERSION})")
    if not isinstance(payload.get("model_state"), dict):
        raise CheckpointError(f"{path}: checkpoint has no model weights")
    return payload


def build_model(payload: dict, path: str | Path = "<checkpoint>") -> DeepfakeClassifier:
    """A DeepfakeClassifier with the checkpoint's architecture and weights (on CPU, in eval mode)."""
    try:
        model = DeepfakeClassifier(**payload.get("model_config", {}))
        model.load_state_dict(payload["model_state"], strict=True)
    except (TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the DeepfakeClassifier ({exc})") from exc
    return model.eval()


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[DeepfakeClassifier, dict]:
    """Load a classifier for inference: ``(model in eval mode on device, info)``.

    ``info`` has ``name``, ``threshold`` (float, 0.5 when none was stored), ``epoch``, ``config``, ``metrics``,
    ``inference`` (``{"tta": ..., "aggregate": ...}`` where the checkpoint records them, else empty) and ``path``.
    """
    payload = load_checkpoint(path)
    model = build_model(payload, path).to(device)
    threshold = payload.get("threshold")
    info = {
        "name": payload.get("name") or Path(path).stem,
        "threshold": DEFAULT_THRESHOLD if threshold is None else float(threshold),
        "epoch": int(payload.get("epoch", 0)),
        "config": dict(payload.get("config") or {}),
        "metrics": dict(payload.get("metrics") or {}),
        # How the model is meant to be run (test-time augmentation, frame aggregation), chosen where its threshold was.
        "inference": dict((payload.get("extra") or {}).get("inference") or {}),
        "path": str(path),
    }
    return model, info


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> None:
    """Raise :class:`CheckpointError` unless the file's sha256 equals ``expected`` (hex, case-insensitive)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    actual = sha256_file(path)
    if actual.lower() != expected.strip().lower():
        raise CheckpointError(f"{path}: sha256 mismatch (expected {expected}, got {actual}); the file is damaged or not the published one")
