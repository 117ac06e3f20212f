"""Turn a training run's best checkpoint into the bundled default model.

    .venv/bin/python scripts/package_model.py runs/sbi-stage3/best.pt --name fakelens-default-v3 \
        --calibrate runs/faces/manifest.csv [--eval report.json]

Writes src/fakelens/weights/default.pt (weights, config, threshold and validation metrics only:
no optimiser state) and default.json (its sha256, checked by Detector.default(), and a summary).

A checkpoint chosen by ``scripts/select_v6.py`` (``winner.pt``) already carries its temperature (folded), its
threshold and how it is meant to run (``extra.inference``: flip TTA, frame aggregation), all fitted on the
selection half of the dev pool: package it without ``--calibrate``.

``--calibrate M.csv`` fits a temperature on the *validation* split of M (REAL crops and a fixed
self-blended copy of each, as training validates; :mod:`fakelens.calibration`) and folds it into the last
layer, so every backend serves calibrated P(fake); the validation threshold is carried over to the same
decision (``sigmoid(logit(t) / T)``), so verdicts do not change.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fakelens import atomic
from fakelens.checkpoint import load_checkpoint, save_checkpoint, sha256_file
from fakelens.detector import DEFAULT_MODEL, DEFAULT_MODEL_RECORD
from fakelens.model import DeepfakeClassifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="best.pt of a fakelens train run")
    parser.add_argument("--name", default="fakelens-default-v1", help="model name shown to users")
    parser.add_argument("--eval", type=Path, default=None, help="evaluation report.json to summarise in the record")
    parser.add_argument("--calibrate", type=Path, default=None, help="manifest whose val split fits the temperature (default: none)")
    args = parser.parse_args()

    payload = load_checkpoint(args.checkpoint)
    model = DeepfakeClassifier(**payload.get("model_config", {}))
    model.load_state_dict(payload["model_state"])
    model.eval()
    threshold = payload.get("threshold")
    inference = dict((payload.get("extra") or {}).get("inference") or {})
    calibration = (payload.get("metrics") or {}).get("selection", {}).get("calibration")
    if args.calibrate is not None:
        import math

        from fakelens.calibration import expected_calibration_error, fit_temperature, fold_temperature
        from fakelens.data import PURPOSE_EVAL_SBI, CropDataset, read_manifest
        from fakelens.evaluate import score_dataset, sigmoid
        from fakelens.train import build_val_items

        rows = read_manifest(args.calibrate, split="val")
        items, fakes = build_val_items(rows, payload.get("config", {}).get("fakes", "sbi"))
        dataset = CropDataset(rows, items, seed=int(payload.get("config", {}).get("seed", 0)), purpose=PURPOSE_EVAL_SBI)
        logits = score_dataset(model, dataset, batch_size=64, device="cpu", progress=True, desc="calibrating")
        temperature = fit_temperature(logits, dataset.targets)
        fold_temperature(model, temperature)
        if threshold is not None:
            t = min(max(float(threshold), 1e-7), 1 - 1e-7)
            threshold = 1.0 / (1.0 + math.exp(-math.log(t / (1 - t)) / temperature))
        calibration = {
            "temperature": temperature,
            "fitted_on": f"{args.calibrate} split val: {len(rows)} REAL crops + their fixed {fakes} fakes",
            "ece_val_before": expected_calibration_error(sigmoid(logits), dataset.targets),
            "ece_val_after": expected_calibration_error(sigmoid(logits / temperature), dataset.targets),
            "threshold_before": payload.get("threshold"),
            "threshold_after": threshold,
        }
        print(
            f"temperature {temperature:.3f}: val ECE {calibration['ece_val_before']:.4f} -> {calibration['ece_val_after']:.4f}; "
            f"threshold {payload.get('threshold'):.4f} -> {threshold:.4f}"
        )
    DEFAULT_MODEL.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        DEFAULT_MODEL,
        model,
        epoch=payload.get("epoch", 0),
        config=payload.get("config"),
        metrics=payload.get("metrics"),
        threshold=threshold,
        # How the model is meant to run (flip TTA, frame aggregation), where its chooser recorded it.
        extra={"inference": inference} if inference else None,
        name=args.name,
    )
    record = {
        "name": args.name,
        "file": DEFAULT_MODEL.name,
        "sha256": sha256_file(DEFAULT_MODEL),
        "bytes": DEFAULT_MODEL.stat().st_size,
        "epoch": payload.get("epoch"),
        "threshold": threshold,
        "validation": payload.get("metrics"),
        "calibration": calibration,
        "inference": inference,
    }
    if args.eval:
        record["evaluation"] = json.loads(args.eval.read_text())
    atomic.write_json(DEFAULT_MODEL_RECORD, record)
    print(f"wrote {DEFAULT_MODEL} ({record['bytes'] / 1e6:.1f} MB, sha256 {record['sha256'][:16]}...) and {DEFAULT_MODEL_RECORD}")


if __name__ == "__main__":
    main()
