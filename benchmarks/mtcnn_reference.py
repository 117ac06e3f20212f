"""Our MTCNN against facenet-pytorch 2.6 (same original weights): agreement and speed, in one run.

facenet-pytorch pins an old torch, so it is not a dependency: install it beside the venv, without its
dependencies, and point this script at it::

    .venv/bin/pip install --no-deps --target /tmp/facenet_ref facenet-pytorch==2.6.0
    .venv/bin/python benchmarks/mtcnn_reference.py --reference-path /tmp/facenet_ref --data ../shared/data

What it prints:

* agreement at the default settings on 8 frames of each of five videos (720p FF++, 1080p and 480p
  DFDC): detections found by both / only ours / only the reference (matched at IoU > 0.5), median box
  IoU and landmark distance;
* frames per second on the 720p frames, ours (one batched call per video) and the reference (its own
  batched call), timed alternately in this process, with the ratio; at the default and at faster
  settings (``min_face_size``, ``detection_size``), each also compared with the reference at the default;
* the machine: CPU, cores, torch version and threads, load average (the timings are wall-clock).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from fakelens.sysinfo import describe_machine

ROOT = Path(__file__).resolve().parents[1]
VIDEOS_720P = ["videos/ffpp-c23/183.mp4", "videos/ffpp-c23/634.mp4", "videos/ffpp-c23/004.mp4"]
VIDEOS_OTHER = ["videos/dfdc/ayhm23__real.mp4", "videos/dfdc/GipalLee__real.mp4"]
#: (detection_size, min_face_size) settings timed on the 720p frames; the first is the default.
SETTINGS = [(None, 20), (None, 40), (None, 60), (640, 20), (640, 40), (480, 40)]
INSTALL_HINT = ".venv/bin/pip install --no-deps --target /tmp/facenet_ref facenet-pytorch==2.6.0"


def import_reference(path: str):
    sys.path.insert(0, str(Path(path).resolve()))
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from facenet_pytorch import MTCNN as ReferenceMTCNN
    except ImportError as exc:
        return None, exc
    return ReferenceMTCNN, None


# --------------------------------------------------------------------------- detections as arrays


def ours_to_arrays(faces_per_frame):
    out = []
    for faces in faces_per_frame:
        boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
        points = np.array([f.landmarks for f in faces], dtype=np.float64).reshape(-1, 5, 2)
        out.append((boxes, points))
    return out


def reference_to_arrays(boxes, points, scale=(1.0, 1.0)):
    out = []
    divide = np.array(scale, dtype=np.float64)
    for b, p in zip(boxes, points):
        if b is None:
            out.append((np.zeros((0, 4)), np.zeros((0, 5, 2))))
        else:
            b = np.asarray(b, dtype=np.float64).reshape(-1, 2, 2) / divide
            p = np.asarray(p, dtype=np.float64).reshape(-1, 5, 2) / divide
            out.append((b.reshape(-1, 4), p))
    return out


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def compare(ours, reference) -> dict:
    """Greedy one-to-one matching per frame at IoU > 0.5; stats over matched pairs."""
    both = only_ours = only_ref = 0
    ious, dists, rel = [], [], []
    for (ob, op), (rb, rp) in zip(ours, reference):
        matched_o, matched_r = set(), set()
        if len(ob) and len(rb):
            m = iou_matrix(ob, rb)
            for flat in np.argsort(-m, axis=None):
                i, j = np.unravel_index(flat, m.shape)
                if m[i, j] <= 0.5:
                    break
                if i in matched_o or j in matched_r:
                    continue
                matched_o.add(i)
                matched_r.add(j)
                ious.append(m[i, j])
                d = np.linalg.norm(op[i] - rp[j], axis=1).mean()
                size = np.sqrt((rb[j, 2] - rb[j, 0]) * (rb[j, 3] - rb[j, 1]))
                dists.append(d)
                rel.append(d / size)
        both += len(matched_o)
        only_ours += len(ob) - len(matched_o)
        only_ref += len(rb) - len(matched_r)
    med = lambda v: float(np.median(v)) if v else float("nan")  # noqa: E731
    return {
        "both": both,
        "only_ours": only_ours,
        "only_ref": only_ref,
        "median_iou": med(ious),
        "min_iou": float(min(ious)) if ious else float("nan"),
        "median_landmark_px": med(dists),
        "median_landmark_rel": med(rel),
    }


def fmt_compare(c: dict) -> str:
    return (
        f"both {c['both']:3d}  only ours {c['only_ours']:2d}  only ref {c['only_ref']:2d}  "
        f"median IoU {c['median_iou']:.4f} (min {c['min_iou']:.3f})  "
        f"landmarks {c['median_landmark_px']:.4f} px ({100 * c['median_landmark_rel']:.2f}% of box)"
    )


# --------------------------------------------------------------------------- runners


class Ours:
    def __init__(self, detection_size, min_face_size):
        from fakelens.mtcnn import MTCNN

        self.detector = MTCNN(min_face_size=min_face_size, detection_size=detection_size, device="cpu")

    def __call__(self, frames):
        return ours_to_arrays(self.detector.detect(frames))


class Reference:
    """facenet-pytorch on frames downscaled as ours would be (cv2 INTER_AREA), boxes mapped back."""

    def __init__(self, cls, detection_size, min_face_size):
        self.detection_size = detection_size
        self.min_face_size = min_face_size
        self.cls = cls
        self.cache = {}

    def _detector(self, min_face):
        if min_face not in self.cache:
            self.cache[min_face] = self.cls(min_face_size=min_face, keep_all=True, select_largest=False, device="cpu")
        return self.cache[min_face]

    def __call__(self, frames):
        import cv2

        h, w = frames[0].shape[:2]
        longest = max(h, w)
        if self.detection_size is None or longest <= self.detection_size:
            boxes, _, points = self._detector(self.min_face_size).detect(np.stack(frames), landmarks=True)
            return reference_to_arrays(boxes, points)
        s = self.detection_size / longest
        size = (max(1, round(w * s)), max(1, round(h * s)))
        small = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
        sx, sy = size[0] / w, size[1] / h
        min_face = max(self.min_face_size * min(sx, sy), 12.0)  # what ours does
        boxes, _, points = self._detector(min_face).detect(small, landmarks=True)
        return reference_to_arrays(boxes, points, scale=(sx, sy))


def timed(run, videos) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process, all threads) of one run over the videos."""
    wall, cpu = time.perf_counter(), time.process_time()
    for frames in videos:
        run(frames)
    return time.perf_counter() - wall, time.process_time() - cpu


