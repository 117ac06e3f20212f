"""What compression in the loop costs: training images per second made by the data pipeline (load, self-blend,
augment) with ``--codec-p`` 0 (the baseline) and 0.5 / 1, alternated in one process, and ``codec_roundtrip``
alone per codec.

    python benchmarks/codec_cost.py --manifest runs/faces/manifest.csv [--images 200] [--rounds 3]

Prints img/s of each way, their ratio to the baseline, and the machine and its load. Torch-free work on one core
(the loader worker's share), as ``fakelens train --workers 1`` runs it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True, help="a manifest of face crops (its train split is read)")
    parser.add_argument("--images", type=int, default=200, help="pairs made per timed run (default 200)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    import cv2

    from fakelens.data import CropDataset, read_manifest
    from fakelens.data.augment import Augmenter
    from fakelens.robustness import CODECS, codec_roundtrip
    from fakelens.sysinfo import describe_machine
    from fakelens.training_data import build_train_items

    cv2.setNumThreads(1)
    rows = read_manifest(args.manifest, split="train")[: args.images]
    items = build_train_items(rows, "sbi")
    ways = {p: CropDataset(rows, items, augment=Augmenter(tight_p=0.25, codec_p=p), seed=0, paired=True) for p in (0.0, 0.5, 1.0)}
    runs: dict[float, list[float]] = {p: [] for p in ways}
    for round_ in range(args.rounds):
        for p, dataset in ways.items():
            dataset.epoch = round_
            start = time.perf_counter()
            for k in range(len(dataset)):
                dataset.get_image(k)
            runs[p].append(len(dataset) / (time.perf_counter() - start))
    print(describe_machine())
    base = statistics.median(runs[0.0])
    for p, values in runs.items():
        rate = statistics.median(values)
        print(f"codec-p {p:.1f}: {rate:6.1f} img/s  ({rate / base:.3f}x the baseline; runs {', '.join(f'{v:.1f}' for v in values)})")
    image = np.ascontiguousarray(ways[0.0].get_image(0)[0])
    for codec in CODECS:
        for scale in (1.0, 0.5):
            start = time.perf_counter()
            for crf in range(18, 41):
                codec_roundtrip(image, codec, crf, scale)
            print(f"codec_roundtrip {codec} at {scale}x: {23 / (time.perf_counter() - start):6.1f} img/s (CRF 18-40)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
