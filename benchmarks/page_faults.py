"""Page faults, CPU time and wall time per ``Detector.predict``, with freed memory kept (the default) and without.

:func:`fakelens.sysinfo.keep_freed_memory` is process-wide, so each setting runs in its own child process
(``FAKELENS_KEEP_FREED_MEMORY=1`` or ``0``), the two alternating ``--rounds`` times so that a change in the
machine's speed touches both alike. Each child loads the bundled model, predicts each clip once to warm up,
then ``--repeat`` times, and reports per predict: minor page faults, CPU seconds of the process (all threads)
and wall seconds. Printed: the median over rounds of each, and kept / not kept.

    .venv/bin/python benchmarks/page_faults.py [--videos A.mp4 B.mp4] [--rounds 3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = [
    ROOT / "examples" / "fake_ffpp_NeuralTextures_004_982.mp4",  # 1280x720, 12.4 s
    ROOT.parent / "shared" / "data" / "videos" / "dfdc" / "ayhm23__fake.mp4",  # 1920x1080, 10.0 s
]

CHILD = """
import json, resource, sys, time
from fakelens.detector import DEFAULT_MODEL, Detector
from fakelens.sysinfo import keep_freed_memory

detector = Detector.from_checkpoint(DEFAULT_MODEL, num_frames=32)
repeat, videos = int(sys.argv[1]), sys.argv[2:]
out = {"allocator": keep_freed_memory()}
for video in videos:
    detector.predict(video)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(repeat):
        detector.predict(video)
    out[video] = {
        "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / repeat,
        "cpu": (time.process_time() - cpu) / repeat,
        "wall": (time.perf_counter() - wall) / repeat,
    }
print(json.dumps(out))
"""


def run_child(keep: bool, videos: list[Path], repeat: int) -> dict:
    env = {**os.environ, "FAKELENS_KEEP_FREED_MEMORY": "1" if keep else "0"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(repeat), *map(str, videos)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, nargs="+", default=DEFAULT_VIDEOS)
    parser.add_argument("--rounds", type=int, default=3, help="child processes per setting, alternated")
    parser.add_argument("--repeat", type=int, default=3, help="timed predicts per clip in each child")
    args = parser.parse_args()

    from fakelens.sysinfo import describe_machine

    print(describe_machine())
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for k in range(args.rounds):
        for keep in (True, False) if k % 2 == 0 else (False, True):  # alternate which goes first
            runs[keep].append(run_child(keep, args.videos, args.repeat))
    print(f"allocator: kept = {runs[True][0]['allocator']}; not kept = {runs[False][0]['allocator']}")
    print(f"{'clip':40} {'':9} {'faults':>9} {'CPU s':>7} {'wall s':>7}")
    for video in map(str, args.videos):
        rows = {keep: {key: statistics.median(run[video][key] for run in runs[keep]) for key in ("faults", "cpu", "wall")} for keep in runs}
        for keep, label in ((False, "not kept"), (True, "kept")):
            row = rows[keep]
            print(f"{Path(video).name[:40]:40} {label:9} {row['faults']:9.0f} {row['cpu']:7.3f} {row['wall']:7.3f}")
        ratio = {key: rows[True][key] / rows[False][key] for key in ("faults", "cpu", "wall")}
        print(f"{'':40} {'kept/not':9} {ratio['faults']:9.2f} {ratio['cpu']:7.2f} {ratio['wall']:7.2f}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
