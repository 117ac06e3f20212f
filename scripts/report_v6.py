"""The report half of the dev pool: every named model scored once, after the choice (scripts/select_v6.py) was made.

    python scripts/report_v6.py --manifest runs/devpool/manifest.csv --out docs/results/report_v6 \
        --model v3=runs/v3.pt --model v4=runs/v4.pt --model v5=runs/v5.pt --model v6=src/fakelens/weights/default.pt

For each model, with and without horizontal-flip TTA: video AUC (frame scores averaged per medium; a still image
is a one-frame video) overall, on FF++ + DFDC, per dataset and per method, each for all media and for videos
only, with the number of media (real / fake); under the perturbations of ROBUSTNESS; and the frame-level ECE of
the model's own P(fake). Nothing is chosen here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from select_v6 import half_rows, logits_of, perturbed_crops, sigmoid, video_auc  # noqa: E402

ROBUSTNESS = ("none", "half_h264_crf35", "jpeg50", "grayscale", "tight_crop")
FFPP_DFDC = ("ffpp-c23", "dfdc")


def _is_video(row) -> bool:
    from fakelens.media import VIDEO_SUFFIXES

    return Path(row.video).suffix.lower() in VIDEO_SUFFIXES


def subsets(rows) -> dict[str, list[int]]:
    """Named subsets of row indices: overall, FF++ + DFDC, each dataset, each method; all media and videos only."""
    named: dict[str, list[int]] = {"overall": list(range(len(rows)))}
    named["FF++ + DFDC"] = [i for i, r in enumerate(rows) if r.dataset in FFPP_DFDC]
    for dataset in sorted({r.dataset for r in rows}):
        named[f"dataset {dataset}"] = [i for i, r in enumerate(rows) if r.dataset == dataset]
    for method in sorted({r.method for r in rows if r.label == "fake" and r.method}):
        # A method's fakes against every real of the same datasets.
        datasets = {r.dataset for r in rows if r.method == method}
        named[f"method {method}"] = [i for i, r in enumerate(rows) if r.method == method or (r.label == "real" and r.dataset in datasets)]
    out = {}
    for name, idx in named.items():
        out[name] = idx
        out[f"{name} (videos)"] = [i for i in idx if _is_video(rows[i])]
    return out


def counts(rows, idx) -> str:
    media = {}
    for i in idx:
        media[rows[i].video_key] = rows[i].label
    return f"{sum(v == 'real' for v in media.values())} / {sum(v == 'fake' for v in media.values())}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--half", default="report", choices=["report", "selection"])
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parents[1] / "runs" / "select_cache")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    from fakelens import atomic
    from fakelens.calibration import expected_calibration_error
    from fakelens.checkpoint import load_model
    from fakelens.data import load_crop
    from fakelens.sysinfo import describe_machine

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = half_rows(args.manifest, args.half)
    crops = [load_crop(r)[0] for r in rows]
    sets = {}
    for name in ROBUSTNESS:
        out = crops if name == "none" else perturbed_crops(rows, crops, name, args.cache / f"{args.half}_{name}.npz")
        keep = [i for i, c in enumerate(out) if c is not None]
        sets[name] = (keep, np.stack([out[i] for i in keep]))
    named = subsets(rows)
    print(f"{args.half} half: {len(rows)} crops of {len({r.video_key for r in rows})} media; {describe_machine()}", file=sys.stderr)
    report: dict = {"half": args.half, "manifest": str(args.manifest), "machine": describe_machine(), "models": {}}
    for spec in args.model:
        label, _, path = spec.partition("=")
        model, _ = load_model(path, device="cpu")
        entry: dict = {"checkpoint": path, "robustness": {}, "subsets": {}}
        for name, (keep, stack) in sets.items():
            plain = logits_of(model, stack, flip=False)
            both = (plain + logits_of(model, stack, flip=True)) / 2.0
            kept_rows = [rows[i] for i in keep]
            entry["robustness"][name] = {tta: video_auc(kept_rows, sigmoid(z)) for tta, z in (("plain", plain), ("flip", both))}
            if name == "none":
                targets = np.array([r.target for r in rows])
                entry["ece_frames"] = expected_calibration_error(sigmoid(plain), targets)
                for sub, idx in named.items():
                    sub_rows = [rows[i] for i in idx]
                    entry["subsets"][sub] = {
                        "media (real / fake)": counts(rows, idx),
                        **{tta: video_auc(sub_rows, sigmoid(z[idx])) for tta, z in (("plain", plain), ("flip", both))},
                    }
        report["models"][label] = entry
        print(f"  {label}: clean {entry['robustness']['none']}", file=sys.stderr)
    models = list(report["models"])
    lines = [f"{args.half} half of `{args.manifest}`: {len(rows)} crops of {len({r.video_key for r in rows})} media. Video AUC; `+TTA` = flip.", ""]
    lines.append("| subset | media (real / fake) | " + " | ".join(f"{m} | {m} +TTA" for m in models) + " |")
    lines.append("|---|---:|" + "---:|---:|" * len(models))

    def f(v):
        return "-" if v is None else f"{v:.3f}"

    first = report["models"][models[0]]["subsets"]
    for sub in first:
        cells = [f(report["models"][m]["subsets"][sub][t]) for m in models for t in ("plain", "flip")]
        lines.append(f"| {sub} | {first[sub]['media (real / fake)']} | " + " | ".join(cells) + " |")
    for name in ROBUSTNESS[1:]:
        cells = [f(report["models"][m]["robustness"][name][t]) for m in models for t in ("plain", "flip")]
        lines.append(f"| overall, {name} | | " + " | ".join(cells) + " |")
    lines.append("| frame ECE (own P(fake)) | | " + " | ".join(f"{report['models'][m]['ece_frames']:.3f} | " for m in models) + " |")
    text = "\n".join(lines) + "\n"
    atomic.write_bytes(args.out / f"{args.half}.json", json.dumps(report, indent=2, default=float))
    atomic.write_bytes(args.out / f"{args.half}.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
