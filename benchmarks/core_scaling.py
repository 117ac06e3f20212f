"""Does `Detector.predict` get faster with more cores? Wall time per clip with the process pinned to 1, 2, 4...
of this machine's cores (CPU affinity, as ``taskset`` sets it), against 1 core: the baseline, run beside it.

Each core count runs in its own process, pinned before torch, ONNX Runtime and FFmpeg start their threads, so
every thread pool sizes itself to the cores it may use, as it would on a machine of that size (the defaults:
:func:`fakelens.pipeline.face_threads` face finders, :func:`fakelens.pipeline.decode_threading`). Counts are
alternated ``--repeat`` times so a change in the machine's load touches all alike; the median is reported.
Default clips: the 12.4 s 720p example and a 10 s 1080p DFDC clip of the shared pool.

    .venv/bin/python benchmarks/core_scaling.py [--videos A.mp4 B.mp4] [--cores 1 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from fakelens.sysinfo import available_cores, describe_machine

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = [
    ROOT / "examples" / "fake_ffpp_NeuralTextures_004_982.mp4",  # 1280x720, 12.4 s
    ROOT.parent / "shared" / "data" / "videos" / "dfdc" / "ayhm23__fake.mp4",  # 1920x1080, 10.0 s
]

# Run in a child pinned to its cores: one warm-up predict per clip, then ``runs`` timed ones.
CHILD = """
import json, os, sys, time
os.sched_setaffinity(0, set(json.loads(sys.argv[1])))
from fakelens.detector import Detector
from fakelens.pipeline import decode_threading, face_threads
detector = Detector.default()
clips, runs = json.loads(sys.argv[2]), int(sys.argv[3])
times = {clip: [] for clip in clips}
scores = {}
for clip in clips:
    scores[clip] = detector.predict(clip).score
for _ in range(runs):
    for clip in clips:
        start = time.perf_counter()
        detector.predict(clip)
        times[clip].append(time.perf_counter() - start)
decode = decode_threading(1280 * 720) + "/" + decode_threading(1920 * 1080)
print(json.dumps({"times": times, "scores": scores, "face_threads": face_threads(), "decode": decode}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, nargs="+", default=DEFAULT_VIDEOS, help="clips to time (default: a 720p and a 1080p one)")
    parser.add_argument("--cores", type=int, nargs="+", default=None, help="core counts to pin to (default: 1, 2, 4, ... up to the cores here)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over the core counts (default 3), each timing every clip twice")
    args = parser.parse_args()

    usable = sorted(os.sched_getaffinity(0))
    counts = args.cores or [n for n in (1, 2, 4, 8, 16, 32) if n <= len(usable)]
    if any(n < 1 or n > len(usable) for n in counts):
        parser.error(f"--cores must be between 1 and {len(usable)}, the cores this process may use")
    clips = [str(v) for v in args.videos if v.is_file()]
    if not clips:
        parser.error("none of the videos exists (the default 1080p clip needs ../shared beside the checkout)")
    print(describe_machine())
    print(f"cores usable here: {available_cores()}; core counts: {counts}; clips: {', '.join(Path(c).name for c in clips)}")

    times: dict[int, dict[str, list[float]]] = {n: {c: [] for c in clips} for n in counts}
    setup: dict[int, tuple] = {}
    scores: dict[int, dict] = {}
    for _ in range(args.repeat):
        for n in counts:
            cmd = [sys.executable, "-c", CHILD, json.dumps(usable[:n]), json.dumps(clips), "2"]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            for clip in clips:
                times[n][clip] += result["times"][clip]
            setup[n] = (result["face_threads"], result["decode"])
            scores[n] = result["scores"]

    print(f"\n{'cores':>5} {'face finders':>12} {'decoder (720p/1080p)':>20} " + " ".join(f"{Path(c).name[:28]:>30}" for c in clips))
    base = {c: statistics.median(times[counts[0]][c]) for c in clips}
    for n in counts:
        cells = []
        for clip in clips:
            median = statistics.median(times[n][clip])
            cells.append(f"{median:8.3f} s ({base[clip] / median:4.2f}x)".rjust(30))
        print(f"{n:>5} {setup[n][0]:>12} {setup[n][1]:>20} " + " ".join(cells))
    same = all(scores[n] == scores[counts[0]] for n in counts)
    print(f"\n(x: speed against {counts[0]} core(s); median of {2 * args.repeat} runs; scores identical across core counts: {same})")
    try:
        print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    except OSError:
        pass


if __name__ == "__main__":
    main()
