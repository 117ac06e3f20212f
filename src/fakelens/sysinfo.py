"""What the machine offers: the cores this process may use, and one line describing it for benchmarks."""

from __future__ import annotations

import os
import platform


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, so ``taskset`` counts; else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def describe_machine() -> str:
    """CPU model, cores, current load, torch version and threads, GPU if any, Python version."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} logical cores"
    if available_cores() != os.cpu_count():
        text += f", {available_cores()} usable here"
    try:
        text += f" (load average {os.getloadavg()[0]:.1f})"
    except OSError:
        pass
    text += f"; torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name(0)}"
    return f"{text}; Python {platform.python_version()} on {platform.system()} {platform.machine()}"
