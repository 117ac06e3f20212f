"""Preprocessing throughput: videos per minute, and where the time goes (decode, detect, write).

Runs ``fakelens.preprocess.preprocess`` twice on the same videos in this process, into fresh
folders, and prints the ratio of a candidate against a baseline:

* ``--compare detection-size`` (default): full-resolution detection (baseline) vs ``detection_size=640``;
* ``--compare workers``: ``workers=1`` (baseline) vs ``workers=2`` (worth it on >= 4 free cores).

Stage times are summed over the worker processes (decode = sampling frames with PyAV, detect = MTCNN +
cropping, write = JPEG encoding and atomic writes); wall time includes model loading and pool start.

    .venv/bin/python benchmarks/preprocess_speed.py [--videos FILE_OR_DIR ...] [--limit 6] [--frames 8]
        [--compare detection-size|workers] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from fakelens.data import VideoRecord
from fakelens.media import VIDEO_SUFFIXES, probe_video
from fakelens.preprocess import PreprocessConfig, preprocess
from fakelens.sysinfo import describe_machine

ROOT = Path(__file__).resolve().parents[1]
#: Default videos: the FF++ c23 clips of the shared pool (mostly 1280x720), else the bundled examples.
DEFAULT_SOURCES = [ROOT.parent / "shared" / "data" / "videos" / "ffpp-c23", ROOT / "examples"]


def find_videos(sources: list[Path], limit: int) -> list[Path]:
    videos: list[Path] = []
    for source in sources:
        if source.is_file():
            videos.append(source)
        elif source.is_dir():
            videos.extend(sorted(p for p in source.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES))
        if len(videos) >= limit:
            break
    return videos[:limit]


def run_once(name: str, records: list[VideoRecord], config: PreprocessConfig, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="fakelens-bench-") as out:
        start = time.perf_counter()
        summary = preprocess(records, out, config, workers=workers, progress=False)
        wall = time.perf_counter() - start
    stages = summary.stage_seconds
    busy = sum(stages.values()) or 1.0
    print(
        f"{name:<28} {wall:7.1f} s wall  {len(records) / wall * 60:6.1f} videos/min  {summary.crops:4d} crops  "
        + "  ".join(f"{k} {v:5.1f} s ({v / busy:4.0%})" for k, v in stages.items())
    )
    return {"wall": wall, "crops": summary.crops, **stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", nargs="*", type=Path, default=None, help="video files or folders")
    parser.add_argument("--limit", type=int, default=6, help="videos to use (default 6)")
    parser.add_argument("--frames", type=int, default=8, help="frames per video (default 8)")
    parser.add_argument("--compare", choices=["detection-size", "workers"], default="detection-size")
    parser.add_argument("--device", default=None, help="detector device (default: CUDA when available)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    videos = find_videos(args.videos or DEFAULT_SOURCES, args.limit)
    if not videos:
        raise SystemExit("no videos found; pass --videos")
    records = [
        VideoRecord(
            path=str(p.resolve()), relpath=f"{i:03d}_{p.name}", label="real", split="train", group=p.stem, identity=p.stem, method="", dataset="bench"
        )
        for i, p in enumerate(videos)
    ]
    sizes = sorted({f"{probe_video(p).width}x{probe_video(p).height}" for p in videos})
    print(f"machine: {describe_machine()}")
    print(f"videos: {len(videos)} ({', '.join(sizes)}), {args.frames} frames each\n")

    base = PreprocessConfig(frames=args.frames, device=args.device)
    if args.compare == "detection-size":
        baseline = run_once("full-resolution detection", records, base, 1)
        candidate = run_once("detection_size=640", records, PreprocessConfig(frames=args.frames, detection_size=640, device=args.device), 1)
    else:
        baseline = run_once("workers=1", records, base, 1)
        candidate = run_once("workers=2", records, base, 2)
    print(
        f"\nspeed-up (wall): {baseline['wall'] / candidate['wall']:.2f}x; "
        f"detection: {baseline['detect'] / max(candidate['detect'], 1e-9):.2f}x; "
        f"crops {baseline['crops']} -> {candidate['crops']}"
    )


if __name__ == "__main__":
    main()
