"""``fakelens train --manifest M.csv --out RUN_DIR``: train the MobileNetV2 classifier on a manifest of face crops.

Runs on one process, or on several under ``torchrun --nproc_per_node N -m fakelens train ...``
(DistributedDataParallel; gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

# TrainConfig's defaults, repeated here so that `fakelens --help` does not import torch (a test keeps them equal).
DEFAULTS = {
    "fakes": "dataset", "epochs": 10, "batch_size": 32, "lr": 3e-4, "backbone_lr_mult": 0.1, "weight_decay": 0.01, "warmup_epochs": 1.0,
    "min_lr_ratio": 0.01, "grad_clip": 1.0, "freeze_backbone_epochs": 1, "freeze_blocks": 0, "backbone_params": "all", "bn": "auto", "patience": 5, "seed": 0,
    "sbi_share": 0.5, "hidden": 256, "dropout": 0.3, "threshold_criterion": "balanced_accuracy", "device": "auto",
    "workers": 2,
}  # fmt: skip
FAKES_MODES = ("dataset", "sbi", "both")
BN_MODES = ("auto", "train", "frozen")
BACKBONE_PARAMS = ("all", "norm")

# Options that are None unless given, so that --resume can tell which ones the user set.
_RESULT_AFFECTING = [
    "manifest", "init", "fakes", "epochs", "batch_size", "lr", "backbone_lr_mult", "weight_decay", "warmup_epochs", "min_lr_ratio",
    "grad_clip", "freeze_backbone_epochs", "freeze_blocks", "backbone_params", "bn", "patience", "seed", "samples_per_epoch", "max_train_images",
    "max_val_images", "sbi_share", "hidden", "dropout", "threshold_criterion",
]  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    d = argparse.Namespace(**DEFAULTS)
    parser = subparsers.add_parser(
        "train",
        help="train the classifier on a manifest (checkpoints, log.jsonl, plots in RUN_DIR)",
        description=(
            "Train the MobileNetV2 deepfake classifier on the train split of a manifest, select it on the val "
            "split (AUC) and store the decision threshold chosen on validation in best.pt. "
            "Multi-process: torchrun --nproc_per_node N -m fakelens train ..."
        ),
    )
    parser.add_argument("--manifest", type=Path, help="manifest CSV from `fakelens preprocess` (required unless --resume)")
    parser.add_argument("--out", type=Path, required=True, help="run folder for last.pt, best.pt, log.jsonl, loss.png, auc.png")
    init = parser.add_mutually_exclusive_group()
    init.add_argument("--init", help="initial weights: a torchvision mobilenet_v2 state dict (.pth) or a fakelens checkpoint")
    init.add_argument("--pretrained", choices=["imagenet"], help="torchvision's ImageNet weights (downloads on first use)")
    parser.add_argument("--fakes", choices=FAKES_MODES, help=f"fake samples: manifest fakes, self-blended images, or both (default {d.fakes})")
    parser.add_argument("--epochs", type=int, help=f"maximum epochs (default {d.epochs})")
    parser.add_argument("--batch-size", type=int, help=f"batch size per process (default {d.batch_size})")
    parser.add_argument("--lr", type=float, help=f"peak learning rate of AdamW for the head (default {d.lr})")
    parser.add_argument("--backbone-lr-mult", type=float,
                        help=f"backbone learning rate as a fraction of --lr (default {d.backbone_lr_mult})")
    parser.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default {d.weight_decay})")
    parser.add_argument("--warmup-epochs", type=float, help=f"linear LR warm-up length in epochs (default {d.warmup_epochs})")
    parser.add_argument("--min-lr-ratio", type=float, help=f"final LR of the cosine decay, fraction of the peak (default {d.min_lr_ratio})")
    parser.add_argument("--grad-clip", type=float, help=f"max gradient norm, 0 = off (default {d.grad_clip})")
    parser.add_argument("--freeze-backbone-epochs", type=int, help=f"epochs training only the head (default {d.freeze_backbone_epochs})")
    parser.add_argument("--freeze-blocks", type=int,
                        help=f"first N of MobileNetV2's 19 feature blocks never train; no backward through them (default {d.freeze_blocks})")
    parser.add_argument("--backbone-params", choices=BACKBONE_PARAMS,
                        help=f"backbone parameters that train: all, or only batch norm weights and biases (BlenD) (default {d.backbone_params})")
    parser.add_argument("--bn", choices=BN_MODES, help=f"backbone batch norm: auto = frozen when batch < 32 (default {d.bn})")
    parser.add_argument("--patience", type=int, help=f"early stopping after this many epochs without better val AUC, 0 = off (default {d.patience})")
    parser.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    parser.add_argument("--samples-per-epoch", type=int, help="draws per epoch (default: number of training items)")
    parser.add_argument("--max-train-images", type=int, help="use at most this many training crops (seeded subset; default all)")
    parser.add_argument("--max-val-images", type=int, help="use at most this many validation crops (default all)")
    parser.add_argument("--sbi-share", type=float, help=f"share of fakes that are self-blended with --fakes both (default {d.sbi_share})")
    parser.add_argument("--hidden", type=int, help=f"width of the head's hidden layer (default {d.hidden})")
    parser.add_argument("--dropout", type=float, help=f"head dropout (default {d.dropout})")
    parser.add_argument("--threshold-criterion", choices=["balanced_accuracy", "f1"],
                        help=f"what the validation threshold maximises (default {d.threshold_criterion})")
    parser.add_argument("--no-augment", action="store_true", help="turn data augmentation off (default on)")
    parser.add_argument("--no-sbi-pairs", action="store_true",
                        help="with --fakes sbi, draw reals and pseudo-fakes independently instead of in pairs (default pairs)")
    parser.add_argument("--no-amp", action="store_true", help="turn mixed precision off on CUDA (default on)")
    parser.add_argument("--device", default=d.device, help=f"auto, cpu, cuda, cuda:1 ... (default {d.device})")
    parser.add_argument("--workers", type=int, default=d.workers, help=f"data loader processes per training process (default {d.workers})")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per training process (default: one per core; 1 is faster on a busy shared machine)")
    parser.add_argument("--stop-after", type=int, default=None,
                        help="end this invocation after N epochs; continue later with --resume (default: run to the end)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out exactly where last.pt left it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fakelens.train import TrainConfig, TrainingError, train

    given = {name: getattr(args, name) for name in _RESULT_AFFECTING if getattr(args, name) is not None}
    if args.pretrained:
        given["init"] = args.pretrained
    if args.no_augment:
        given["augment"] = False
    if args.no_amp:
        given["amp"] = False
    if args.no_sbi_pairs:
        given["sbi_pairs"] = False
    runtime = {"out": str(args.out), "device": args.device, "workers": args.workers, "threads": args.threads, "stop_after": args.stop_after,
               "progress": not args.no_progress, "resume": args.resume}  # fmt: skip
    if args.resume:
        if given:
            log.warning("--resume uses the run's saved settings; ignoring: %s", ", ".join(sorted(given)))
        config = TrainConfig(manifest="(from checkpoint)", **runtime)
    else:
        if args.manifest is None:
            raise TrainingError("--manifest is required (unless --resume)")
        given["manifest"] = str(args.manifest)
        config = TrainConfig(**given, **runtime)
    result = train(config)
    summary = {k: v for k, v in result.to_dict().items() if k != "history"}
    print(json.dumps(summary, indent=2))
    return 0
