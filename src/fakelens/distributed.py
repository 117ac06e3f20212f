"""The few collective operations training needs, each a no-op in a single process, and the RNG states
saved per rank in ``last.pt``.

Under ``torchrun`` (``WORLD_SIZE`` > 1) :func:`init_distributed` starts the process group: nccl on
GPUs, gloo on CPUs. Objects, not tensors, are gathered and broadcast: the payloads are small (loss
sums, validation logits, RNG states).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from fakelens.device import resolve_device


@dataclass
class DistInfo:
    """This process's place in the run: ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as ``torchrun`` sets them."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_request: str) -> tuple[DistInfo, torch.device]:
    """This process's :class:`DistInfo` and device (under torchrun, GPU ``LOCAL_RANK``); starts the process group."""
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_request)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", info.local_rank if info.enabled else torch.cuda.current_device())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def barrier(info: DistInfo) -> None:
    """Wait for every process (e.g. until rank 0 has written the epoch's files)."""
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def all_gather(info: DistInfo, obj):
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not info.enabled:
        return [obj]
    import torch.distributed as dist

    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast(info: DistInfo, obj):
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def rng_state(device: torch.device) -> dict:
    """The torch (and CUDA) and NumPy global RNG states, as tensors and numbers ``weights_only`` loading accepts."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    keys = torch.from_numpy(np.asarray(keys).astype(np.int64))
    state["numpy"] = {"keys": keys, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
