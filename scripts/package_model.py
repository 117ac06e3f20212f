"""Turn a training run's best checkpoint into the bundled default model.

    .venv/bin/python scripts/package_model.py runs/default/best.pt [--eval runs/default/eval-val/report.json]

Writes src/fakelens/weights/default.pt (weights, config, threshold and validation metrics only:
no optimiser state) and default.json (its sha256, checked by Detector.default(), and a summary).
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
    args = parser.parse_args()

    payload = load_checkpoint(args.checkpoint)
    model = DeepfakeClassifier(**payload.get("model_config", {}))
    model.load_state_dict(payload["model_state"])
    DEFAULT_MODEL.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        DEFAULT_MODEL, model, epoch=payload.get("epoch", 0), config=payload.get("config"),
        metrics=payload.get("metrics"), threshold=payload.get("threshold"), name=args.name,
    )
    record = {
        "name": args.name,
        "file": DEFAULT_MODEL.name,
        "sha256": sha256_file(DEFAULT_MODEL),
        "bytes": DEFAULT_MODEL.stat().st_size,
        "epoch": payload.get("epoch"),
        "threshold": payload.get("threshold"),
        "validation": payload.get("metrics"),
    }
    if args.eval:
        record["evaluation"] = json.loads(args.eval.read_text())
    atomic.write_json(DEFAULT_MODEL_RECORD, record)
    print(f"wrote {DEFAULT_MODEL} ({record['bytes'] / 1e6:.1f} MB, sha256 {record['sha256'][:16]}...) and {DEFAULT_MODEL_RECORD}")


if __name__ == "__main__":
    main()
