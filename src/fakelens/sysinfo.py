"""What the machine offers: the cores this process may use, one line describing it for benchmarks, and the
allocator setting that keeps freed memory for reuse (:func:`keep_freed_memory`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import threading

#: glibc's ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap rather than from their own ``mmap``: frames, summed-area tables
#: and the cascade's activations (up to ~25 MB for 1080p batches) are then reused instead of mapped afresh.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the heap's top is given back to the system only beyond this much.
TRIM_THRESHOLD = 512 * 1024 * 1024
#: Set by :func:`keep_freed_memory` once it has run: "glibc" when the setting took, else why not.
_allocator: str | None = None
_allocator_lock = threading.Lock()


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


def keep_freed_memory() -> str:
    """Make glibc keep freed memory for reuse instead of returning it to the system at once; returns what was done.

    By default glibc gives each block over 128 kB (or, adaptively, up to 32 MB) its own ``mmap`` and unmaps it when
    freed, and gives back heap memory beyond twice that: every frame, table and activation of the next batch
    is then mapped afresh, one page fault per 4 kB touched. Measured on 720p clips (2-core Intel Xeon VM):
    85,000-120,000 page faults per ``Detector.predict`` by default, 23,000 with this setting, and 13-16 % less CPU time
    (``benchmarks/page_faults.py``). The cost: the process keeps up to
    :data:`TRIM_THRESHOLD` of freed memory mapped, as PyTorch's CPU users get from jemalloc or tcmalloc.

    Process-wide and idempotent; :class:`fakelens.detector.Detector` calls it on a CPU. Does nothing where the C
    library is not glibc (macOS, Windows, musl) or when ``FAKELENS_KEEP_FREED_MEMORY=0``.
    """
    global _allocator
    with _allocator_lock:
        if _allocator is None:
            _allocator = _tune_glibc()
        return _allocator


def _tune_glibc() -> str:
    if os.environ.get("FAKELENS_KEEP_FREED_MEMORY", "1") == "0":
        return "off (FAKELENS_KEEP_FREED_MEMORY=0)"
    if platform.libc_ver()[0] != "glibc":
        return "not glibc: left as it is"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        done = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError):
        return "glibc's mallopt not found: left as it is"
    return "glibc" if done else "glibc refused the setting: left as it is"
