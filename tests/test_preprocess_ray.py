"""`fakelens preprocess --engine ray`: the same manifest and crops as `--engine local`; resume; Ray optional."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakelens.cli import main
from fakelens.preprocess.ray_engine import RayUnavailable, ray_available

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SETTINGS = ["--frames", "2", "--no-progress"]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def folder_dataset(tmp_path: Path) -> Path:
    """The examples as a `--dataset folder` tree: real/ and fake/ (symlinks), videos and stills."""
    root = tmp_path / "examples"
    for path in sorted(EXAMPLES.iterdir()):
        label = "fake" if path.name.startswith("fake") else "real"
        (root / label).mkdir(parents=True, exist_ok=True)
        os.symlink(path, root / label / path.name)
    return root


def relative_crop(row: dict, out: Path) -> dict:
    """A manifest row with its crop path relative to its output folder (the only column that may differ)."""
    path = Path(row["crop_path"])
    return {**row, "crop_path": (path.relative_to(out) if path.is_absolute() else path).as_posix()}


def test_ray_engine_without_ray_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as without the extra
    root = folder_dataset(tmp_path)
    out = tmp_path / "out"
    assert main(["preprocess", str(root), "--dataset", "folder", "--out", str(out), "--engine", "ray", *SETTINGS]) == 1
    assert 'pip install "fakelens[ray]"' in capsys.readouterr().err
    assert not (out / "manifest.csv").exists()
    with pytest.raises(RayUnavailable):
        from fakelens.preprocess import preprocess

        preprocess([], out, engine="ray", progress=False)
    assert main(["preprocess", str(root), "--dataset", "folder", "--out", str(out), "--address", "auto"]) == 1
    assert "--address needs --engine ray" in capsys.readouterr().err


def test_import_needs_neither_ray_nor_torch():
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import fakelens.preprocess, fakelens.preprocess.ray_engine, fakelens.preprocess.run\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


@pytest.mark.skipif(not ray_available(), reason='needs Ray, the optional extra: pip install "fakelens[ray]"')
def test_a_refused_connection_says_how_to_authenticate(monkeypatch, tmp_path, capsys):
    import ray

    def refuse(*args, **kwargs):  # what ray.init raises for a cluster that is down or wants a token
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379")

    monkeypatch.setattr(ray, "init", refuse)
    root = folder_dataset(tmp_path)
    args = ["preprocess", str(root), "--dataset", "folder", "--out", str(tmp_path / "out"), "--engine", "ray", "--address", "10.0.0.1:6379"]
    assert main([*args, *SETTINGS]) == 1
    err = capsys.readouterr().err
    assert "cannot join the Ray cluster at 10.0.0.1:6379" in err and "RAY_AUTH_MODE=token" in err


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.skipif(not ray_available(), reason='needs Ray, the optional extra: pip install "fakelens[ray]"')
def test_ray_engine_equals_local(tmp_path, monkeypatch, capsys):
    import ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a private local instance; no token under ~/.ray
    root = folder_dataset(tmp_path)
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert main(["preprocess", str(root), "--dataset", "folder", "--out", str(local), *SETTINGS]) == 0
    temp = Path("/tmp") / f"flprep-{os.getpid()}"  # Ray's socket paths must stay short
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(temp), logging_level="WARNING")
    try:
        assert main(["preprocess", str(root), "--dataset", "folder", "--out", str(remote), "--engine", "ray", *SETTINGS]) == 0
        capsys.readouterr()
        # Resume: every video has its part file, so nothing is sent to Ray again.
        assert main(["preprocess", str(root), "--dataset", "folder", "--out", str(remote), "--engine", "ray", *SETTINGS]) == 0
        assert "(0 processed now, 6 already done)" in capsys.readouterr().out
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    local_rows, ray_rows = read_csv(local / "manifest.csv"), read_csv(remote / "manifest.csv")
    assert local_rows, "the examples gave no crop"
    assert list(ray_rows[0]) == list(local_rows[0])
    assert [relative_crop(r, remote) for r in ray_rows] == [relative_crop(r, local) for r in local_rows]
    assert {r["video"] for r in local_rows} >= {"real/real_dfdc_aayrffkzxn.mp4", "fake/fake_dfdc_abhggqdift.mp4"}
    for name in ("videos.csv", "failures.csv"):
        assert read_csv(remote / name) == read_csv(local / name)
    for row in local_rows:
        crop = relative_crop(row, local)["crop_path"]
        a, b = np.asarray(Image.open(local / crop)), np.asarray(Image.open(remote / crop))
        assert a.shape == b.shape and np.array_equal(a, b), crop
