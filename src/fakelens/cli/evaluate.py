"""``fakelens evaluate --manifest M.csv --checkpoint C.pt``: frame- and video-level metrics of a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

from fakelens.constants import AGGREGATIONS, SPLITS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="AUC, AP, EER, accuracy/precision/recall/F1 of a checkpoint on a manifest split (JSON + plots)",
        description=(
            "Score a manifest split with a checkpoint and report frame- and video-level metrics, overall, per "
            "dataset and per manipulation method, at the threshold chosen on validation (stored in the checkpoint)."
        ),
    )
    parser.add_argument("--manifest", type=Path, required=True, help="manifest CSV")
    parser.add_argument("--checkpoint", type=Path, required=True, help="fakelens checkpoint, e.g. RUN_DIR/best.pt")
    parser.add_argument(
        "--split", default=None, choices=[*SPLITS, "all"], help="split to evaluate (default: test, or val when the manifest has no test rows)"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for report.json, predictions.csv and plots (default: print only)")
    parser.add_argument(
        "--aggregate",
        choices=AGGREGATIONS,
        default=AGGREGATIONS[0],
        help="video-level aggregation of frame scores (default mean; confident = DFDC winner's strategy)",
    )
    parser.add_argument(
        "--threshold", type=float, default=None, help="override the checkpoint's validation threshold (default: use the checkpoint's)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="crops per forward pass (default 64)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda ... (default auto)")
    parser.add_argument("--workers", type=int, default=0, help="data loader processes (default 0)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fakelens.evaluate import evaluate, format_summary, write_report

    report = evaluate(
        args.manifest, args.checkpoint, split=args.split, aggregate=args.aggregate, batch_size=args.batch_size,
        device=args.device, workers=args.workers, threshold=args.threshold,
    )  # fmt: skip
    print(format_summary(report))
    if args.out is not None:
        paths = write_report(report, args.out, plots=not args.no_plots)
        print(f"report: {paths['report']}")
    return 0
