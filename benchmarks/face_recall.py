"""Face recall of ``predict``'s face stage against reference MTCNN at full resolution, with and without the
second look (:func:`fakelens.faces.second_look`), and what the second look costs.

    python benchmarks/face_recall.py --data ../shared/data [--pools dev,real_video,generated] [--out DIR]

For every video of the chosen pools (media.csv; ``dev`` is the face-swap dev pool), the 32 frames ``predict``
samples are decoded once, then:

* **reference**: MTCNN at full resolution with facenet-pytorch's defaults (20 px smallest face, thresholds
  0.6/0.7/0.7), the detector ours matches box for box (benchmarks/mtcnn_README.md); a frame counts when it finds
  a face there. ``ref60`` counts only faces of at least 60 px, the smallest ``predict`` looks for;
* **before / after**: ``Detector.default()``'s face stage (640 px detection, 60 px smallest face) as released
  with v5 (``look_again=False, track_face_prob=None``) and as now (the second look, and faces of probability
  0.7-0.9 scored on tracks that hold a surer face); a frame counts when a face is *scored* there.

Recall = frames counted ÷ frames the reference counts (frames with a face in both, over the reference's), summed
over videos. Time: the face stage of each way on each clip, the two ways alternated on the same decoded frames;
and ``--timing-clips`` times whole ``predict`` calls (decode + faces + scores) both ways alternated.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from pool_lists import pool_of  # noqa: E402

TIMING_CLIPS = ["examples/fake_ffpp_NeuralTextures_004_982.mp4", "videos/dfdc/ayhm23__fake.mp4"]


def face_frames(detector, frames) -> tuple[list[bool], float]:
    """Which frames get a scored face from ``detector``'s face stage (as ``predict`` keeps them), and its time."""
    from fakelens.faces import scored_crops

    start = time.perf_counter()
    crops = scored_crops(detector.faces.extract_frames(frames), detector.min_face_prob, detector.track_face_prob)
    busy = time.perf_counter() - start
    scored = {c.frame_index for c in crops}
    return [f.index in scored for f in frames], busy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--pools", default="dev", help="comma list of dev, real_video, generated (default dev)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="alternated predict pairs per timing clip")
    parser.add_argument("--timing-clips", default=",".join(TIMING_CLIPS), help="comma list, relative to the repo or --data")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None, help="folder for face_recall.json and .csv")
    parser.add_argument("--timing-only", action="store_true", help="only the alternated predict timings of --timing-clips")
    args = parser.parse_args(argv)
    import torch

    from fakelens import Detector
    from fakelens.errors import FakelensError
    from fakelens.media import load_frames
    from fakelens.mtcnn import MTCNN
    from fakelens.sysinfo import describe_machine

    if args.threads:
        torch.set_num_threads(args.threads)
    pools = set(args.pools.split(","))
    with open(args.data / "media.csv", newline="") as fh:
        videos = [r for r in csv.DictReader(fh) if r["kind"] == "video" and r["label"] in ("real", "fake") and pool_of(r["path"]) in pools]
    if args.timing_only:
        videos = []
    reference = MTCNN(min_face_size=20)
    ways = {
        "before": Detector.default(look_again=False, track_face_prob=None, overlap=False),  # the code of v5's release
        "after": Detector.default(overlap=False),  # second look, and faces on confirmed tracks scored from 0.7
    }
    print(f"{len(videos)} videos of {sorted(pools)}; {describe_machine()}", file=sys.stderr)
    rows, totals = [], defaultdict(lambda: defaultdict(float))
    for n, video in enumerate(videos, 1):
        path = args.data / video["path"]
        try:
            frames = load_frames(path, num_frames=args.frames)
        except FakelensError as exc:
            print(f"  skipped {video['path']}: {exc}", file=sys.stderr)
            continue
        ref = reference.detect([f.image for f in frames])
        has_ref = [bool(fs) for fs in ref]
        has_ref60 = [any(max(f.width, f.height) >= 60 for f in fs) for fs in ref]
        row = {"path": video["path"], "pool": pool_of(video["path"]), "dataset": video["dataset"], "label": video["label"],
               "size": f"{frames[0].image.shape[1]}x{frames[0].image.shape[0]}", "frames": len(frames),
               "ref": sum(has_ref), "ref60": sum(has_ref60)}  # fmt: skip
        for name, detector in ways.items():
            found, busy = face_frames(detector, frames)
            row[name] = sum(found)
            row[f"{name}_hit"] = sum(a and b for a, b in zip(found, has_ref))
            row[f"{name}_hit60"] = sum(a and b for a, b in zip(found, has_ref60))
            row[f"{name}_s"] = round(busy, 3)
        rows.append(row)
        for key in dict.fromkeys(("all", row["pool"], row["dataset"])):  # a pool and a dataset may share a name
            for field in ("ref", "ref60", "before_hit", "after_hit", "before_hit60", "after_hit60", "before_s", "after_s", "frames"):
                totals[key][field] += row[field]
        flag = "  <- gained" if row["after_hit"] > row["before_hit"] else ""
        print(f"  [{n}/{len(videos)}] {video['path']} {row['size']}: ref {row['ref']}, before {row['before_hit']}, after {row['after_hit']}"
              f" ({row['before_s']:.2f} s / {row['after_s']:.2f} s){flag}", file=sys.stderr)  # fmt: skip

    timing = {}
    for clip in [c for c in args.timing_clips.split(",") if c]:
        path = ROOT / clip if (ROOT / clip).is_file() else args.data / clip
        if not path.is_file():
            continue
        runs: dict[str, list[float]] = {"before": [], "after": []}
        for name in ("before", "after"):  # warm-up, not counted
            ways[name].predict(path)
        for _ in range(args.repeat):
            for name, detector in ways.items():
                start = time.perf_counter()
                detector.predict(path)
                runs[name].append(time.perf_counter() - start)
        before, after = statistics.median(runs["before"]), statistics.median(runs["after"])
        timing[clip] = {"before_s": before, "after_s": after, "ratio": after / before, "runs": runs}

    head = (
        "| subset | frames | reference frames (>= 60 px) | recall before | **recall after** | >= 60 px: before / after | face stage: before / after |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]

    def r(x, d):
        return f"{x / d:.3f}" if d else "-"

    for key, t in totals.items():
        cells = [key, str(int(t["frames"])), f"{int(t['ref'])} ({int(t['ref60'])})"]
        cells += [r(t["before_hit"], t["ref"]), f"**{r(t['after_hit'], t['ref'])}**"]
        cells += [f"{r(t['before_hit60'], t['ref60'])} / {r(t['after_hit60'], t['ref60'])}", f"{t['before_s']:.1f} s / {t['after_s']:.1f} s"]
        lines.append("| " + " | ".join(cells) + " |")
    if timing:
        lines += ["", "| clip | predict before | predict after | after ÷ before |", "|---|---:|---:|---:|"]
        for clip, t in timing.items():
            lines.append(f"| {clip} | {t['before_s']:.3f} s | {t['after_s']:.3f} s | {t['ratio']:.3f} |")
    text = "\n".join(lines)
    print(describe_machine())
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "face_recall.json").write_text(
            json.dumps({"machine": describe_machine(), "totals": totals, "timing": timing, "videos": rows}, indent=2)
        )
        if rows:
            with open(args.out / "face_recall.csv", "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        (args.out / "face_recall.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
