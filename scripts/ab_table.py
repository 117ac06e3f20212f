"""One Markdown table of finished training runs side by side: what trained, images, wall time, img/s and validation
AUC, and the AUC gained above chance per CPU-hour (the measure #10 chooses the trainable layers by).

    .venv/bin/python scripts/ab_table.py runs/ab-all runs/ab-freeze7 runs/ab-norm [--cores 1]

Each run's own validation (log.jsonl) is read as training wrote it: runs compared here must share the manifest,
the seed and the SBI settings of their validation, or the column means nothing (the script says when they differ).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

#: Config fields that must agree for the runs' validation AUCs to be comparable.
SAME_VALIDATION = ("manifest", "seed", "fakes", "sbi_mask", "max_val_images")


def _trainable(cfg: dict) -> str:
    if cfg.get("backbone_params") == "norm":
        return "backbone batch norm only + head (BlenD)"
    frozen = int(cfg.get("freeze_blocks") or 0)
    return f"blocks {frozen}-18 + head (first {frozen} frozen)" if frozen else "every layer"


def summarise(run: Path, cores: float) -> dict:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    epochs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    if not epochs:
        raise SystemExit(f"{run}: no finished epoch in log.jsonl")
    seconds = sum(e["seconds"] for e in epochs)
    images = sum(e["train_images"] for e in epochs)
    best = max(epochs, key=lambda e: e["val_auc"])
    return {
        "run": run.name,
        "trainable": _trainable(cfg),
        "images": images,
        "minutes": seconds / 60,
        "img_s": images / seconds,
        "val_auc": best["val_auc"],
        "val_ap": best["val_ap"],
        "gain_per_cpu_hour": (best["val_auc"] - 0.5) / (seconds * cores / 3600),
        "config": cfg,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (config.yaml + log.jsonl)")
    parser.add_argument("--cores", type=float, default=1.0, help="cores each run had, for CPU-hours (default 1: one torch thread on a shared core)")
    args = parser.parse_args(argv)
    rows = [summarise(run, args.cores) for run in args.runs]
    print("| run | trains | images | wall min | img/s | val AUC | val AP | (AUC - 0.5) per CPU-hour |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['run']} | {r['trainable']} | {r['images']:,} | {r['minutes']:.1f} | {r['img_s']:.1f} | "
            f"{r['val_auc']:.3f} | {r['val_ap']:.3f} | {r['gain_per_cpu_hour']:.2f} |"
        )
    differ = [k for k in SAME_VALIDATION if len({str(r["config"].get(k)) for r in rows}) > 1]
    if differ:
        print(f"\nwarning: the runs' validations differ in {', '.join(differ)}: their val AUCs are not comparable", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
