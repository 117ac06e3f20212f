"""``fakelens explain``: heatmaps that show why a face was scored REAL or FAKE, and how far to trust them.

Three modes:

* ``fakelens explain INPUT --out DIR``: for an image or video, a PNG per face (frame with the heatmap
  at the face, the crop, the crop's heatmap, colour bar, score), most suspicious first, plus
  ``explain.json``.
* ``fakelens explain --gallery --manifest M.csv --out DIR``: REAL/FAKE x correct/wrong grids and the
  mean heatmap per class for an evaluation set.
* ``fakelens explain --evaluate --images DIR_OR_MANIFEST``: ROAD faithfulness of each method against
  random maps, and the model-randomisation and REAL-vs-FAKE sanity checks, as a table.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fakelens.constants import CAM_METHODS, CAM_TARGETS, DEFAULT_CAM_METHOD, DEFAULT_FRAMES, check_threshold

log = logging.getLogger(__name__)

#: ``--method`` choices: the registry names of :data:`fakelens.constants.CAM_METHODS` (torch-free).
METHOD_CHOICES = list(CAM_METHODS)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="Grad-CAM style heatmaps for a file, galleries for a test set, faithfulness checks",
        description=(
            "Show which parts of each face drove the model's score. With INPUT: overlays for the sampled "
            "frames, most suspicious first. With --gallery: grids of correct and wrong crops of a manifest. "
            "With --evaluate: ROAD faithfulness of each method against random maps, and sanity checks."
        ),
    )
    parser.add_argument("input", nargs="?", type=Path, metavar="INPUT", help="image or video to explain")
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (required with INPUT and --gallery; with --evaluate, where to write JSON)"
    )
    parser.add_argument(
        "--method",
        default=DEFAULT_CAM_METHOD,
        choices=METHOD_CHOICES,
        help=f"explanation method (default {DEFAULT_CAM_METHOD}; scorecam is gradient-free and costs ~65 forward passes per face; "
        "eigencam is cheap but ignores the class)",
    )
    parser.add_argument(
        "--target", default="predicted", choices=list(CAM_TARGETS), help="what to explain: the predicted class (default), FAKE or REAL"
    )
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help=f"frames sampled from a video (default {DEFAULT_FRAMES})")
    parser.add_argument("--top", type=int, default=None, metavar="K", help="write overlays for the K most suspicious faces only (default: all)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="model checkpoint (default: the bundled model)")
    parser.add_argument("--threshold", type=float, default=None, help="P(fake) for a FAKE verdict (default: the model's own)")
    parser.add_argument("--colormap", default="jet", help="matplotlib colormap for heatmaps (default jet)")
    parser.add_argument("--alpha", type=float, default=0.45, help="heatmap opacity over the image (default 0.45)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    modes = parser.add_argument_group("gallery and evaluation")
    modes.add_argument("--gallery", action="store_true", help="grids of correct/wrong crops from --manifest")
    modes.add_argument("--manifest", type=Path, default=None, help="crop manifest for --gallery (CSV from preprocess)")
    modes.add_argument("--split", default=None, help="manifest split to use, e.g. test (default: all labelled rows)")
    modes.add_argument("--evaluate", action="store_true", help="ROAD faithfulness table and sanity checks")
    modes.add_argument("--images", type=Path, default=None, help="for --evaluate: a folder of face crops or a crop manifest (held out from training)")
    modes.add_argument("--methods", default=",".join(METHOD_CHOICES), help="for --evaluate: comma-separated methods (default all four)")
    modes.add_argument(
        "--limit", type=int, default=None, help="crops to use, spread evenly over the input (default 32 for --evaluate, 400 for --gallery)"
    )
    modes.add_argument("--percentiles", default="20,40,60,80", help="for --evaluate: ROAD percentiles (default 20,40,60,80)")
    modes.add_argument("--no-sanity", action="store_true", help="for --evaluate: skip the sanity checks")
    modes.add_argument("--seed", type=int, default=0, help="random seed for baselines and noise (default 0)")
    parser.set_defaults(func=run)


# --------------------------------------------------------------------------- model and crops


def _load_classifier(checkpoint: Path | None, device: str | None):
    """(model, info) from --checkpoint, else the bundled model (checksum verified); a clear error when
    neither exists. ``info`` has at least ``name`` and ``threshold``."""
    from fakelens.checkpoint import load_model
    from fakelens.detector import Detector

    if checkpoint is not None:
        return load_model(checkpoint, device=device or "cpu")
    _require_bundled_model()
    detector = Detector.default(backend="torch", device=device)
    return detector.model, dict(detector.info, name=detector.name, threshold=detector.threshold)


def _require_bundled_model() -> None:
    from fakelens.detector import DEFAULT_MODEL
    from fakelens.errors import CheckpointError

    if not DEFAULT_MODEL.is_file():
        raise CheckpointError(
            f"this build has no bundled model ({DEFAULT_MODEL} is missing); pass --checkpoint PATH (a checkpoint written by `fakelens train`)"
        )


def _spread(items: list, limit: int | None) -> list:
    """At most ``limit`` items spread evenly over the list (deterministic, keeps every group in play)."""
    if limit is None or len(items) <= limit:
        return items
    import numpy as np

    picks = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def _resize_crop(image):
    import cv2

    from fakelens.model import INPUT_SIZE

    h, w = image.shape[:2]
    if (h, w) == (INPUT_SIZE, INPUT_SIZE):
        return image
    interpolation = cv2.INTER_AREA if min(h, w) > INPUT_SIZE else cv2.INTER_CUBIC
    return cv2.resize(image, (INPUT_SIZE, INPUT_SIZE), interpolation=interpolation)


def _manifest_crops(manifest: Path, split: str | None, limit: int | None):
    """(crops uint8 (N, 224, 224, 3), labels, names, landmarks) from a manifest, ``limit`` per label at most."""
    import numpy as np
    from tqdm import tqdm

    from fakelens.data import load_crop, read_manifest
    from fakelens.explain import ExplainError

    rows = read_manifest(manifest, split=split)
    if not rows:
        raise ExplainError(f"{manifest}: no labelled crops")
    per_label = None if limit is None else max(1, limit // 2)
    chosen = []
    for label in ("real", "fake"):
        chosen += _spread([r for r in rows if r.label == label], per_label)
    loaded = [load_crop(r) for r in tqdm(chosen, desc="loading crops", unit="crop", disable=len(chosen) < 50)]
    crops = [image for image, _ in loaded]
    return np.stack(crops), [r.label for r in chosen], [str(r.crop_path) for r in chosen], [points for _, points in loaded]


def _folder_crops(folder: Path, limit: int | None):
    import numpy as np

    from fakelens.explain import ExplainError
    from fakelens.media import IMAGE_SUFFIXES, read_image

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ExplainError(f"{folder}: no images found")
    files = _spread(files, limit)
    return np.stack([_resize_crop(read_image(p)) for p in files]), [str(p) for p in files]


# --------------------------------------------------------------------------- modes


def _explain_input(args: argparse.Namespace) -> int:
    import numpy as np

    from fakelens.detector import Detector
    from fakelens.explain import Explainer, render_explanation, save_png, write_json

    options = dict(num_frames=args.frames, threshold=args.threshold, backend="torch", device=args.device)
    if args.checkpoint is not None:
        detector = Detector.from_checkpoint(args.checkpoint, **options)
    else:
        _require_bundled_model()
        detector = Detector.default(**options)
    prediction = detector.predict(args.input, keep_frames=True)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    index = {
        "input": str(args.input),
        "kind": prediction.kind,
        "label": prediction.label,
        "score": prediction.score,
        "threshold": detector.threshold,
        "model": detector.name,
        "method": args.method,
        "target": args.target,
        "frames": prediction.frames,
        "faces": [],
    }
    if not prediction.faces:
        write_json(index, out / "explain.json")
        print(f"{args.input}: no face found ({prediction.frames} frames) - nothing to explain; wrote {out / 'explain.json'}")
        return 0

    ranked = sorted(prediction.faces, key=lambda f: (-f.score, f.frame_index, f.track))
    chosen = ranked if args.top is None else ranked[: args.top]
    explainer = Explainer(detector.model, method=args.method, threshold=detector.threshold, device=detector.device)
    explanation = explainer.explanation(np.stack([f.crop for f in chosen]), args.target, progress=True)

    frames = getattr(prediction, "frame_images", None) or {}
    width = max(2, len(str(len(chosen))))
    for rank, (face, heatmap, target) in enumerate(zip(chosen, explanation.heatmaps, explanation.targets), start=1):
        verdict = "FAKE" if face.score >= detector.threshold else "REAL"
        where = f"frame {face.frame_index} (t={face.timestamp:.2f} s)" if prediction.kind == "video" else "image"
        title = f"#{rank}  {where}, track {face.track}:  P(fake) = {face.score:.3f}  ->  {verdict}"
        figure = render_explanation(
            face.crop, heatmap, face.score,
            frame=frames.get(face.frame_index), crop_box=face.crop_box, face_box=face.box,
            method=args.method, target=target, threshold=detector.threshold,
            alpha=args.alpha, colormap=args.colormap, title=title,
        )  # fmt: skip
        name = f"rank{rank:0{width}d}_p{face.score:.3f}_frame{face.frame_index:06d}_track{face.track}.png"
        save_png(figure, out / name)
        y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
        index["faces"].append(
            face.to_dict() | {"rank": rank, "file": name, "target": target, "crop_box": [round(float(v), 1) for v in face.crop_box],
                              "heatmap_peak_in_crop": [int(x), int(y)]}
        )  # fmt: skip
    index["not_rendered"] = len(ranked) - len(chosen)
    write_json(index, out / "explain.json")
    score = "-" if prediction.score is None else f"{prediction.score:.3f}"
    print(f"{args.input}: {prediction.label} (P(fake) {score}, threshold {detector.threshold:.3f}, model {detector.name})")
    print(f"wrote {len(chosen)} {args.method} overlays (most suspicious first) and explain.json to {out}")
    for entry in index["faces"][:5]:
        print(f"  {entry['file']}")
    if len(index["faces"]) > 5:
        print(f"  ... and {len(index['faces']) - 5} more")
    return 0


def _gallery(args: argparse.Namespace) -> int:
    from fakelens.explain import explain_gallery

    model, info = _load_classifier(args.checkpoint, args.device)
    threshold = info["threshold"] if args.threshold is None else args.threshold
    crops, labels, names, landmarks = _manifest_crops(args.manifest, args.split, 400 if args.limit is None else args.limit)
    gallery = explain_gallery(model, crops, labels, method=args.method, target=args.target, threshold=threshold,
                              progress=True, alpha=args.alpha, colormap=args.colormap)  # fmt: skip
    paths = gallery.save(args.out)
    from fakelens.explain import write_json
    from fakelens.regions import format_region_table, mean_region_shares

    regions = mean_region_shares(gallery.heatmaps, landmarks, labels)
    index = gallery.to_dict() | {"model": info.get("name"), "manifest": str(args.manifest), "split": args.split,
                                 "crops": names, "files": {k: p.name for k, p in paths.items() if k != "index"},
                                 "regions": regions}  # fmt: skip
    write_json(index, paths["index"])
    print(f"gallery of {len(crops)} crops ({args.method}, threshold {threshold:.3f}, model {info.get('name')}):")
    for cell, count in gallery.counts.items():
        print(f"  {cell:<13} {count:>5}  -> {paths[cell].name}")
    print(f"  mean heatmaps        -> {paths['mean_heatmaps'].name}")
    print(f"share of {args.method} mass per face region (area share in brackets: mass above area = looked at more):")
    print(format_region_table(regions))
    print(f"wrote to {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import platform

    import torch

    from fakelens.explain import (
        Explainer,
        ExplainError,
        evaluate_faithfulness,
        randomization_sanity,
        target_sanity,
        write_json,
    )

    model, info = _load_classifier(args.checkpoint, args.device)
    threshold = info["threshold"] if args.threshold is None else args.threshold
    limit = 32 if args.limit is None else args.limit
    source = args.images
    if source.is_dir():
        crops, names = _folder_crops(source, limit)
        labels = None
    elif source.is_file():
        crops, labels, names, _ = _manifest_crops(source, args.split, limit)
    else:
        raise ExplainError(f"{source}: no such folder or manifest")
    methods = [Explainer.resolve_method(m) for m in args.methods.split(",") if m.strip()]
    try:
        percentiles = [int(p) for p in args.percentiles.split(",") if p.strip()]
    except ValueError:
        raise ExplainError(f"--percentiles must be integers, got {args.percentiles!r}") from None
    if not percentiles or not all(0 < p < 100 for p in percentiles):
        raise ExplainError("--percentiles must lie strictly between 0 and 100")
    print(f"ROAD on {len(crops)} crops from {source} (model {info.get('name')}, threshold {threshold:.3f})", flush=True)
    report = evaluate_faithfulness(model, crops, methods, target=args.target, percentiles=percentiles,
                                   threshold=threshold, seed=args.seed, progress=True)  # fmt: skip
    print(report.format_table())
    result = {"model": info.get("name"), "source": str(source), "crops": names, "labels": labels,
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "torch_threads": torch.get_num_threads(),
              "faithfulness": report.to_dict()}  # fmt: skip
    if not args.no_sanity:
        subset = crops[: min(len(crops), 8)]
        print(f"\nsanity checks on {len(subset)} crops (Spearman rank correlation of maps; low = the map depends on it)")
        print(f"{'method':<11} {'trained vs randomised weights':>30} {'REAL vs FAKE target':>22}")
        sanity = {}
        for method in methods:
            randomised = randomization_sanity(model, subset, method, mode="full", seed=args.seed)
            targets = target_sanity(model, subset, method)
            sanity[method] = {"randomisation": randomised.to_dict(), "target": targets.to_dict()}
            stage = randomised.final
            print(f"{method:<11} {f'{stage.spearman_mean:+.3f} ± {stage.spearman_sd:.3f}':>30} "
                  f"{f'{targets.spearman_mean:+.3f} ± {targets.spearman_sd:.3f}':>22}")  # fmt: skip
        result["sanity"] = sanity
    if args.out is not None:
        path = write_json(result, args.out / "faithfulness.json")
        print(f"\nwrote {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    # Usage errors are raised before anything imports torch, so they answer at once.
    from fakelens.errors import FakelensError, InvalidArgument

    if args.gallery and args.evaluate:
        raise FakelensError("choose one of --gallery and --evaluate")
    if args.frames < 1:
        raise InvalidArgument(f"frames must be a whole number of at least 1, got {args.frames}")
    if args.top is not None and args.top < 1:
        raise FakelensError("--top must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise FakelensError("--limit must be at least 1")
    if not 0.0 <= args.alpha <= 1.0:
        raise FakelensError("--alpha must be between 0 and 1")
    if args.threshold is not None:
        check_threshold(args.threshold)
    from matplotlib import colormaps

    if args.colormap not in colormaps:
        raise FakelensError(f"unknown --colormap {args.colormap!r}; try jet, inferno, turbo or viridis")
    if args.gallery:
        if args.manifest is None or args.out is None:
            raise FakelensError("--gallery needs --manifest M.csv and --out DIR")
        return _gallery(args)
    if args.evaluate:
        if args.images is None:
            raise FakelensError("--evaluate needs --images DIR_OR_MANIFEST (face crops held out from training)")
        return _evaluate(args)
    if args.input is None or args.out is None:
        print("fakelens explain: give INPUT and --out DIR, or use --gallery / --evaluate (see --help)", file=sys.stderr)
        return 2
    return _explain_input(args)
