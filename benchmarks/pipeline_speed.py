"""End-to-end time per clip: fakelens's Detector against the naive pipeline, runs interleaved.

The naive pipeline is what most demo projects do: seek to each of the 32 frames with OpenCV,
detect faces at full resolution one frame at a time, and classify crops one by one in eager PyTorch. It runs
in a child process with glibc's default allocator (a Detector makes this process keep freed memory).
fakelens runs twice: "sequential" runs the stages one after the other as before #11 (``Detector(overlap=False)``;
its decoding already skips the non-reference frames nobody asked for, new in #11), "fast" the defaults (stages overlapped in threads; the frames
asked for, as ``keyframes="auto"`` would shift scores). Default clips: the 12.4 s 720p example and a 10 s 1080p
DFDC clip of the shared pool, plus that 1080p clip re-encoded at 720p (libx264 CRF 18, made once into the temp
folder), so that the 1080p/720p time ratio compares clips of equal length and content, and a 10 s 720p clip is
timed directly. The summary gives the ratio for that pair, from the medians and again with the two clips
alternated run by run (this VM's speed drifts within minutes), and per clip second for the first two.

The summary adds, for that pair, the ratio of the work of the stages (the sequential path's stage times): the
decoder and P-Net's pyramid both grow with the pixels when the smallest face is fixed in pixels of the frame, so
overlap on 2 cores tends to that ratio; ``--scaled-min-face`` times the large clip with the smallest face at the
same share of the frame instead.

    .venv/bin/python benchmarks/pipeline_speed.py [--videos A.mp4 B.mp4] [--no-same-clip] [--repeat 3] [--scaled-min-face]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from fakelens.checkpoint import load_model
from fakelens.constants import DEFAULT_MIN_FACE_SIZE
from fakelens.detector import DEFAULT_MODEL, Detector
from fakelens.faces import crop_face
from fakelens.media import probe_video, sample_indices
from fakelens.model import preprocess_crops
from fakelens.mtcnn import MTCNN
from fakelens.sysinfo import describe_machine

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = [
    ROOT / "examples" / "fake_ffpp_NeuralTextures_004_982.mp4",  # 1280x720, 12.4 s
    ROOT.parent / "shared" / "data" / "videos" / "dfdc" / "ayhm23__fake.mp4",  # 1920x1080, 10.0 s
]


def downscaled_copy(video: Path, height: int = 720) -> Path:
    """``video`` re-encoded at ``height`` (libx264 CRF 18, yuv420p, same frame rate), made once into the temp folder."""
    import av

    out = Path(tempfile.gettempdir()) / "fakelens-bench" / f"{video.stem}_{height}p.mp4"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.mp4")
    with av.open(str(video)) as source, av.open(str(partial), mode="w") as target:
        stream = source.streams.video[0]
        width = int(round(stream.width * height / stream.height / 2)) * 2
        encoder = target.add_stream("libx264", rate=stream.average_rate)
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.options = {"crf": "18"}
        for frame in source.decode(stream):
            image = cv2.resize(frame.to_ndarray(format="rgb24"), (width, height), interpolation=cv2.INTER_AREA)
            target.mux(encoder.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        target.mux(encoder.encode())
    partial.replace(out)  # atomic: an interrupted run leaves no half-written clip under the final name
    return out


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


def naive_in_child(video: Path, checkpoint: Path) -> dict[str, float]:
    """:func:`naive` in a child process with glibc's default allocator, as a demo project runs: in this process
    building a Detector has made glibc keep freed memory (fakelens.sysinfo.keep_freed_memory), which the naive
    pipeline would otherwise enjoy too. Process start-up and model loading are not timed."""
    env = {**os.environ, "FAKELENS_KEEP_FREED_MEMORY": "0"}
    command = [sys.executable, __file__, "--naive-child", str(video), "--checkpoint", str(checkpoint)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def paired_ratio(detector_a: Detector, video_a: Path, detector_b: Detector, video_b: Path, pairs: int) -> tuple[float, float, float]:
    """Median of ``pairs`` ratios a / b of ``predict`` wall times, a and b run back to back (which goes first
    alternates), and the median wall time of each."""
    for detector, video in ((detector_a, video_a), (detector_b, video_b)):
        detector.predict(video)  # warm-up
    walls: dict[str, list[float]] = {"a": [], "b": []}
    for k in range(pairs):
        order = (("a", detector_a, video_a), ("b", detector_b, video_b))
        for name, detector, video in order if k % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            detector.predict(video)
            walls[name].append(time.perf_counter() - start)
    ratio = statistics.median(x / y for x, y in zip(walls["a"], walls["b"]))
    return ratio, statistics.median(walls["a"]), statistics.median(walls["b"])


def bench_clip(video: Path, model, info, checkpoint: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Median per-stage seconds of the naive pipeline, fakelens's sequential path and its overlapped one."""
    fast = Detector(model, info, num_frames=32)  # the defaults: overlapped
    sequential = Detector(model, info, num_frames=32, overlap=False, keyframes="never")  # fakelens before #11
    for detector in (fast, sequential):
        detector.predict(video)  # warm-up: ONNX export/load, first-call allocations
    runs: dict[str, list[dict[str, float]]] = {"naive": [], "sequential": [], "fast": []}
    for _ in range(repeat):  # interleaved, so a change in the machine's load touches all three alike
        for name, detector in (("sequential", sequential), ("fast", fast)):
            start = time.perf_counter()
            result = detector.predict(video)
            runs[name].append({**result.timings, "wall": time.perf_counter() - start, "score": result.score or float("nan")})
            if name == "fast":
                runs[name][-1]["keyframes"] = float(result.sampling == "keyframes")
        runs["naive"].append({**naive_in_child(video, checkpoint), "wall": 0.0})
        runs["naive"][-1]["wall"] = runs["naive"][-1]["total"]
    return {name: {key: statistics.median(r.get(key, 0.0) for r in rows) for key in rows[0]} for name, rows in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, nargs="+", default=DEFAULT_VIDEOS, help="clips to time (default: a 720p and a 1080p one)")
    parser.add_argument("--no-same-clip", dest="same_clip", action="store_false", help="do not add the 720p re-encode of the largest clip")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each pipeline; the median is reported")
    parser.add_argument(
        "--scaled-min-face",
        action="store_true",
        help=f"also time the large clip with the smallest face scaled to its height ({DEFAULT_MIN_FACE_SIZE} px per 720 lines)",
    )
    parser.add_argument("--naive-child", type=Path, help=argparse.SUPPRESS)  # see naive_in_child
    args = parser.parse_args()
    if args.naive_child:
        print(json.dumps(naive(args.naive_child, load_model(args.checkpoint)[0])))
        return

    print(f"machine: {describe_machine()}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    model, info = load_model(args.checkpoint)
    videos = list(args.videos)
    pair = None
    if args.same_clip:
        largest = max(videos, key=lambda v: probe_video(v).height)
        if probe_video(largest).height > 720:
            pair = (largest, downscaled_copy(largest, 720))
            videos.append(pair[1])
    totals = {}
    for video in videos:
        clip = probe_video(video)
        print(f"\nclip: {video.name} {clip.width}x{clip.height}, {clip.duration:.1f} s, {clip.frame_count} frames; 32 sampled")
        result = bench_clip(video, model, info, args.checkpoint, args.repeat)
        print(f"{'stage':10} {'naive s':>9} {'sequential s':>13} {'fast s':>8} {'fast vs naive':>14} {'fast vs sequential':>19}")
        for key in ("decode", "faces", "classify", "wait", "total", "wall"):
            a, b, c = result["naive"].get(key, 0.0), result["sequential"].get(key, 0.0), result["fast"].get(key, 0.0)
            ratio = f"{a / c:13.1f}x" if a and c else f"{'-':>14}"
            print(f"{key:10} {a:9.3f} {b:13.3f} {c:8.3f} {ratio} {b / c if c else float('nan'):18.1f}x")
        sampling = "keyframes only" if result["fast"].get("keyframes") else "the frames asked for"
        print(
            f"P(fake): fast {result['fast']['score']:.4f}, sequential {result['sequential']['score']:.4f} ({sampling}); "
            f"naive {result['naive']['score']:.4f} (mean over frames, largest face, full resolution)"
        )
        print("(fast: stages overlap, so their times are the time each was busy and add up to more than the wall time)")
        totals[video] = (clip, result)

    print("\nsummary (wall seconds of Detector.predict, median; process start-up and model loading not included)")
    for video, (clip, result) in totals.items():
        fast, naive_total = result["fast"]["wall"], result["naive"]["wall"]
        print(
            f"  {video.name}: {clip.height}p {clip.duration:.1f} s: fast {fast:.3f} s ({fast / clip.duration:.3f} s per clip second), "
            f"{naive_total / fast:.1f}x the naive pipeline, {result['sequential']['wall'] / fast:.2f}x the sequential path"
        )
    by_height = sorted(totals.values(), key=lambda item: item[0].height)
    if len(by_height) >= 2:
        (small, a), (large, b) = by_height[0], by_height[-1]
        raw = b["fast"]["wall"] / a["fast"]["wall"]
        per_second = (b["fast"]["wall"] / large.duration) / (a["fast"]["wall"] / small.duration)
        print(f"  {large.height}p / {small.height}p time: {raw:.2f} per clip, {per_second:.2f} per clip second (target <= 1.3)")
    if pair is not None:
        (big, a), (small, b) = totals[pair[0]], totals[pair[1]]
        print(
            f"  same clip, equal length ({big.duration:.1f} s), from the medians above: {big.height}p {a['fast']['wall']:.3f} s / "
            f"{small.height}p {b['fast']['wall']:.3f} s = {a['fast']['wall'] / b['fast']['wall']:.2f} (target <= 1.3)"
        )
        # The medians above come minutes apart, and this VM's speed drifts by more than the effect: the ratio
        # is measured again with the two clips alternated, each 1080p run divided by the 720p run beside it.
        fast = Detector(model, info, num_frames=32)
        ratio, big_wall, small_wall = paired_ratio(fast, pair[0], fast, pair[1], max(5, 2 * args.repeat))
        print(
            f"  same clip, alternated ({max(5, 2 * args.repeat)} pairs): {big.height}p {big_wall:.3f} s, {small.height}p "
            f"{small_wall:.3f} s, median ratio {ratio:.2f} (target <= 1.3)"
        )
        # The work itself: what the sequential path's stages cost, one after the other. Overlap on 2 cores
        # divides both clips' work alike, so their wall-time ratio tends to this one.
        work = {k: a["sequential"][k] / b["sequential"][k] for k in ("decode", "faces", "classify")}
        total = sum(a["sequential"][k] for k in work) / sum(b["sequential"][k] for k in work)
        print(
            f"  same clip, work of the stages (sequential path): {big.height}p / {small.height}p = {total:.2f} "
            f"(decode {work['decode']:.2f}, faces {work['faces']:.2f}, classify {work['classify']:.2f})"
        )
        if args.scaled_min_face:
            min_face = round(DEFAULT_MIN_FACE_SIZE * big.height / small.height)
            scaled = Detector(model, info, num_frames=32, min_face_size=min_face)
            ratio, big_wall, small_wall = paired_ratio(scaled, pair[0], fast, pair[1], max(5, 2 * args.repeat))
            print(
                f"  with the smallest face at the same share of the frame ({min_face} px at {big.height}p, "
                f"{DEFAULT_MIN_FACE_SIZE} px at {small.height}p), alternated: {big.height}p {big_wall:.3f} s, "
                f"{small.height}p {small_wall:.3f} s, median ratio {ratio:.2f}"
            )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
