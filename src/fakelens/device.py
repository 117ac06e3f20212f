"""Which torch device to run on: the one place that turns "auto", None, "cpu" or "cuda:1" into a device."""

from __future__ import annotations

import torch

from fakelens.errors import InvalidArgument


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; anything else as given (checked)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidArgument(f"device must be auto, cpu, cuda or cuda:N, got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgument("CUDA was requested but no CUDA device is available (use --device cpu)")
    return device
