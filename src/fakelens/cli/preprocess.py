"""``fakelens preprocess``: a dataset -> 224x224 face crops + one manifest (resumable, sharded, parallel)."""

from __future__ import annotations

import argparse

from fakelens.constants import INPUT_SIZE, KEEP_MODES
from fakelens.data.datasets import BALANCE_MODES, DATASETS
from fakelens.data.records import CROSS_IDENTITY

EPILOG = """\
examples:
  fakelens preprocess Celeb-DF-v2 --dataset celebdf --out crops/celebdf --balance videos --workers 2
  fakelens preprocess FaceForensics++ --dataset ffpp --compression c23 --out crops/ffpp --shard 0/4
  fakelens preprocess --merge crops/ffpp-0 crops/ffpp-1 crops/ffpp-2 crops/ffpp-3 --out crops/ffpp
  fakelens preprocess my_videos --dataset folder --out crops/mine   (my_videos/{real,fake}/...)
  fakelens preprocess /shared/Celeb-DF-v2 --dataset celebdf --out /shared/crops --engine ray --address HEAD_IP:6379

A run that is stopped (Ctrl-C, kill -9, power cut of the machine) continues where it stopped when run
again with the same command. Videos that cannot be read or show no face are listed in OUT/failures.csv.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "preprocess",
        help="extract face crops of a dataset into a manifest for training",
        description="Sample frames of every video of a dataset, find faces with MTCNN and write the crops "
        "with one manifest CSV (a row per crop). Celeb-DF v2 and FaceForensics++ get their official test "
        "splits and identity-disjoint train/val splits.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="ROOT", help="dataset folder (with --merge: the output folders to join)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (crops/, manifest.csv, ...)")
    parser.add_argument(
        "--dataset", choices=DATASETS, help="layout of ROOT: celebdf (Celeb-DF v2), ffpp (FaceForensics++), folder (real/ and fake/ subfolders)"
    )
    parser.add_argument("--merge", action="store_true", help="join the preprocessing folders given as ROOT into --out")
    group = parser.add_argument_group("frames and crops")
    group.add_argument("--frames", type=int, default=32, help="frames sampled per video (default 32)")
    group.add_argument("--size", type=int, default=INPUT_SIZE, help=f"crop side in pixels (default {INPUT_SIZE})")
    group.add_argument("--margin", type=float, default=0.3, help="context around the face box, fraction of its side (default 0.3)")
    group.add_argument("--align", action="store_true", help="align crops on the 5 facial landmarks (default off)")
    group.add_argument("--keep", choices=KEEP_MODES, default="largest", help="largest face per frame, or all faces as tracks (default largest)")
    group.add_argument("--min-face-size", type=int, default=20, help="smallest face to find, in pixels (default 20)")
    group.add_argument(
        "--detection-size", type=int, default=None, help="downscale frames to this longest side for detection (default: full resolution)"
    )
    group.add_argument("--format", dest="image_format", choices=["jpg", "png"], default="jpg", help="crop files: JPEG quality 95 (default) or PNG")
    group.add_argument("--device", default=None, help="detector device, e.g. cpu or cuda (default: CUDA when available)")
    group = parser.add_argument_group("splits and balance")
    group.add_argument(
        "--balance",
        choices=BALANCE_MODES,
        default="none",
        help="train split: none (default); videos = undersample the larger class round-robin over "
        "identities; frames = more frames per video of the smaller class",
    )
    group.add_argument(
        "--val-fraction", type=float, default=None, help="share of identities/groups put in val (default 0.15; FF++ uses its official split)"
    )
    group.add_argument("--seed", type=int, default=0, help="seed of the train/val assignment and balancing (default 0)")
    group.add_argument(
        "--cross-identity",
        choices=CROSS_IDENTITY,
        default="drop",
        help="a fake whose two identities fall in different splits: drop it (default) or follow its target",
    )
    group.add_argument("--test-list", default=None, help="Celeb-DF test list (default ROOT/List_of_testing_videos.txt)")
    group.add_argument("--compression", default="c23", help="FF++ compression: raw, c23 (default) or c40")
    group.add_argument(
        "--methods",
        default=None,
        help="FF++ methods, comma-separated (default: all found, e.g. Deepfakes,Face2Face,FaceSwap,NeuralTextures,FaceShifter,DeepFakeDetection)",
    )
    group.add_argument("--splits", default=None, help="folder with the FF++ train/val/test.json (default: the official lists)")
    group.add_argument(
        "--list", dest="list_file", default=None, help="list: CSV with path,label[,group,method,dataset,split] (default ROOT/media.csv)"
    )
    group.add_argument("--val-groups", default=None, help="list: comma-separated groups always put in val (e.g. those of demo media)")
    group = parser.add_argument_group("running")
    group.add_argument("--workers", type=int, default=1, help="local: worker processes (default 1)")
    group.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help='local: this machine (default); ray: a Ray task per video on a Ray cluster (pip install "fakelens[ray]")',
    )
    group.add_argument("--address", default=None, help="ray: a running cluster to join (host:6379 or auto); default: start a local instance")
    group.add_argument("--shard", default=None, metavar="i/N", help="process only slice i of N (0-based), e.g. 0/4")
    group.add_argument("--retry-failed", action="store_true", help="redo videos that failed in an earlier run")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fakelens.data.datasets import balance, class_counts, format_counts, read_dataset
    from fakelens.preprocess import PreprocessConfig, PreprocessError, merge, parse_shard, preprocess

    if args.merge:
        summary = merge(args.paths, args.out, progress=not args.no_progress)
        print(summary.format())
        return 0
    if len(args.paths) != 1:
        raise PreprocessError("give one dataset folder (or --merge with several output folders)")
    if args.dataset is None:
        raise PreprocessError("--dataset is required: celebdf, ffpp, folder or list")
    shard = parse_shard(args.shard)
    if args.address and args.engine != "ray":
        raise PreprocessError("--address needs --engine ray")
    config = PreprocessConfig(
        frames=args.frames,
        size=args.size,
        margin=args.margin,
        align=args.align,
        keep=args.keep,
        min_face_size=args.min_face_size,
        detection_size=args.detection_size,
        image_format=args.image_format,
        device=args.device,
    )
    config.validate()
    records = read_dataset(
        args.paths[0],
        args.dataset,
        val_fraction=args.val_fraction,
        seed=args.seed,
        cross_identity=args.cross_identity,
        test_list=args.test_list,
        compression=args.compression,
        splits=args.splits,
        methods=[m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None,
        list_file=args.list_file,
        val_groups=[g.strip() for g in args.val_groups.split(",") if g.strip()] if args.val_groups else None,
    )
    records = balance(records, args.balance, frames=args.frames, seed=args.seed)
    print(format_counts(class_counts(records), unit=f"videos, balance={args.balance}"))
    summary = preprocess(
        records,
        args.out,
        config,
        workers=args.workers,
        shard=shard,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
        engine=args.engine,
        address=args.address,
    )
    print(summary.format())
    if summary.failed or summary.no_face:
        print(f"see {summary.out_dir}/failures.csv for the {summary.failed + summary.no_face} videos without crops")
    return 0
