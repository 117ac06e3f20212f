"""``fakelens predict PATH...``: verdicts for image and video files or folders."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fakelens.constants import AGGREGATIONS, DEFAULT_FRAMES, DEFAULT_KEYFRAMES, KEYFRAME_MODES, TTA_MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="REAL / FAKE verdicts for images and videos (files or folders)",
        description="Sample frames, find faces, score them with the classifier and print a verdict per input.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image/video files or folders")
    parser.add_argument("--checkpoint", type=Path, default=None, help="model checkpoint (default: the bundled model)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help=f"frames sampled per video (default {DEFAULT_FRAMES})")
    parser.add_argument("--threshold", type=float, default=None, help="P(fake) for a FAKE verdict (default: the model's)")
    parser.add_argument(
        "--aggregate", choices=AGGREGATIONS, default=None, help="how frame scores make a video score (default: the model's own, else mean)"
    )
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        default=None,
        help="flip: score each face and its mirror image, twice the classifier's work (default: the model's own, else none)",
    )
    parser.add_argument(
        "--backend", choices=["auto", "onnx", "torch"], default="auto", help="classifier engine (default auto: ONNX Runtime on CPU when installed)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="decode, find faces and score one after the other, file by file (default: overlapped in threads, "
        "the next file decoding while this one is scored; same results)",
    )
    parser.add_argument(
        "--keyframes",
        choices=KEYFRAME_MODES,
        default=DEFAULT_KEYFRAMES,
        help="auto: sample only keyframes when they are dense enough to stand in for the frames asked for (recorded as "
        f"'sampling' in --details; keyframes are coded better, which shifts scores); never: decode those frames (default {DEFAULT_KEYFRAMES})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per input per line")
    parser.add_argument("--details", action="store_true", help="with --json: add per-face scores and timings")
    parser.set_defaults(func=run)


def expand(paths: list[Path]) -> list[Path]:
    """Files as given (their content decides what they are); folders walked recursively, in sorted order, for
    every file whose name or first bytes say image or video (:func:`fakelens.folders.walk_media`). What a walk
    leaves out is said on stderr, with the reason."""
    from fakelens.folders import describe_skipped, walk_media

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            media, skipped = walk_media(path)
            found.extend(media)
            if skipped:
                print(f"fakelens: {path}: {describe_skipped(skipped)}", file=sys.stderr)
        else:
            found.append(path)
    return found


def run(args: argparse.Namespace) -> int:
    from fakelens.detector import Detector
    from fakelens.errors import FakelensError

    options = dict(
        num_frames=args.frames,
        threshold=args.threshold,
        aggregate=args.aggregate,
        tta=args.tta,
        backend=args.backend,
        device=args.device,
        overlap=not args.sequential,
        keyframes=args.keyframes,
    )
    detector = Detector.from_checkpoint(args.checkpoint, **options) if args.checkpoint else Detector.default(**options)
    inputs = expand(args.paths)
    if not inputs:
        print("fakelens: no image or video found in the given paths", file=sys.stderr)
        return 2
    failed = 0
    if not args.json:
        print(f"model: {detector.name} (threshold {detector.threshold:.3f}, {detector.classify.name})")
        print(f"{'verdict':8} {'P(fake)':>8} {'frames':>6} {'faces':>5} {'seconds':>7}  path")
    for path, outcome in detector.predict_many(inputs):
        result = None if isinstance(outcome, FakelensError) else outcome
        if result is None:
            failed += 1
            row = {"path": str(path), "label": "ERROR", "score": None, "frames": 0, "faces": 0, "error": getattr(outcome, "reason", str(outcome))}
        else:
            row = {"path": str(path), "label": result.label, "score": result.score, "frames": result.frames, "faces": result.num_faces, "error": None}
            if args.details:
                row["details"] = result.to_dict()
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            score = "-" if row["score"] is None else f"{row['score']:.3f}"
            seconds = f"{result.timings['total']:.2f}" if result else "-"
            tail = f"  ({row['error']})" if row["error"] else ""
            print(f"{row['label']:8} {score:>8} {row['frames']:>6} {row['faces']:>5} {seconds:>7}  {path}{tail}", flush=True)
    return 1 if failed else 0
