"""Generalisation tables of one or more checkpoints on a manifest split that training never touched.

    python scripts/generalisation.py --manifest runs/devpool/manifest.csv --split test \
        --checkpoint v1=src/fakelens/weights/v1.pt --checkpoint v2=runs/sbi/best.pt \
        --calibration-manifest runs/faces/manifest.csv --out docs/results/generalisation

Prints (and writes as JSON + Markdown):
* frame and video AUC (mean of frame scores per video), AP and EER per dataset and per manipulation method;
* the robustness table: overall video and frame AUC under each perturbation of :mod:`fakelens.robustness`;
* calibration: the temperature fitted on the *validation* split of ``--calibration-manifest`` (REAL crops
  and a fixed self-blended copy of each, as training validates), ECE before/after on that split and on the
  evaluated split, and a reliability diagram.
No threshold or checkpoint is chosen here: thresholds are the checkpoints' own (chosen on validation).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from select_v6 import perturbed_crops  # noqa: E402 - one home for perturbing a manifest's crops by video


def _scores(model, crops, batch_size=64):
    from fakelens.evaluate import predict_crops

    return predict_crops(model, np.stack(crops), batch_size=batch_size) if crops else np.zeros(0)


def _auc_table(rows, scores):
    from fakelens.evaluate import breakdowns, subset_report
    from fakelens.media import VIDEO_SUFFIXES

    overall = subset_report(rows, scores, 0.5)
    per_dataset, per_method = breakdowns(rows, scores, 0.5)
    # Videos and still images apart: a still image is a one-frame "video" in the overall figures.
    is_video = np.array([Path(r.video).suffix.lower() in VIDEO_SUFFIXES for r in rows])
    for kind, mask in (("videos", is_video), ("images", ~is_video)):
        idx = np.flatnonzero(mask)
        if idx.size and len({rows[i].label for i in idx}) == 2:
            per_dataset[f"({kind} only)"] = subset_report([rows[i] for i in idx], np.asarray(scores)[idx], 0.5)

    def brief(rep):
        return {
            "frames": rep.n_frames, "videos": rep.n_videos,
            "frame_auc": rep.frame.auc, "video_auc": rep.video.auc, "video_ap": rep.video.ap, "video_eer": rep.video.eer,
        }  # fmt: skip

    return {"overall": brief(overall), "per_dataset": {k: brief(v) for k, v in per_dataset.items()},
            "per_method": {k: brief(v) for k, v in per_method.items()}}  # fmt: skip


def _val_logits(model, manifest, seed=0, mask="five", colour="paper"):
    """Logits and targets of the validation split as training validates it (REAL + fixed SBI copies made with
    SBI's ``mask``: ``five`` as the default training, ``dense`` for the face-mesh hulls; and ``colour``: the
    source's colour change, ``paper`` as the default training, ``strong`` as the first release's)."""
    from fakelens.data import PURPOSE_EVAL_SBI, CropDataset, read_manifest
    from fakelens.evaluate import score_dataset
    from fakelens.sbi import SBIConfig
    from fakelens.train import build_val_items
    from fakelens.training_data import dense_points

    rows = read_manifest(manifest, split="val")
    items, _ = build_val_items(rows, "sbi")
    dense = dense_points(mask, str(manifest), str(Path(manifest).parent), rows, items, progress=False)
    dataset = CropDataset(rows, items, seed=seed, purpose=PURPOSE_EVAL_SBI, sbi=SBIConfig.preset(colour, mask), dense=dense)
    return score_dataset(model, dataset, batch_size=64, device="cpu", progress=False), dataset.targets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True, help="manifest of the evaluated media")
    parser.add_argument("--split", default="test", help="its split to evaluate (default test)")
    parser.add_argument("--checkpoint", action="append", required=True, help="NAME=PATH, repeatable")
    parser.add_argument(
        "--groups", type=Path, default=None, help="file of leakage groups (one per line): evaluate only their rows (e.g. groups no model trained on)"
    )
    parser.add_argument("--perturbations", default=None, help="comma list (default all of fakelens.robustness.PERTURBATIONS)")
    parser.add_argument("--calibration-manifest", type=Path, default=None, help="manifest whose val split fits the temperature")
    parser.add_argument("--out", type=Path, default=None, help="folder for generalisation.json/.md and reliability PNGs")
    parser.add_argument(
        "--cache", type=Path, default=None, help="folder keeping the perturbed crops (keyed by manifest, split and groups) for the next run"
    )
    args = parser.parse_args(argv)

    import torch

    from fakelens import atomic
    from fakelens.calibration import fit_temperature, plot_reliability, reliability_curve
    from fakelens.checkpoint import load_model
    from fakelens.data import load_crop, read_manifest
    from fakelens.robustness import PERTURBATIONS
    from fakelens.sysinfo import describe_machine

    torch.set_num_threads(1)  # one thread: the machine is shared with training (see TrainConfig.threads)
    names = args.perturbations.split(",") if args.perturbations else list(PERTURBATIONS)
    rows = read_manifest(args.manifest, split=None if args.split == "all" else args.split)
    if args.groups is not None:
        wanted = {line.strip() for line in args.groups.read_text().splitlines() if line.strip()}
        rows = [r for r in rows if r.group in wanted]
    by_video = defaultdict(list)
    for i, row in enumerate(rows):
        by_video[row.video_key].append(i)
    crops = [load_crop(r)[0] for r in rows]
    print(f"{len(rows)} crops of {len(by_video)} videos/images from {args.manifest} (split {args.split}); {describe_machine()}", file=sys.stderr)

    # Perturb once, score with every model.
    perturbed = {}
    import hashlib

    key = hashlib.sha256(f"{args.manifest.resolve()}|{args.split}|{args.groups}|{len(rows)}".encode()).hexdigest()[:12]
    for name in names:
        start = time.perf_counter()
        cached = None if args.cache is None else args.cache / f"{key}_{name}.npz"
        out = perturbed_crops(rows, crops, name, cached)
        perturbed[name] = out
        lost = sum(c is None for c in out)
        print(f"  {name}: {time.perf_counter() - start:.1f} s{f', no face in {lost} tight crops' if lost else ''}", file=sys.stderr)

    report = {"manifest": str(args.manifest), "split": args.split, "groups": str(args.groups or "all"), "crops": len(rows), "videos": len(by_video),
              "machine": describe_machine(), "models": {}}  # fmt: skip
    for spec in args.checkpoint:
        label, _, path = spec.partition("=")
        model, info = load_model(path, device="cpu")
        entry = {"checkpoint": path, "name": info.get("name"), "robustness": {}}
        for name in names:
            keep = [i for i, c in enumerate(perturbed[name]) if c is not None]
            scores = _scores(model, [perturbed[name][i] for i in keep])
            table = _auc_table([rows[i] for i in keep], scores)
            if name == "none":
                entry["clean"] = table
                clean_scores = scores
            entry["robustness"][name] = {**table["overall"], "lost_crops": len(rows) - len(keep)}
        if args.calibration_manifest is not None:
            logits, targets = _val_logits(model, args.calibration_manifest)
            temperature = fit_temperature(logits, targets)
            test_logits = np.log(np.clip(clean_scores, 1e-7, 1 - 1e-7) / np.clip(1 - clean_scores, 1e-7, 1))
            test_targets = np.array([r.target for r in rows])
            curves = {}
            for when, t in (("before", 1.0), ("after", temperature)):
                curves[f"val {when}"] = reliability_curve(1 / (1 + np.exp(-logits / t)), targets)
                curves[f"test {when}"] = reliability_curve(1 / (1 + np.exp(-test_logits / t)), test_targets)
            entry["calibration"] = {"temperature": temperature, "fitted_on": f"{args.calibration_manifest} split val (REAL + fixed SBI)",
                                    "ece": {k: v.ece for k, v in curves.items()}}  # fmt: skip
            if args.out is not None:
                plot_reliability(curves, args.out / f"reliability_{label}.png", title=f"{label}: T = {temperature:.2f}")
        report["models"][label] = entry
        print(f"{label}: clean video AUC {entry['clean']['overall']['video_auc']}", file=sys.stderr)

    text = format_markdown(report)
    print(text)
    if args.out is not None:
        atomic.write_bytes(args.out / "generalisation.json", json.dumps(report, indent=2))
        atomic.write_bytes(args.out / "generalisation.md", text)
    return 0


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_markdown(report: dict) -> str:
    models = list(report["models"])
    lines = [
        f"Split `{report['split']}` of `{report['manifest']}` (groups: {report.get('groups', 'all')}): "
        f"{report['crops']} crops, {report['videos']} videos/images.",
        "",
    ]
    lines += ["| subset | frames | videos | " + " | ".join(f"{m} frame AUC | {m} video AUC" for m in models) + " |",
              "|---|---|---|" + "---|---|" * len(models)]  # fmt: skip
    first = report["models"][models[0]]["clean"]
    subsets = (
        [("overall", first["overall"])]
        + [(f"dataset {k}", v) for k, v in first["per_dataset"].items()]
        + [(f"method {k}", v) for k, v in first["per_method"].items()]
    )
    for label, base in subsets:
        cells = []
        for m in models:
            clean = report["models"][m]["clean"]
            kind, _, key = label.partition(" ")
            sub = clean["overall"] if label == "overall" else clean["per_dataset" if kind == "dataset" else "per_method"][key]
            cells.append(f"{_f(sub['frame_auc'])} | {_f(sub['video_auc'])}")
        lines.append(f"| {label} | {base['frames']} | {base['videos']} | " + " | ".join(cells) + " |")
    lines += ["", "Robustness (overall):", "", "| perturbation | " + " | ".join(f"{m} frame AUC | {m} video AUC" for m in models) + " |",
              "|---|" + "---|---|" * len(models)]  # fmt: skip
    for name in report["models"][models[0]]["robustness"]:
        cells = [
            f"{_f(report['models'][m]['robustness'][name]['frame_auc'])} | {_f(report['models'][m]['robustness'][name]['video_auc'])}" for m in models
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cal = [(m, report["models"][m].get("calibration")) for m in models if report["models"][m].get("calibration")]
    if cal:
        lines += [
            "",
            "Calibration (temperature fitted on validation):",
            "",
            "| model | T | ECE val before | after | ECE test before | after |",
            "|---|---|---|---|---|---|",
        ]
        for m, c in cal:
            e = c["ece"]
            lines.append(
                f"| {m} | {c['temperature']:.3f} | {_f(e['val before'])} | {_f(e['val after'])} | {_f(e['test before'])} | {_f(e['test after'])} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
