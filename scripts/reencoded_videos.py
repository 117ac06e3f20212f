"""Whole videos re-encoded the way platforms do it (half size, H.264 CRF 35), then ``predict`` end to end, against
the same videos as they are: video AUC of each model, on one half of the dev pool.

    python scripts/reencoded_videos.py --data ../shared/data --half report \
        --model v5=runs/v5.pt --model v6=src/fakelens/weights/default.pt --out docs/results/reencoded_v6.md

Unlike the crop-level ``half_h264_crf35`` perturbation (scripts/select_v6.py), this re-encodes the frames the
detector then finds faces in, as a user's upload is: faces are found again, at the size the platform left.
The re-encoded files are kept in ``--work`` (default runs/reencoded/) and reused.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from pool_lists import HALVES_FILE, pool_of  # noqa: E402


def reencode(source: Path, target: Path, scale: float = 0.5, crf: int = 35) -> Path:
    """``source`` at ``scale`` of its size (even sides), H.264 yuv420p at ``crf``, written atomically to ``target``."""
    import av

    from fakelens import atomic

    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(target) as tmp:
        with av.open(str(source)) as src, av.open(str(tmp), "w", format="mp4") as dst:
            stream = src.streams.video[0]
            width, height = max(16, int(stream.width * scale) // 2 * 2), max(16, int(stream.height * scale) // 2 * 2)
            out = dst.add_stream("libx264", rate=stream.average_rate or 25)
            out.width, out.height, out.pix_fmt = width, height, "yuv420p"
            out.options = {"crf": str(crf), "preset": "veryfast"}
            for frame in src.decode(stream):
                # A fresh frame (no timestamps): the encoder numbers the frames itself, at the source's rate.
                image = av.VideoFrame.from_ndarray(frame.to_ndarray(width=width, height=height, format="rgb24"), format="rgb24")
                for packet in out.encode(image):
                    dst.mux(packet)
            for packet in out.encode():
                dst.mux(packet)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--half", choices=["selection", "report"], default="report")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "reencoded")
    parser.add_argument("--out", type=Path, default=None, help="Markdown table to write")
    args = parser.parse_args(argv)
    from fakelens import Detector
    from fakelens.metrics import roc_auc
    from fakelens.sysinfo import describe_machine

    with open(HALVES_FILE, newline="") as fh:
        side = {r["group"]: r["half"] for r in csv.DictReader(fh)}
    with open(args.data / "media.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["kind"] == "video" and r["label"] in ("real", "fake")]
    videos = [r for r in rows if pool_of(r["path"]) == "dev" and side.get(r["group"]) == args.half]
    pairs = []
    for v in videos:
        source = args.data / v["path"]
        pairs.append((source, reencode(source, args.work / args.half / (v["path"].replace("/", "__") + ".mp4"))))
    labels = [1 if v["label"] == "fake" else 0 for v in videos]
    subsets = {"all videos": list(range(len(videos)))}
    subsets["FF++ + DFDC videos"] = [i for i, v in enumerate(videos) if v["dataset"] in ("ffpp-c23", "dfdc")]
    lines = [
        f"{args.half} half: {len(videos)} videos ({labels.count(0)} real, {labels.count(1)} fake), `predict` end to end; {describe_machine()}",
        "",
        "| model | subset | as they are | half size + H.264 CRF 35 | drop |",
        "|---|---|---:|---:|---:|",
    ]
    for spec in args.model:
        name, _, path = spec.partition("=")
        detector = Detector.from_checkpoint(path)
        scores = {}
        for way, column in (("clean", 0), ("reencoded", 1)):
            # A file without a face (or that fails) scores 0.5: no evidence either way.
            scores[way] = [getattr(r, "score", None) or 0.5 for _, r in detector.predict_many([p[column] for p in pairs])]
        for subset, idx in subsets.items():
            clean = roc_auc([labels[i] for i in idx], [scores["clean"][i] for i in idx])
            worse = roc_auc([labels[i] for i in idx], [scores["reencoded"][i] for i in idx])
            lines.append(f"| {name} | {subset} ({len(idx)}) | {clean:.3f} | {worse:.3f} | {clean - worse:+.3f} |")
        print(lines[-2], lines[-1], sep="\n", file=sys.stderr)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
