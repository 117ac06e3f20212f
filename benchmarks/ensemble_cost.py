"""What the cheap ensembles cost per clip: flip test-time augmentation (``tta="flip"``, every crop scored twice),
and the frame aggregation (``"confident"`` against ``"mean"``), each alternated with the plain way in one process.
A weight soup costs nothing at inference (it is one set of weights), so it has no row.

    python benchmarks/ensemble_cost.py [--repeat 5] [--clips a.mp4,b.mp4]

Prints the median ``predict`` wall time and the classifier's own time per clip for each way, the ratio against
the plain way, and the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ["examples/fake_ffpp_NeuralTextures_004_982.mp4", "examples/fake_dfdc_abhggqdift.mp4"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clips", default=",".join(CLIPS))
    args = parser.parse_args(argv)
    from fakelens import Detector
    from fakelens.sysinfo import describe_machine

    ways = {
        "plain (tta none, mean)": Detector.default(tta="none", aggregate="mean"),
        "flip TTA": Detector.default(tta="flip", aggregate="mean"),
        "confident aggregation": Detector.default(tta="none", aggregate="confident"),
    }
    print(describe_machine())
    for clip in args.clips.split(","):
        path = ROOT / clip
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
        for detector in ways.values():
            detector.predict(path)  # warm-up (ONNX session, caches)
        for _ in range(args.repeat):
            for name, detector in ways.items():
                start = time.perf_counter()
                result = detector.predict(path)
                runs[name].append((time.perf_counter() - start, result.timings.get("classify", 0.0)))
        base = statistics.median(t for t, _ in runs["plain (tta none, mean)"])
        print(f"\n{clip}")
        for name, values in runs.items():
            wall, classify = statistics.median(t for t, _ in values), statistics.median(c for _, c in values)
            print(f"  {name:24} predict {wall * 1000:7.0f} ms ({wall / base:.3f}x), classifier {classify * 1000:6.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
