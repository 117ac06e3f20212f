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
from fakelens.evaluate import predict_crops  # noqa: E402
from fakelens.metrics import binary_metrics, roc_auc  # noqa: E402
from fakelens.sysinfo import describe_machine  # noqa: E402


def _mixed_val_logits(model, manifest, seed: int, masks: list[str], colours: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """REAL logits once, then the pseudo-fakes of every mask and colour change (all from the same keyed draws)."""
    parts = [_val_logits(model, manifest, seed=seed, mask=mask, colour=colour) for mask in masks for colour in colours]
    logits, targets = parts[0]
    for more_logits, more_targets in parts[1:]:
        logits = np.concatenate([logits, more_logits[more_targets == 1]])
        targets = np.concatenate([targets, more_targets[more_targets == 1]])
    return logits, targets


def _perturbed_val_items(manifest, seed: int, name: str) -> tuple[list[np.ndarray], np.ndarray, int]:
    """The selection items (REAL + fixed five-point SBI copies) under perturbation ``name``: images, targets, and how
    many items were dropped because the perturbed image held no face."""
    from fakelens.data import PURPOSE_EVAL_SBI, CropDataset, read_manifest
    from fakelens.mtcnn import MTCNN
    from fakelens.robustness import perturb_crops
    from fakelens.train import build_val_items

    rows = read_manifest(manifest, split="val")
    items, _ = build_val_items(rows, "sbi")
    dataset = CropDataset(rows, items, seed=seed, purpose=PURPOSE_EVAL_SBI)
    detector = MTCNN(min_face_size=20)
    images, targets = [], []
    for i in range(len(dataset)):
        image, target = dataset.get_image(i)
        out = perturb_crops(name, [image], detector)[0]
        if out is not None:
            images.append(out)
            targets.append(target)
    return images, np.asarray(targets), len(dataset) - len(images)


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
    parser.add_argument(
        "--sbi-colour",
        default="paper",
        help="comma list of SBI colour changes for the fixed pseudo-fakes (paper, strong); with several, as --sbi-mask (default paper)",
    )
    parser.add_argument(
        "--perturbation",
        default="none",
        help="score the selection items under one perturbation of fakelens.robustness"
        " (e.g. tight_crop: the face box re-detected and mirror-filled, as predict sees a tight face-crop clip; default none)",
    )
    parser.add_argument("checkpoints", nargs="+", metavar="NAME=PATH")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| model | val AUC | val AP | items | checkpoint |\n|---|---:|---:|---:|---|")
    perturbed = None
    for spec in args.checkpoints:
        name, _, path = spec.partition("=")
        model, _ = load_model(path, device="cpu")
        if args.perturbation == "none":
            logits, targets = _mixed_val_logits(model, args.manifest, args.seed, args.sbi_mask.split(","), args.sbi_colour.split(","))
        else:
            if perturbed is None:
                perturbed = _perturbed_val_items(args.manifest, args.seed, args.perturbation)
            scores = predict_crops(model, perturbed[0])
            logits, targets = np.log(np.clip(scores, 1e-7, 1) / np.clip(1 - scores, 1e-7, 1)), perturbed[1]
        metrics = binary_metrics(targets, 1 / (1 + np.exp(-logits)), 0.5)
        print(f"| {name} | {roc_auc(targets, logits):.4f} | {metrics.ap:.4f} | {len(targets)} | {path} |", flush=True)
    lost = "" if perturbed is None else f", {perturbed[2]} items without a face after it dropped"
    setting = f"SBI seed {args.seed}, masks {args.sbi_mask}, colours {args.sbi_colour}, perturbation {args.perturbation}{lost}"
    print(f"\nmanifest {args.manifest} split val, {setting}; {describe_machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
