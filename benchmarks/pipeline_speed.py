"""End-to-end time for one clip: fakelens's Detector against the naive pipeline, in the same process.

The naive pipeline is what most demo projects do: seek to each of the 32 frames with OpenCV,
detect faces at full resolution one frame at a time, and classify crops one by one in eager PyTorch.

    .venv/bin/python benchmarks/pipeline_speed.py [--video examples/fake_ffpp_NeuralTextures_004_982.mp4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from fakelens.checkpoint import load_model
from fakelens.detector import DEFAULT_DETECTION_SIZE, DEFAULT_MIN_FACE_SIZE, DEFAULT_MODEL, Detector
from fakelens.faces import crop_face
from fakelens.media import probe_video, sample_indices
from fakelens.model import preprocess_crops
from fakelens.mtcnn import MTCNN
from fakelens.sysinfo import describe_machine

ROOT = Path(__file__).resolve().parents[1]


def naive(video: Path, model, num_frames: int = 32) -> dict[str, float]:
    timings = {}
    start = time.perf_counter()
    capture = cv2.VideoCapture(str(video))
    frames = []
    for index in sample_indices(probe_video(video).frame_count, num_frames):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)  # one seek per frame
        ok, bgr = capture.read()
        if ok:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    timings["decode"] = time.perf_counter() - start

    start = time.perf_counter()
    detector = MTCNN()  # full resolution, 20 px faces
    crops = []
    for frame in frames:
        faces = detector.detect([frame])[0]
        if faces:
            crops.append(crop_face(frame, faces[0])[0])
    timings["faces"] = time.perf_counter() - start

    start = time.perf_counter()
    scores = []
    with torch.no_grad():
        for crop in crops:
            scores.append(torch.sigmoid(model(preprocess_crops(crop[None]))).item())
    timings["classify"] = time.perf_counter() - start
    timings["total"] = sum(timings.values())
    timings["score"] = float(np.mean(scores)) if scores else float("nan")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=ROOT / "examples" / "fake_ffpp_NeuralTextures_004_982.mp4")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each pipeline; the median is reported")
    args = parser.parse_args()

    info = probe_video(args.video)
    print(f"machine: {describe_machine()}")
    print(f"clip: {args.video.name} {info.width}x{info.height}, {info.duration:.1f} s, {info.frame_count} frames; 32 sampled")
    model, info = load_model(args.checkpoint)
    detector = Detector(model, info, num_frames=32)
    detector.predict(args.video)  # warm-up: ONNX export/load, first-call allocations

    ours_runs, naive_runs = [], []
    for _ in range(args.repeat):
        result = detector.predict(args.video)
        ours_runs.append(result.timings)
        naive_runs.append(naive(args.video, model))

    def median(runs, key):
        return statistics.median(r.get(key, 0.0) for r in runs)

    print(f"\n{'stage':10} {'fakelens s':>11} {'naive s':>9} {'speed-up':>9}")
    for key in ("decode", "faces", "classify", "total"):
        a, b = median(ours_runs, key), median(naive_runs, key)
        print(f"{key:10} {a:11.3f} {b:9.3f} {b / a if a else float('nan'):8.1f}x")
    print(
        f"\nfakelens: {result.label} P(fake)={result.score:.3f} at threshold {result.threshold:.3f} "
        f"({result.backend}, detection_size {DEFAULT_DETECTION_SIZE}, min face {DEFAULT_MIN_FACE_SIZE} px)"
    )
    print(f"naive:    P(fake)={naive_runs[-1]['score']:.3f} (mean over frames, largest face, full resolution)")
    print(f"ratio naive/fakelens total time: {median(naive_runs, 'total') / median(ours_runs, 'total'):.1f}x")


if __name__ == "__main__":
    main()
