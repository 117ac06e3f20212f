"""Training and inference throughput (images/s) of the DeepfakeClassifier on this machine.

Baselines and ratios, each measured in this process:
* inference: eager fp32 under ``torch.no_grad`` (baseline) vs ``torch.inference_mode`` + channels_last
  (+ bf16/fp16 autocast on CUDA), the settings ``fakelens evaluate`` and training use on each device;
* training: a full fine-tuning step (baseline) vs a frozen-backbone step (the first epochs of ``fakelens train``),
  both with BCEWithLogits + AdamW + gradient clipping, batch norm in eval mode as for small batches.

Inputs are real face crops from ../shared/data when present (else random pixels: the speed of a CNN does not
depend on image content). Usage::

    .venv/bin/python benchmarks/train_infer_speed.py [--batch-size 16] [--iters 5] [--device cpu|cuda|all]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fakelens.data import normalize_batch
from fakelens.model import DeepfakeClassifier
from fakelens.sysinfo import describe_machine

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "dfdc" / "cvit__real"


def crops(n: int) -> torch.Tensor:
    """(n, 3, 224, 224) uint8: real face crops when available, repeated to n."""
    import cv2

    images = []
    if SHARED.is_dir():
        for path in sorted(SHARED.glob("*.jpg"))[:n]:
            images.append(cv2.resize(cv2.imread(str(path))[..., ::-1], (224, 224)))
    if not images:
        images = list(np.random.default_rng(0).integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8))
    images = (images * (n // len(images) + 1))[:n]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare(fns: dict, iters: int, warmup: int, device: torch.device) -> dict[str, float]:
    """Median seconds per call of each function, timed in interleaved rounds so that load changes on a
    shared machine hit every mode alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(iters):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(v)) for name, v in times.items()}


def bench_inference(device: torch.device, batch: torch.Tensor, iters: int, warmup: int) -> dict[str, float]:
    model = DeepfakeClassifier().to(device).eval()
    x = batch.to(device)

    def eager():
        with torch.no_grad():
            model(normalize_batch(x))

    model_cl = DeepfakeClassifier().to(device).eval().to(memory_format=torch.channels_last)
    amp = device.type == "cuda"
    dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16

    def fast():
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=amp):
            model_cl(normalize_batch(x, channels_last=True))

    fast_name = "inference_mode + channels_last" + (f" + {str(dtype).split('.')[-1]} autocast" if amp else "")
    return compare({"eager fp32, no_grad (baseline)": eager, fast_name: fast}, iters, warmup, device)


def make_train_step(device: torch.device, x: torch.Tensor, targets: torch.Tensor, frozen: bool):
    """One optimisation step of a fresh classifier, with the backbone frozen or not."""
    model = DeepfakeClassifier().to(device)
    model.train()
    for p in model.features.parameters():
        p.requires_grad_(not frozen)
    for m in model.features.modules():  # small batches: batch norm statistics stay frozen
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    cuda = device.type == "cuda"
    if cuda:
        model.to(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=cuda):
            logits = model(normalize_batch(x, channels_last=cuda))
        loss = loss_fn(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    return step


def bench_training(device: torch.device, batch: torch.Tensor, iters: int, warmup: int) -> dict[str, float]:
    x = batch.to(device)
    targets = (torch.arange(len(batch), device=device) % 2).float()
    steps = {
        "full fine-tuning step (baseline)": make_train_step(device, x, targets, frozen=False),
        "frozen-backbone step": make_train_step(device, x, targets, frozen=True),
    }
    return compare(steps, iters, warmup, device)


def report(title: str, results: dict[str, float], batch_size: int) -> None:
    baseline = next(iter(results.values()))
    print(f"  {title} (batch {batch_size}):")
    for name, seconds in results.items():
        print(f"    {name:<52} {batch_size / seconds:8.1f} img/s   x{baseline / seconds:5.2f} vs baseline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=16, help="images per step (default 16)")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per mode (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    parser.add_argument("--device", default="all", help="cpu, cuda or all (default all: CPU, then CUDA if available)")
    args = parser.parse_args()
    print(f"machine: {describe_machine()}")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    batch = crops(args.batch_size)
    for name in devices:
        if name.startswith("cuda") and not torch.cuda.is_available():
            print("  (no CUDA device: skipped)")
            continue
        device = torch.device(name)
        iters = args.iters if device.type == "cpu" else args.iters * 10
        print(f"device {device}:")
        report("inference", bench_inference(device, batch, iters, args.warmup), args.batch_size)
        report("training", bench_training(device, batch, iters, args.warmup), args.batch_size)


if __name__ == "__main__":
    main()
