"""``fakelens train --manifest M.csv --out RUN_DIR``: train the MobileNetV2 classifier on a manifest of face crops.

Every option is a field of :class:`fakelens.train_config.TrainConfig`; ``--config FILE.yaml`` sets any of
them from a file, and options given on the command line win over the file. The resolved configuration is
saved in the run folder as ``config.yaml``.

Runs on one process, or on several under ``torchrun --nproc_per_node N -m fakelens train ...``
(DistributedDataParallel; gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from fakelens.train_config import RUNTIME_FIELDS, add_arguments, field_help, load_config_file

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the classifier on a manifest (checkpoints, config.yaml, log.jsonl, plots in RUN_DIR)",
        description=(
            "Train the MobileNetV2 deepfake classifier on the train split of a manifest, select it on the val "
            "split (AUC) and store the decision threshold chosen on validation in best.pt. "
            "Multi-process: torchrun --nproc_per_node N -m fakelens train ..."
        ),
    )
    parser.add_argument("--manifest", type=Path, help=field_help("manifest"))
    parser.add_argument("--out", type=Path, required=True, help=field_help("out"))
    parser.add_argument("--config", type=Path, metavar="FILE.yaml",
                        help="options from a YAML or JSON file (TrainConfig field names; the command line wins)")  # fmt: skip
    init = parser.add_mutually_exclusive_group()
    init.add_argument("--init", help="initial weights: a torchvision mobilenet_v2 state dict (.pth) or a fakelens checkpoint")
    init.add_argument("--pretrained", choices=["imagenet"], help="torchvision's ImageNet weights (downloads on first use)")
    add_arguments(parser)
    parser.add_argument("--resume", action="store_true", help=field_help("resume"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def resolve_options(args: argparse.Namespace) -> dict:
    """TrainConfig keyword arguments: the --config file's, then the command line's on top."""
    from fakelens.train_config import TrainConfig

    given = load_config_file(args.config) if args.config else {}
    names = {f for f in TrainConfig.__dataclass_fields__}
    for name in names:
        value = getattr(args, name, None)
        if value is not None and name not in ("resume",):
            given[name] = str(value) if isinstance(value, Path) else value
    if args.pretrained:
        given["init"] = args.pretrained
    if args.no_progress:
        given["progress"] = False
    given["resume"] = bool(args.resume)
    return given


def run(args: argparse.Namespace) -> int:
    from fakelens.train import TrainConfig, TrainingError, train

    given = resolve_options(args)
    if args.resume:
        ignored = sorted(k for k in given if k not in RUNTIME_FIELDS and k != "manifest")
        if ignored:
            log.warning("--resume uses the run's saved settings; ignoring: %s", ", ".join(ignored))
        config = TrainConfig(manifest="(from checkpoint)", **{k: v for k, v in given.items() if k in RUNTIME_FIELDS})
    else:
        if not given.get("manifest"):
            raise TrainingError("--manifest is required (on the command line or in --config), unless --resume")
        config = TrainConfig(**given)
    result = train(config)
    summary = {k: v for k, v in result.to_dict().items() if k != "history"}
    print(json.dumps(summary, indent=2))
    return 0
