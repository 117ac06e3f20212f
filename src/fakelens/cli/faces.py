"""``fakelens faces INPUT --out DIR``: find the faces in an image or video and write their crops."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "faces",
        help="find faces in an image or video and write 224x224 crops + detections.json",
        description="Sample frames, detect faces with MTCNN and write square crops and a JSON file of detections.",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image or video files")
    parser.add_argument("--out", type=Path, required=True, help="output folder (one subfolder per input)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per video (default 32)")
    parser.add_argument("--keep", choices=["largest", "all"], default="largest",
                        help="largest face per frame, or all faces linked into tracks (default largest)")
    parser.add_argument("--size", type=int, default=224, help="crop side in pixels (default 224)")
    parser.add_argument("--margin", type=float, default=0.3, help="context around the box, fraction of its side (default 0.3)")
    parser.add_argument("--align", action="store_true", help="align crops on the 5 landmarks")
    parser.add_argument("--min-face-size", type=int, default=None, help="smallest face in pixels (default: detector's)")
    parser.add_argument("--detection-size", type=int, default=None,
                        help="downscale frames so the longest side is at most this before detection (default: detector's)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fakelens import atomic
    from fakelens.errors import FakelensError
    from fakelens.faces import FaceExtractor, write_crops
    from fakelens.mtcnn import MTCNN

    detector_options = {}
    if args.min_face_size is not None:
        detector_options["min_face_size"] = args.min_face_size
    if args.detection_size is not None:
        detector_options["detection_size"] = args.detection_size
    extractor = FaceExtractor(
        MTCNN(**detector_options), num_frames=args.frames, keep=args.keep,
        size=args.size, margin=args.margin, align=args.align,
    )
    failed = 0
    for path in args.inputs:
        out_dir = args.out / path.stem
        try:
            crops = extractor.extract(path, progress=True)
        except FakelensError as exc:
            print(f"{path}: error: {exc.reason if hasattr(exc, 'reason') else exc}")
            failed += 1
            continue
        written = write_crops(crops, out_dir, path.stem)
        report = {
            "input": str(path),
            "faces": len(crops),
            "tracks": len({c.track for c in crops}),
            "detections": [dict(c.to_dict(), crop=p.name) for c, p in zip(crops, written)],
        }
        atomic.write_json(out_dir / "detections.json", report)
        frames = len({c.frame_index for c in crops})
        print(f"{path}: {len(crops)} face crops from {frames} frames ({report['tracks']} track(s)) -> {out_dir}")
    return 1 if failed else 0
