"""``fakelens scan SOURCE... --out RESULTS``: a collection of images and videos -> Parquet tables, resumably."""

from __future__ import annotations

import argparse
from pathlib import Path

from fakelens.constants import AGGREGATIONS, DEFAULT_FRAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="verdicts for a whole collection into Parquet tables, resumably, on this machine or a Ray cluster",
        description=(
            "Scan folders, files and lists of paths (.txt: one per line; .csv: a 'path' column and an optional 'label' column) "
            "into RESULTS/results.parquet (one row per input), RESULTS/faces.parquet (one row per face) and RESULTS/summary.json. "
            "Finished inputs are kept in RESULTS/parts/ by content hash: rerunning the same command skips them."
        ),
    )
    parser.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="folders, image/video files, or .txt/.csv lists of paths")
    parser.add_argument("--out", type=Path, required=True, metavar="RESULTS", help="output folder (created; reused to resume)")
    parser.add_argument("--engine", choices=["local", "ray"], default="local", help="local: a process pool on this machine (default); ray: Ray Data")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local: processes, each with its own model (default 2 on 2 cores, half the cores beyond); ray: classifier actors (default 1)",
    )
    parser.add_argument("--address", default=None, help="ray: a running cluster to join (host:6379 or auto); default: start a local instance")
    parser.add_argument("--num-cpus", type=int, default=None, help="ray: CPUs of the local instance it starts (default: all)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="model checkpoint (default: the bundled model)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help=f"frames sampled per video (default {DEFAULT_FRAMES})")
    parser.add_argument("--threshold", type=float, default=None, help="P(fake) for a FAKE verdict (default: the model's)")
    parser.add_argument(
        "--aggregate", choices=AGGREGATIONS, default=None, help="how frame scores make a video score (default: the model's, else mean)"
    )
    parser.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto", help="classifier engine (default auto)")
    parser.add_argument("--device", default=None, help="local: cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--retry-errors", action="store_true", help="scan inputs that were ERROR rows again")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-plot", action="store_true", help="skip RESULTS/scores.png")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fakelens.scan import ScanSettings, scan

    settings = ScanSettings(
        checkpoint=str(args.checkpoint) if args.checkpoint else None,
        frames=args.frames,
        threshold=args.threshold,
        aggregate=args.aggregate,
        backend=args.backend,
        device=args.device,
    )
    summary = scan(
        args.sources,
        args.out,
        settings,
        engine=args.engine,
        workers=args.workers,
        address=args.address,
        num_cpus=args.num_cpus,
        retry_errors=args.retry_errors,
        progress=not args.no_progress,
        plot=not args.no_plot,
    )
    print(summary.text())
    return 0
