"""Validation AUC of several checkpoints on one selection split: REAL crops of a manifest's val split against a
fixed self-blended copy of each (seed 0), as training validates. This is how a shipped model is chosen: never
on the dev pool, which stays the test set.

    .venv/bin/python scripts/val_auc.py --manifest runs/faces/manifest.csv v2=src/fakelens/weights/default.pt v3=runs/v3.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from generalisation import _val_logits  # noqa: E402

from fakelens.checkpoint import load_model  # noqa: E402
from fakelens.metrics import binary_metrics, roc_auc  # noqa: E402
from fakelens.sysinfo import describe_machine  # noqa: E402


def _mixed_val_logits(model, manifest, seed: int, masks: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """REAL logits once, then the pseudo-fakes of every mask (all from the same keyed draws)."""
    parts = [_val_logits(model, manifest, seed=seed, mask=mask) for mask in masks]
    logits, targets = parts[0]
    for more_logits, more_targets in parts[1:]:
        logits = np.concatenate([logits, more_logits[more_targets == 1]])
        targets = np.concatenate([targets, more_targets[more_targets == 1]])
    return logits, targets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True, help="manifest whose val split selects (REAL + fixed SBI)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fixed SBI copies (default 0, as fakelens-default-v2 chose)")
    parser.add_argument(
        "--sbi-mask",
        default="five",
        help="comma list of SBI masks for the fixed pseudo-fakes (five, dense); with several, the REAL crops count once"
        " against every mask's copies, a selection split fair to models trained with either mask (default five)",
    )
    parser.add_argument("checkpoints", nargs="+", metavar="NAME=PATH")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| model | val AUC | val AP | items | checkpoint |\n|---|---:|---:|---:|---|")
    for spec in args.checkpoints:
        name, _, path = spec.partition("=")
        model, _ = load_model(path, device="cpu")
        logits, targets = _mixed_val_logits(model, args.manifest, args.seed, args.sbi_mask.split(","))
        metrics = binary_metrics(targets, 1 / (1 + np.exp(-logits)), 0.5)
        print(f"| {name} | {roc_auc(targets, logits):.4f} | {metrics.ap:.4f} | {len(targets)} | {path} |", flush=True)
    print(f"\nmanifest {args.manifest} split val, SBI seed {args.seed}, masks {args.sbi_mask}; {describe_machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
