"""Folder throughput of `fakelens predict`: videos per minute, file by file (`--sequential`) against the
overlapped default (the next file decodes while this one is scored), in one run; with ``--old``, also an
older checkout's `fakelens predict` (its ``src/`` on ``PYTHONPATH``), the true "before" of #11.

Each way runs as its own `fakelens predict --json` process over the same videos (start-up included, as a
user sees it), alternated ``--repeat`` times so a change in the machine's load touches both alike. The
default videos: 20 of the shared pool's, every size from 256x256 tight face clips to 1080p, chosen by a
fixed rule (every third video of media.csv, sorted by path) so that runs compare. Both ways must give the
same verdicts and scores (checked); all load this checkout's bundled model.

    .venv/bin/python benchmarks/predict_folder.py [--count 20] [--repeat 2] [--old /tmp/fakelens-old]
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

from fakelens.detector import DEFAULT_MODEL
from fakelens.sysinfo import describe_machine

ROOT = Path(__file__).resolve().parents[1]
FAKELENS = [sys.executable, "-m", "fakelens"]


def pool_videos(data: Path, count: int) -> list[Path]:
    with open(data / "media.csv", newline="") as handle:
        videos = sorted(data / r["path"] for r in csv.DictReader(handle) if r["kind"] == "video")
    return videos[::3][:count]


def run(paths: list[Path], extra: list[str], src: Path) -> tuple[float, dict[str, tuple]]:
    env = dict(os.environ, PYTHONPATH=str(src))
    start = time.perf_counter()
    # Every way loads this checkout's bundled model, so they differ only in code (an old checkout bundles its own).
    command = [*FAKELENS, "predict", "--json", "--checkpoint", str(DEFAULT_MODEL), *extra, *map(str, paths)]
    out = subprocess.run(command, capture_output=True, text=True, check=False, env=env).stdout
    seconds = time.perf_counter() - start
    rows = {row["path"]: (row["label"], row["score"]) for row in map(json.loads, out.splitlines())}
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the media pool (media.csv)")
    parser.add_argument("--count", type=int, default=20, help="videos (default 20)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each way; the median is reported")
    parser.add_argument("--old", type=Path, default=None, help="an older checkout to time too (e.g. a git worktree of 7ec18e0)")
    args = parser.parse_args()

    paths = pool_videos(args.data, args.count)
    print(f"machine: {describe_machine()}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{len(paths)} videos from {args.data}: {', '.join(p.name for p in paths)}")
    ways = {"sequential (--sequential)": (["--sequential"], ROOT / "src"), "overlapped (defaults)": ([], ROOT / "src")}
    if args.old is not None:
        ways = {f"old checkout ({args.old.name})": ([], args.old / "src"), **ways}
    times: dict[str, list[float]] = {name: [] for name in ways}
    results: dict[str, dict] = {}
    for _ in range(args.repeat):
        for name, (extra, src) in ways.items():
            seconds, rows = run(paths, extra, src)
            times[name].append(seconds)
            results[name] = rows
    print(f"\n{'way':45} {'seconds':>8} {'videos/min':>11}")
    rates = {}
    for name in ways:
        seconds = statistics.median(times[name])
        rates[name] = len(paths) * 60.0 / seconds
        print(f"{name:45} {seconds:8.1f} {rates[name]:11.1f}   runs: {', '.join(f'{t:.1f}' for t in times[name])}")
    *_, first, second = list(ways)
    print(f"overlapped / sequential throughput: {rates[second] / rates[first]:.2f}x")
    if args.old is not None:
        print(f"overlapped / old checkout throughput: {rates[second] / rates[next(iter(ways))]:.2f}x")
    a, b = results[next(iter(ways))], results[second]
    worst = max((abs(a[p][1] - b[p][1]) for p in a if p in b and a[p][1] is not None and b[p][1] is not None), default=0.0)
    same = {p: v[0] for p, v in a.items()} == {p: v[0] for p, v in b.items()}
    print(f"same verdicts as the first way: {same}; largest score difference: {worst:.5f}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
