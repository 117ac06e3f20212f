"""Scan throughput: videos per minute for sequential ``predict``, ``scan --engine local`` and ``scan --engine ray``.

Each mode scans the same videos from scratch (fresh output folders), wall time from start to finish,
model loading, pool or Ray start-up included (what a user waits for):

* ``predict``: one Detector in this process, ``detector.predict`` per video, one after another;
* ``local``: ``fakelens.scan.scan(engine="local", workers=N)`` (default 2, each worker loads its model);
* ``ray``: ``scan(engine="ray")`` on a local Ray instance with ``--ray-cpus`` CPUs (default 2), one
  classifier actor; skipped when Ray is not installed.

It also checks that the three agree (largest score difference). Videos: up to ``--limit`` (20) from
``../shared/data/videos`` (recursively, sorted), else the bundled examples.

    .venv/bin/python benchmarks/scan_throughput.py [--videos DIR_OR_FILE ...] [--limit 20] [--frames 32]
        [--workers 2] [--ray-cpus 2] [--modes predict,local,ray]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = [ROOT.parent / "shared" / "data" / "videos", ROOT / "examples"]


def find_videos(sources: list[Path], limit: int) -> list[Path]:
    from fakelens.constants import VIDEO_SUFFIXES

    for source in sources:
        if source.is_file():
            return [source]
        if source.is_dir():
            found = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if found:
                return found[:limit]
    return []


def bench_predict(videos: list[Path], frames: int) -> dict[str, float | None]:
    from fakelens import Detector
    from fakelens.errors import FakelensError

    detector = Detector.default(num_frames=frames)
    scores: dict[str, float | None] = {}
    for path in videos:
        try:
            scores[str(path.resolve())] = detector.predict(path).score
        except FakelensError:
            scores[str(path.resolve())] = None
    return scores


def bench_scan(videos: list[Path], frames: int, engine: str, workers: int, ray_cpus: int) -> dict[str, float | None]:
    import pyarrow.parquet as pq

    from fakelens.scan import ScanSettings, scan

    out = Path(tempfile.mkdtemp(prefix="fakelens-scan-bench-"))
    temp = Path("/tmp") / f"flray-bench-{os.getpid()}"
    try:
        options = {"workers": workers} if engine == "local" else {"workers": 1, "num_cpus": ray_cpus, "ray_options": {"_temp_dir": str(temp)}}
        scan(videos, out / "results", ScanSettings(frames=frames), engine=engine, progress=False, plot=False, **options)
        rows = pq.read_table(out / "results" / "results.parquet").to_pylist()
        return {r["path"]: r["score"] for r in rows}
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, nargs="+", default=DEFAULT_SOURCES)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="local engine processes")
    parser.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--modes", default="predict,local,ray")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local instance: no token under ~/.ray

    from fakelens.scan.ray_engine import ray_available
    from fakelens.sysinfo import describe_machine

    videos = find_videos(args.videos, args.limit)
    if not videos:
        raise SystemExit("no videos found")
    print(describe_machine())
    print(f"{len(videos)} videos from {videos[0].parent.parent if len(videos) > 1 else videos[0]}, {args.frames} frames each")
    results: dict[str, dict] = {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        if mode == "ray" and not ray_available():
            print('ray: skipped (Ray is not installed: pip install "fakelens[ray]")')
            continue
        start = time.perf_counter()
        if mode == "predict":
            scores = bench_predict(videos, args.frames)
            label = "sequential predict"
        else:
            scores = bench_scan(videos, args.frames, mode, args.workers, args.ray_cpus)
            label = f"scan --engine local ({args.workers} workers)" if mode == "local" else f"scan --engine ray ({args.ray_cpus} CPUs, 1 actor)"
        wall = time.perf_counter() - start
        results[mode] = scores
        print(f"{label:<40} {wall:7.1f} s  {len(videos) / wall * 60:6.1f} videos/min")
    if len(results) > 1:
        names = list(results)
        base = results[names[0]]
        for name in names[1:]:
            diffs = [abs(base[p] - s) for p, s in results[name].items() if s is not None and base.get(p) is not None]
            same_none = all((base.get(p) is None) == (s is None) for p, s in results[name].items())
            print(f"{name} vs {names[0]}: largest score difference {max(diffs, default=0.0):.2e}, same NO_FACE/ERROR inputs: {same_none}")


if __name__ == "__main__":
    main()
