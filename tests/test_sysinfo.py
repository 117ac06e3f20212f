"""fakelens.sysinfo: the cores counted and the allocator setting that keeps freed memory (#11)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from fakelens.sysinfo import available_cores, describe_machine

# Sixteen 8 MB blocks made and freed again and again, as a predict does with frames and activations; prints
# the page faults of the last five rounds. By default glibc hands the freed 128 MB back to the system and
# faults it in anew each round; once freed memory is kept, the rounds reuse it.
FAULTS_SCRIPT = """
import resource
import numpy as np
from fakelens.sysinfo import keep_freed_memory

state = keep_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):
    blocks = [np.ones(1 << 20) for _ in range(16)]
    del blocks
start = faults()
for _ in range(5):
    blocks = [np.ones(1 << 20) for _ in range(16)]
    del blocks
print(state, faults() - start, sep="|")
"""


def _faults(keep: bool) -> tuple[str, int]:
    env = {**os.environ, "FAKELENS_KEEP_FREED_MEMORY": "1" if keep else "0"}
    out = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], env=env, capture_output=True, text=True, check=True).stdout
    state, count = out.strip().rsplit("|", 1)
    return state, int(count)


def test_available_cores_follows_the_affinity():
    assert available_cores() == len(os.sched_getaffinity(0))
    assert "logical cores" in describe_machine()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_keep_freed_memory_stops_refaulting_freed_blocks():
    kept_state, kept = _faults(keep=True)
    off_state, off = _faults(keep=False)
    assert kept_state == "glibc"
    assert off_state.startswith("off")
    # 5 rounds x 128 MB is ~160,000 pages: refaulted by default, reused when kept.
    assert off > 20_000
    assert kept < off / 20


def test_keep_freed_memory_is_set_once_per_process():
    from fakelens.sysinfo import keep_freed_memory

    first = keep_freed_memory()
    assert keep_freed_memory() == first