def parse_settings(text: str) -> list[tuple[int | None, int]]:
    settings = []
    for item in text.split(","):
        size, min_face = item.split(":")
        settings.append((None if size.lower() == "none" else int(size), int(min_face)))
    return settings


def flatten(results_per_video):
    return [frame for video in results_per_video for frame in video]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-path", default="/tmp/facenet_ref", help="folder holding facenet_pytorch (default /tmp/facenet_ref)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the shared media pool (default ../shared/data)")
    parser.add_argument("--frames", type=int, default=8, help="frames sampled per video (default 8)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per detector and setting (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--settings",
        default=",".join(f"{d}:{m}".lower() for d, m in SETTINGS),
        help="detection_size:min_face_size pairs to time, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--skip-agreement", action="store_true", help="only time the settings")
    args = parser.parse_args(argv)

    reference_cls, error = import_reference(args.reference_path)
    if reference_cls is None:
        print(f"facenet-pytorch is not importable from {args.reference_path} ({error}).")
        print(f"Install it beside the venv (it pins an old torch, so without its dependencies):\n    {INSTALL_HINT}")
        print("Nothing was measured.")
        return 0

    import torch

    from fakelens.media import read_video

    if args.threads:
        torch.set_num_threads(args.threads)
    data = Path(args.data)
    missing = [v for v in VIDEOS_720P + VIDEOS_OTHER if not (data / v).is_file()]
    if missing:
        print(f"missing videos under {data}: {', '.join(missing)}; nothing was measured.")
        return 0

    print(f"machine: {describe_machine()}")
    frames = {v: [f.image for f in read_video(data / v, num_frames=args.frames)] for v in VIDEOS_720P + VIDEOS_OTHER}
    print(f"frames: {args.frames} per video from {', '.join(frames)}")
    torch.set_grad_enabled(False)

    # ------------------------------------------------------------------ agreement at the default
    reference_default = agreement(frames, reference_cls) if not args.skip_agreement else {}

    # ------------------------------------------------------------------ speed per setting
    videos_720 = [frames[v] for v in VIDEOS_720P]
    n_frames = sum(len(v) for v in videos_720)
    default = Reference(reference_cls, None, 20)
    ref_default = flatten([reference_default.get(v) or default(frames[v]) for v in VIDEOS_720P])
    print(
        f"\n== speed on {n_frames} frames of 1280x720 (one batched call per video of {args.frames} frames), "
        f"median of {args.repeats} alternated runs after a warm-up; wall clock, and CPU time of all threads =="
    )
    rows = []
    for detection_size, min_face in parse_settings(args.settings):
        ours, ref = Ours(detection_size, min_face), Reference(reference_cls, detection_size, min_face)
        ours_out = [ours(v) for v in videos_720]  # warm-up, and the detections compared below
        ref_out = [ref(v) for v in videos_720]
        t_ours, t_ref = [], []
        for _ in range(args.repeats):
            t_ours.append(timed(ours, videos_720))
            t_ref.append(timed(ref, videos_720))
        fps = lambda times, k: n_frames / statistics.median(t[k] for t in times)  # noqa: E731
        label = f"detection_size={detection_size}, min_face_size={min_face}"
        rows.append((label, fps(t_ours, 0), fps(t_ref, 0), fps(t_ours, 1), fps(t_ref, 1)))
        print(f"\n{label}")
        print(f"  wall: ours {fps(t_ours, 0):6.2f} fps   reference {fps(t_ref, 0):6.2f} fps   ratio {fps(t_ours, 0) / fps(t_ref, 0):.2f}x")
        print(f"  CPU:  ours {fps(t_ours, 1):6.2f} fps   reference {fps(t_ref, 1):6.2f} fps   ratio {fps(t_ours, 1) / fps(t_ref, 1):.2f}x")
        print(f"  ours vs reference, same setting:    {fmt_compare(compare(flatten(ours_out), flatten(ref_out)))}")
        print(f"  ours vs reference at the default:   {fmt_compare(compare(flatten(ours_out), ref_default))}")

    if (None, 20) in parse_settings(args.settings):
        # One frame per call, to show what batching buys.
        ours = Ours(None, 20)
        singles = [[frame] for video in videos_720 for frame in video]
        timed(ours, singles[:2])
        t_single = statistics.median(timed(ours, singles)[0] for _ in range(args.repeats))
        print(f"\nours at the default, one frame per call: {n_frames / t_single:.2f} fps (wall)")

    print("\n== summary (1280x720, frames per second; wall clock | CPU time) ==")
    for label, wall_o, wall_r, cpu_o, cpu_r in rows:
        print(
            f"  {label:40s} ours {wall_o:6.2f} | {cpu_o:6.2f}   reference {wall_r:6.2f} | {cpu_r:6.2f}   "
            f"ratio {wall_o / wall_r:.2f}x | {cpu_o / cpu_r:.2f}x"
        )
    print(f"machine: {describe_machine()}")
    return 0


def agreement(frames, reference_cls) -> dict:
    """Print ours against the reference at the default settings; return the reference's detections."""
    print("\n== agreement at the default (min_face_size=20, thresholds 0.6/0.7/0.7, full resolution) ==")
    ours, ref = Ours(None, 20), Reference(reference_cls, None, 20)
    ours_all, ref_all, by_video = [], [], {}
    for name, video in frames.items():
        o, r = ours(video), ref(video)
        by_video[name] = r
        ours_all += o
        ref_all += r
        h, w = video[0].shape[:2]
        print(f"{Path(name).name:22s} {w}x{h}  {fmt_compare(compare(o, r))}")
    print(f"{'all':22s} {'':9s}  {fmt_compare(compare(ours_all, ref_all))}")
    return by_video


if __name__ == "__main__":
    sys.exit(main())
