"""Folder throughput of `fakelens predict`: videos per minute, file by file (`--sequential`, the path before
#11) against the overlapped default (the next file decodes while this one is scored), in one run.

Each way runs as its own `fakelens predict --json` process over the same videos (start-up included, as a
user sees it), alternated ``--repeat`` times so a change in the machine's load touches both alike. The
default videos: 20 of the shared pool's, every size from 256x256 tight face clips to 1080p, chosen by a
fixed rule (every third video of media.csv, sorted by path) so that runs compare. Both ways must give the
same verdicts and scores (checked).

    .venv/bin/python benchmarks/predict_folder.py [--count 20] [--repeat 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fakelens.sysinfo import describe_machine

ROOT = Path(__file__).resolve().parents[1]
FAKELENS = [sys.executable, "-m", "fakelens"]


def pool_videos(data: Path, count: int) -> list[Path]:
    with open(data / "media.csv", newline="") as handle:
        videos = sorted(data / r["path"] for r in csv.DictReader(handle) if r["kind"] == "video")
    return videos[::3][:count]


def run(paths: list[Path], extra: list[str]) -> tuple[float, dict[str, tuple]]:
    start = time.perf_counter()
    out = subprocess.run([*FAKELENS, "predict", "--json", *extra, *map(str, paths)], capture_output=True, text=True, check=False).stdout
    seconds = time.perf_counter() - start
    rows = {row["path"]: (row["label"], row["score"]) for row in map(json.loads, out.splitlines())}
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the media pool (media.csv)")
    parser.add_argument("--count", type=int, default=20, help="videos (default 20)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each way; the median is reported")
    args = parser.parse_args()

    paths = pool_videos(args.data, args.count)
    print(f"machine: {describe_machine()}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{len(paths)} videos from {args.data}: {', '.join(p.name for p in paths)}")
    ways = {"sequential (--sequential --keyframes never)": ["--sequential", "--keyframes", "never"], "overlapped (defaults)": []}
    times: dict[str, list[float]] = {name: [] for name in ways}
    results: dict[str, dict] = {}
    for _ in range(args.repeat):
        for name, extra in ways.items():
            seconds, rows = run(paths, extra)
            times[name].append(seconds)
            results[name] = rows
    print(f"\n{'way':45} {'seconds':>8} {'videos/min':>11}")
    rates = {}
    for name in ways:
        seconds = statistics.median(times[name])
        rates[name] = len(paths) * 60.0 / seconds
        print(f"{name:45} {seconds:8.1f} {rates[name]:11.1f}   runs: {', '.join(f'{t:.1f}' for t in times[name])}")
    first, second = list(ways)
    print(f"overlapped / sequential throughput: {rates[second] / rates[first]:.2f}x")
    a, b = results[first], results[second]
    worst = max((abs(a[p][1] - b[p][1]) for p in a if p in b and a[p][1] is not None and b[p][1] is not None), default=0.0)
    same = {p: v[0] for p, v in a.items()} == {p: v[0] for p, v in b.items()}
    print(f"same verdicts: {same}; largest score difference: {worst:.5f} (keyframe-sampled files may differ; see scripts/compare_scores.py)")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
