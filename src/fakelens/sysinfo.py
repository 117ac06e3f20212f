"""One line describing the machine, printed by every benchmark next to its numbers."""

from __future__ import annotations

import os
import platform


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
    try:
        text += f" (load average {os.getloadavg()[0]:.1f})"
    except OSError:
        pass
    text += f"; torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name(0)}"
    return f"{text}; Python {platform.python_version()} on {platform.system()} {platform.machine()}"
