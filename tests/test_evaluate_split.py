"""`fakelens evaluate` without --split: the test split, or val when the manifest has none (issue #14).

``fakelens preprocess DIR --dataset folder`` makes only train and val by default, so the documented
``fakelens evaluate --manifest ... --checkpoint ...`` must fall back on val and say so.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from fakelens.cli import main
from fakelens.errors import FakelensError
from fakelens.evaluate import evaluate, select_rows

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: Three real and three fake media of the bundled examples (videos and stills), one group each.
MEDIA = {
    "real": ["real_dfdc_aayrffkzxn.mp4", "real_ffpp_004.mp4", "real_ffpp_ex_original.png"],
    "fake": ["fake_dfdc_abhggqdift.mp4", "fake_ffpp_NeuralTextures_004_982.mp4", "fake_ffpp_ex_deepfakes.png"],
}
FAST = ["--frames", "2", "--min-face-size", "40", "--no-progress"]


@pytest.fixture(scope="module")
def folder_manifest(tmp_path_factory) -> Path:
    """``fakelens preprocess DIR --dataset folder`` with its default splits: train and val, no test."""
    root = tmp_path_factory.mktemp("media") / "mine"
    for label, names in MEDIA.items():
        (root / label).mkdir(parents=True)
        for name in names:
            os.symlink(EXAMPLES / name, root / label / name)
    out = tmp_path_factory.mktemp("crops")
    assert main(["preprocess", str(root), "--dataset", "folder", "--out", str(out), *FAST]) == 0
    manifest = out / "manifest.csv"
    with open(manifest, newline="") as fh:
        splits = {row["split"] for row in csv.DictReader(fh)}
    assert splits == {"train", "val"}
    return manifest


def _with_splits(manifest: Path, path: Path, change) -> Path:
    """A copy of ``manifest`` beside it (crop paths stay valid) with ``change(index, row)`` giving each split."""
    with open(manifest, newline="") as fh:
        reader = csv.DictReader(fh)
        columns, rows = reader.fieldnames, list(reader)
    for index, row in enumerate(rows):
        row["split"] = change(index, row)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_cli_evaluate_falls_back_on_val_and_says_so(folder_manifest, checkpoint, tmp_path, capsys):
    capsys.readouterr()
    args = ["evaluate", "--manifest", str(folder_manifest), "--checkpoint", str(checkpoint), "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "r"), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "split val [default: no labelled test rows]" in out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["split"] == "val" and report["split_source"] == "default: no labelled test rows"
    val_rows = select_rows(folder_manifest, "val")[0]
    assert report["overall"]["n_frames"] == len(val_rows) > 0
    # Asking for the missing split is still an error that names it.
    assert main([*args, "--split", "test"]) == 1
    assert "no labelled rows in split test" in capsys.readouterr().err


def test_default_split_prefers_test(folder_manifest, checkpoint):
    report = evaluate(folder_manifest, checkpoint, device="cpu", progress=False)
    assert report.split == "val" and report.split_source.startswith("default")
    assert {r.split for r in report.rows} == {"val"}

    with_test = _with_splits(folder_manifest, folder_manifest.with_name("with_test.csv"),
                             lambda i, row: "test" if i == 0 else row["split"])  # fmt: skip
    rows, split, source = select_rows(with_test)
    assert split == "test" and source == "default" and len(rows) == 1
    given = evaluate(with_test, checkpoint, split="train", device="cpu", progress=False)
    assert given.split == "train" and given.split_source == "given"

    train_only = _with_splits(folder_manifest, folder_manifest.with_name("train_only.csv"), lambda i, row: "train")
    with pytest.raises(FakelensError, match=r"no labelled rows in split test or val.*--split.*found: train"):
        select_rows(train_only)
    assert len(select_rows(train_only, "all")[0]) == len(select_rows(folder_manifest, "all")[0])
