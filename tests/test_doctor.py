"""The install locks and `fakelens doctor` / `fakelens --version`: what a bug report needs."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from fakelens.doctor import RUNTIME_LOCK, check_lock, read_lock, report

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def _requirements(path: Path) -> list[str]:
    """The requirement entries of a pip-compile lock, each with its continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    return [line for line in text.splitlines() if line and not line.startswith(("#", " "))]


@pytest.mark.parametrize("path", [LOCK, RUNTIME_LOCK], ids=["requirements.lock", "runtime.lock"])
def test_locks_pin_every_package_with_hashes(path):
    entries = _requirements(path)
    assert len(entries) > 50
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9._-]+==\S+ ", entry), entry  # one exact version, no ranges
        assert "--hash=sha256:" in entry, entry
    pins = read_lock(path)
    assert len(pins) == len(entries)
    assert pins["torch"] == "2.14.1"  # the tested torch, never a newer one
    assert {"onnxruntime", "opencv-python-headless", "av", "streamlit", "grad-cam"} <= set(pins)
    options = [line for line in path.read_text().splitlines() if line.startswith("-")]
    assert not options  # no index URLs or find-links of the machine that wrote it


def test_runtime_lock_is_the_app_subset_of_the_install_lock():
    full, runtime = read_lock(LOCK), read_lock(RUNTIME_LOCK)
    assert {name: full.get(name) for name in runtime} == runtime
    assert {"pytest", "playwright"} <= set(full) - set(runtime)


def test_check_lock_reports_each_difference(tmp_path):
    numpy = metadata.version("numpy")
    lock = tmp_path / "lock.txt"
    lock.write_text(
        "# a comment\n"
        f"numpy=={numpy} \\\n    --hash=sha256:{'0' * 64}\n"
        "pillow==0.0.1 \\\n    --hash=sha256:" + "1" * 64 + "\n    # via fakelens\n"
        "no-such-package-fakelens==1.0\n"
        'windows-only-package==1.0 ; sys_platform == "nonexistent"\n'
    )
    assert read_lock(lock) == {"numpy": numpy, "pillow": "0.0.1", "no-such-package-fakelens": "1.0"}
    check = check_lock(lock)
    assert not check.satisfied and check.pins == 3
    assert check.missing == ["no-such-package-fakelens"]
    assert check.mismatched == [("pillow", metadata.version("pillow"), "0.0.1")]
    assert "NOT satisfied: 2 of 3 pins" in check.summary() and "pillow" in check.summary()
    lock.write_text(f"numpy=={numpy}\n")
    assert check_lock(lock).satisfied and check_lock(lock).summary().startswith("satisfied (1 pins")


def test_version_and_doctor_commands(tmp_path):
    out = subprocess.run([sys.executable, "-m", "fakelens", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("fakelens 0.")
    for label, distribution in [
        ("torch", "torch"),
        ("onnxruntime", "onnxruntime"),
        ("OpenCV", "opencv-python-headless"),
        ("PyAV", "av"),
        ("Streamlit", "streamlit"),
    ]:
        line = next(line for line in lines if line.split()[0] == label)
        assert metadata.version(distribution) in line, line
    assert lines[-1].startswith("lock: ") and str(RUNTIME_LOCK) in lines[-1]
    assert report().splitlines()[-1] == lines[-1]

    bad = tmp_path / "bad.lock"
    bad.write_text("torch==0.0.1\n")
    out = subprocess.run([sys.executable, "-m", "fakelens", "doctor", "--lock", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stdout.splitlines()[-1].startswith(f"lock: NOT satisfied: 1 of 1 pins of {bad} differ: torch ")
    out = subprocess.run(
        [sys.executable, "-m", "fakelens", "doctor", "--lock", str(tmp_path / "none.lock")], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1 and "lock file not found" in out.stderr
