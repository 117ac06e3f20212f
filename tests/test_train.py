"""Training: the model fits a tiny set of real face crops, checkpoints round-trip, resumption is exact, DDP runs."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from shared_paths import IMAGENET_WEIGHTS

from fakelens.checkpoint import load_checkpoint, load_model, save_checkpoint
from fakelens.data import (
    BalancedSampler,
    ManifestError,
    kind_weights,
    load_crop,
    manifest_from_face_images,
    normalize_batch,
    read_manifest,
    split_by_group,
)
from fakelens.errors import CheckpointError, FakelensError
from fakelens.evaluate import predict_manifest
from fakelens.metrics import roc_auc
from fakelens.model import DeepfakeClassifier, load_backbone_weights, preprocess_crops
from fakelens.train import TrainConfig, TrainingError, lr_factor, train

WEIGHTS = IMAGENET_WEIGHTS


def make_manifest(shared_data: Path, out_dir: Path, n_train: int = 4, n_val: int = 2, n_test: int = 0) -> Path:
    """A manifest of DFDC face crops (one leakage group per crop): n per class in each split."""
    with open(shared_data / "media.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["path"].startswith("images/dfdc/cvit__")]
    entries = []
    for label in ("real", "fake"):
        pool, seen = [], set()
        for r in rows:  # one crop per group, so splits are leakage-free by construction
            if r["label"] == label and r["group"] not in seen:
                seen.add(r["group"])
                pool.append(r)
        splits = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
        for r, split in zip(pool, splits):
            entries.append(
                dict(
                    path=shared_data / r["path"],
                    label=label,
                    split=split,
                    group=r["group"],
                    video=r["group"],
                    method=r["method"] or "",
                    dataset=r["dataset"],
                )  # fmt: skip
            )
    return manifest_from_face_images(entries, out_dir)


@pytest.fixture(scope="module")
def manifest(shared_data, tmp_path_factory) -> Path:
    return make_manifest(shared_data, tmp_path_factory.mktemp("crops"))


def _weights():
    if not WEIGHTS.is_file():
        pytest.skip(f"needs {WEIGHTS}")
    return str(WEIGHTS)


def _config(manifest: Path, out: Path, **overrides) -> TrainConfig:
    values = dict(manifest=str(manifest), out=str(out), init=_weights(), batch_size=4, workers=0, progress=False, device="cpu")
    values.update(overrides)
    return TrainConfig(**values)


# --------------------------------------------------------------------------- fast unit checks


def test_manifest_reading_and_group_split(manifest):
    rows = read_manifest(manifest)
    assert len(rows) == 12 and {r.split for r in rows} == {"train", "val"}
    assert all(r.crop_path.is_file() for r in rows)
    assert read_manifest(manifest, split="val")[0].split == "val"
    groups = [f"g{i % 7}" for i in range(40)]
    labels = ["real" if i % 2 else "fake" for i in range(40)]
    assignment = split_by_group(groups, seed=3, labels=labels)
    assert set(assignment) == set(groups)  # every group on exactly one side
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(manifest.parent / "nope.csv")
    with pytest.raises(ManifestError, match="no labelled rows"):
        read_manifest(manifest, split="test")


def test_normalisation_matches_model_preprocessing(manifest):
    row = read_manifest(manifest)[0]
    image, _ = load_crop(row)
    expected = preprocess_crops(image[None])
    got = normalize_batch(torch.from_numpy(image).permute(2, 0, 1)[None].contiguous())
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_balanced_sampler_balances_and_shards():
    kinds = ["real"] * 90 + ["fake"] * 10
    sampler = BalancedSampler(kind_weights(kinds), 2000, seed=1)
    drawn = [i for i, _ in sampler]
    assert 0.4 < np.mean(np.array(drawn) >= 90) < 0.6  # the 10% class is drawn about half the time
    shards = [list(BalancedSampler(kind_weights(kinds), 10, seed=1, rank=r, world_size=2)) for r in (0, 1)]
    positions = sorted(p for shard in shards for _, p in shard)
    assert positions == list(range(10))  # ranks split one global draw, no overlap
    sampler.set_epoch(1)
    assert [i for i, _ in sampler] != drawn
    both = kind_weights(["real"] * 4 + ["fake"] * 2 + ["sbi"] * 4, sbi_share=0.5)
    assert both[:4].sum() == pytest.approx(0.5) and both[4:6].sum() == pytest.approx(0.25)


def test_lr_schedule_warms_up_then_decays():
    total, warmup = 100, 10
    values = [lr_factor(s, total, warmup, 0.01) for s in range(total + 1)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[-1] == pytest.approx(0.01)


def test_cli_options_are_built_from_train_config(tmp_path):
    """Every TrainConfig field is a `fakelens train` option (or one of its special spellings), with its default in the help."""
    import dataclasses

    from fakelens.cli import build_parser

    parser = build_parser()
    train_parser = next(a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith("train"))
    dests = {a.dest for a in train_parser._actions}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in dests or f.name == "progress", f.name
    help_text = " ".join(train_parser.format_help().split())
    assert "--backbone-params {all,norm}" in help_text and "(default 0.0003)" in help_text


def test_config_file_sets_options_and_the_command_line_wins(tmp_path):
    from fakelens.cli import build_parser
    from fakelens.cli.train import resolve_options

    config = tmp_path / "run.yaml"
    config.write_text("epochs: 3\nbatch-size: 8\nfakes: sbi\naugment: false\n")
    args = build_parser().parse_args(["train", "--config", str(config), "--out", str(tmp_path / "r"), "--epochs", "5"])
    options = resolve_options(args)
    assert options["epochs"] == 5 and options["batch_size"] == 8 and options["fakes"] == "sbi" and options["augment"] is False
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    with pytest.raises(FakelensError, match="unknown option.*epochz"):
        resolve_options(build_parser().parse_args(["train", "--config", str(bad), "--out", str(tmp_path / "r")]))


def test_checkpoint_round_trip_is_exact(manifest, tmp_path):
    torch.manual_seed(0)
    model = DeepfakeClassifier(hidden=64, dropout=0.1)
    load_backbone_weights(model, _weights())
    model.eval()
    config = {"lr": 0.001, "note": "plain", "nested": {"list": [1, 2.5, None]}}
    path = save_checkpoint(tmp_path / "run" / "model.pt", model, epoch=3, config=config, metrics={"auc": 0.9}, threshold=0.37)
    assert not (tmp_path / "run" / "model.pt.tmp").exists()
    raw = torch.load(path, weights_only=True)  # nothing but tensors and primitives inside
    assert raw["format"] == "fakelens-checkpoint" and raw["model_config"] == {"hidden": 64, "dropout": 0.1}

    loaded, info = load_model(path)
    assert info["threshold"] == pytest.approx(0.37) and info["config"] == config and info["name"] == "run"
    assert info["metrics"] == {"auc": 0.9} and info["epoch"] == 3
    crops = np.stack([load_crop(r)[0] for r in read_manifest(manifest)[:3]])
    with torch.inference_mode():
        assert torch.equal(model(preprocess_crops(crops)), loaded(preprocess_crops(crops)))

    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "bad.pt", model, config={"obj": object()})


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_model(tmp_path / "empty.pt")
    (tmp_path / "junk.pt").write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="not a fakelens checkpoint"):
        load_model(_weights())  # an ImageNet state dict: valid torch file, wrong kind
    torch.save({"format": "fakelens-checkpoint", "model_state": {}, "evil": Path("x")}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="refused"):
        load_model(tmp_path / "pickled.pt")
    good = save_checkpoint(tmp_path / "ok.pt", DeepfakeClassifier())
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "cut.pt")


def test_training_refuses_bad_setups(manifest, tmp_path, shared_data):
    with pytest.raises(ManifestError):
        train(_config(tmp_path / "missing.csv", tmp_path / "a"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "last.pt").write_bytes(b"x")
    with pytest.raises(TrainingError, match="--resume"):
        train(_config(manifest, tmp_path / "b"))
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(_config(manifest, tmp_path / "c", resume=True))
    only_real = tmp_path / "real.csv"
    lines = manifest.read_text().splitlines()
    only_real.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if ",real," in ln]) + "\n")
    (tmp_path / "crops").symlink_to(manifest.parent / "crops")
    with pytest.raises(TrainingError, match="FAKE crops"):
        train(_config(only_real, tmp_path / "d"))
    from fakelens.cli import main

    assert main(["train", "--manifest", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "e")]) == 1


# --------------------------------------------------------------------------- real training runs


@pytest.mark.slow
def test_training_fits_tiny_set_and_writes_run(manifest, tmp_path):
    out = tmp_path / "run"
    # Head only (frozen ImageNet backbone), no augmentation or dropout: 8 crops must be memorised.
    config = _config(
        manifest, out, epochs=3, batch_size=8, samples_per_epoch=16, lr=1e-2, warmup_epochs=0, min_lr_ratio=1.0, dropout=0.0,
        freeze_backbone_epochs=3, augment=False, patience=0,
    )  # fmt: skip
    result = train(config)
    assert result.finished and result.epochs_completed == 3
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] * 0.7, losses
    for name in ("last.pt", "best.pt", "log.jsonl", "loss.png", "auc.png"):
        assert (out / name).is_file(), name
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2, 3] and all(e["val_auc"] is not None for e in log)

    model, info = load_model(out / "last.pt")
    train_rows = read_manifest(manifest, split="train")
    scores = predict_manifest(model, train_rows, progress=False)
    targets = np.array([r.target for r in train_rows])
    # The training set is fitted: every fake outscores every real, and the BCE on it is small.
    assert roc_auc(targets, scores) == 1.0, scores
    bce = -np.mean(targets * np.log(scores) + (1 - targets) * np.log(1 - scores))
    assert bce < 0.3, scores

    best, best_info = load_model(out / "best.pt")
    payload = load_checkpoint(out / "best.pt")
    val = payload["metrics"]["val"]
    assert best_info["threshold"] == pytest.approx(val["threshold"]) and 0.0 < best_info["threshold"] < 1.0
    assert payload["epoch"] == result.best_epoch and val["auc"] == pytest.approx(result.best_val_auc)
    assert payload["config"]["seed"] == 0 and payload["config"]["manifest_sha256"]


def _state(path: Path) -> dict:
    return load_checkpoint(path)


@pytest.mark.slow
def test_killed_and_resumed_run_matches_uninterrupted(manifest, tmp_path):
    common = dict(epochs=2, samples_per_epoch=4, freeze_backbone_epochs=1, max_val_images=4, lr=1e-3)
    reference = train(_config(manifest, tmp_path / "ref", **common))
    assert reference.epochs_completed == 2

    # The same run in a child process, killed (SIGKILL, no clean-up) while it trains its second epoch.
    out = tmp_path / "killed"
    args = [
        sys.executable, "-m", "fakelens", "train", "--manifest", str(manifest), "--out", str(out), "--init", _weights(),
        "--epochs", "2", "--samples-per-epoch", "4", "--batch-size", "4", "--freeze-backbone-epochs", "1",
        "--max-val-images", "4", "--lr", "1e-3", "--workers", "0", "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and child.poll() is None:
        log = out / "log.jsonl"
        if log.is_file() and log.read_text().count("\n") >= 1:
            child.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
    assert load_checkpoint(out / "last.pt")["epoch"] == 1

    resumed = train(_config(manifest, out, resume=True))
    assert resumed.epochs_completed == 2 and resumed.finished
    a, b = _state(tmp_path / "ref" / "last.pt"), _state(out / "last.pt")
    for key, tensor in a["model_state"].items():
        assert torch.equal(tensor, b["model_state"][key]), key
    for s_a, s_b in zip(a["optimizer_state"]["state"].values(), b["optimizer_state"]["state"].values()):
        assert torch.equal(s_a["exp_avg"], s_b["exp_avg"])
    strip = [{k: v for k, v in h.items() if "seconds" not in k and "per_s" not in k} for h in reference.history]
    assert [{k: v for k, v in h.items() if "seconds" not in k and "per_s" not in k} for h in resumed.history] == strip
    assert (out / "log.jsonl").read_text().count("\n") == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_cpu_processes(manifest, tmp_path):
    out = tmp_path / "ddp"
    args = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "fakelens", "train", "--manifest", str(manifest), "--out", str(out), "--init", _weights(),
        "--epochs", "2", "--samples-per-epoch", "8", "--batch-size", "2", "--freeze-backbone-epochs", "1",
        "--max-val-images", "4", "--workers", "0", "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = load_checkpoint(out / "last.pt")
    assert payload["extra"]["world_size"] == 2 and len(payload["extra"]["rng"]) == 2
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]
    assert all(e["train_images"] == 8 for e in log)  # 4 per rank, summed over both ranks
    assert log[1]["frozen_backbone"] is False
    model, info = load_model(out / "best.pt")
    assert 0.0 < info["threshold"] < 1.0


@pytest.mark.slow
def test_sbi_pairs_with_frozen_blocks_train_only_the_rest(manifest, tmp_path):
    """SBI-only training in real/pseudo-fake pairs: the first blocks keep their weights exactly, later ones move."""
    out = tmp_path / "sbi"
    config = _config(manifest, out, fakes="sbi", epochs=1, batch_size=4, samples_per_epoch=8, freeze_backbone_epochs=0,
                     freeze_blocks=7, threads=1, patience=0)  # fmt: skip
    result = train(config)
    assert result.finished and result.history[0]["train_images"] == 8
    start = DeepfakeClassifier()
    load_backbone_weights(start, WEIGHTS)
    trained, _ = load_model(out / "last.pt")
    before, after = start.features.state_dict(), trained.features.state_dict()
    frozen = [k for k in before if int(k.split(".")[0]) < 7]
    moving = [k for k in before if int(k.split(".")[0]) >= 7 and k.endswith("weight")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen), "frozen blocks changed (running stats included)"
    assert any(not torch.equal(before[k], after[k]) for k in moving)
    with pytest.raises(TrainingError, match="even"):
        train(_config(manifest, tmp_path / "odd", fakes="sbi", batch_size=3))
    with pytest.raises(TrainingError, match="freeze-blocks"):
        train(_config(manifest, tmp_path / "bad", freeze_blocks=25))


@pytest.mark.slow
def test_norm_only_training_moves_only_batch_norm_affine_parameters(manifest, tmp_path):
    """backbone_params="norm" (BlenD): conv weights stay ImageNet's, batch norm weights/biases and the head move."""
    out = tmp_path / "norm"
    config = _config(manifest, out, fakes="sbi", epochs=1, batch_size=4, samples_per_epoch=8, freeze_backbone_epochs=0,
                     backbone_params="norm", threads=1, patience=0)  # fmt: skip
    train(config)
    start = DeepfakeClassifier()
    load_backbone_weights(start, WEIGHTS)
    trained, _ = load_model(out / "last.pt")
    norms = {name for name, m in start.features.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    before, after = start.features.state_dict(), trained.features.state_dict()
    convs = [k for k in before if k.rsplit(".", 1)[0] not in norms]
    affine = [k for k in before if k.rsplit(".", 1)[0] in norms and k.endswith(("weight", "bias"))]
    assert convs and all(torch.equal(before[k], after[k]) for k in convs), "a convolution weight changed"
    assert any(not torch.equal(before[k], after[k]) for k in affine)
    with pytest.raises(TrainingError, match="backbone-params"):
        train(_config(manifest, tmp_path / "bad", backbone_params="some"))
    from fakelens.train_config import load_config_file

    saved = load_config_file(out / "config.yaml")  # the run folder's resolved config is itself a valid --config
    assert saved["backbone_params"] == "norm" and saved["manifest"] == str(manifest) and saved["samples_per_epoch"] == 8
