"""``fakelens faces INPUT --out DIR``: find the faces in an image or video and write their crops.

By default it finds exactly the faces ``fakelens predict`` scores (the same frames, detection size,
smallest face, detection probability and tracks), so the crops it shows are the ones behind a verdict.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fakelens.constants import (
    CROP_MARGIN,
    DEFAULT_DETECTION_SIZE,
    DEFAULT_FRAMES,
    DEFAULT_KEEP,
    DEFAULT_MIN_FACE_PROB,
    DEFAULT_MIN_FACE_SIZE,
    DEFAULT_MIN_TRACK_SHARE,
    INPUT_SIZE,
    KEEP_MODES,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "faces",
        help="find faces in an image or video and write 224x224 crops + detections.json",
        description="Sample frames, detect faces with MTCNN and write square crops and a JSON file of detections "
        "and tracks. The defaults are those of `fakelens predict`: these are the faces it scores.",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image or video files")
    parser.add_argument("--out", type=Path, required=True, help="output folder (one subfolder per input)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help=f"frames sampled per video (default {DEFAULT_FRAMES})")
    parser.add_argument(
        "--keep", choices=KEEP_MODES, default=DEFAULT_KEEP, help=f"largest face per frame, or all faces linked into tracks (default {DEFAULT_KEEP})"
    )
    parser.add_argument("--size", type=int, default=INPUT_SIZE, help=f"crop side in pixels (default {INPUT_SIZE})")
    parser.add_argument("--margin", type=float, default=CROP_MARGIN, help=f"context around the box, fraction of its side (default {CROP_MARGIN})")
    parser.add_argument("--align", action="store_true", help="align crops on the 5 landmarks")
    parser.add_argument("--min-face-size", type=int, default=DEFAULT_MIN_FACE_SIZE, help=f"smallest face in pixels (default {DEFAULT_MIN_FACE_SIZE})")
    parser.add_argument(
        "--detection-size",
        type=int,
        default=DEFAULT_DETECTION_SIZE,
        help=f"downscale frames so the longest side is at most this before detection, 0 = full resolution (default {DEFAULT_DETECTION_SIZE})",
    )
    parser.add_argument(
        "--min-face-prob",
        type=float,
        default=DEFAULT_MIN_FACE_PROB,
        help=f"smallest MTCNN detection probability kept (default {DEFAULT_MIN_FACE_PROB})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fakelens import atomic
    from fakelens.constants import DEFAULT_KEYFRAMES, DEFAULT_TRACK_FACE_PROB, check_threshold
    from fakelens.errors import FakelensError, InvalidArgument
    from fakelens.faces import FaceExtractor, principal_tracks, scored_crops, write_crops
    from fakelens.mtcnn import MTCNN

    if args.frames < 1:
        raise InvalidArgument(f"frames must be a whole number of at least 1, got {args.frames}")
    min_prob = check_threshold(args.min_face_prob, "min-face-prob")
    try:
        detector = MTCNN(min_face_size=args.min_face_size, detection_size=args.detection_size or None)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    extractor = FaceExtractor(detector, num_frames=args.frames, keep=args.keep, size=args.size, margin=args.margin, align=args.align)
    failed = 0
    for path in args.inputs:
        out_dir = args.out / path.stem
        try:
            # The frames predict samples (its default keyframes setting; see fakelens.media.plan_sampling).
            crops = scored_crops(extractor.extract(path, progress=True, keyframes=DEFAULT_KEYFRAMES), min_prob, DEFAULT_TRACK_FACE_PROB)
        except FakelensError as exc:
            print(f"{path}: error: {exc.reason if hasattr(exc, 'reason') else exc}")
            failed += 1
            continue
        written = write_crops(crops, out_dir, path.stem)
        principal = principal_tracks([c.track for c in crops], DEFAULT_MIN_TRACK_SHARE)
        tracks = sorted({c.track for c in crops})
        report = {
            "input": str(path),
            "faces": len(crops),
            "tracks": [{"track": t, "faces": sum(c.track == t for c in crops), "principal": t in principal} for t in tracks],
            "detections": [dict(c.to_dict(), crop=p.name) for c, p in zip(crops, written)],
        }
        atomic.write_json(out_dir / "detections.json", report)
        frames = len({c.frame_index for c in crops})
        print(f"{path}: {len(crops)} face crops from {frames} frames ({len(tracks)} track(s), {len(principal)} scored as principal) -> {out_dir}")
    return 1 if failed else 0
