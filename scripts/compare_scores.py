"""Scores of today's `predict` against an older checkout's, on the shared pool's videos (#11: within 0.01).

The older code runs from its own source tree (``--old``, e.g. a ``git worktree`` of the commit before the fast
path) in a subprocess with ``PYTHONPATH`` pointing at it; today's runs twice, reading the frames asked for
(``keyframes="never"``, the default: same frames, so scores must agree) and with ``keyframes="auto"`` (files
whose keyframes are dense are sampled on keyframes: a written reason for any difference).

    git worktree add --detach /tmp/fakelens-old 7ec18e0
    .venv/bin/python scripts/compare_scores.py --old /tmp/fakelens-old --out docs/results/scores_fast_path.md
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.01


def worker(paths: list[str], keyframes: str | None) -> None:
    """Print one JSON line per path: the video score and every face's (frame, track, score)."""
    from fakelens.detector import Detector
    from fakelens.errors import FakelensError

    detector = Detector.default() if keyframes is None else Detector.default(keyframes=keyframes)
    for path in paths:
        start = time.perf_counter()
        try:
            result = detector.predict(path)
        except FakelensError as exc:
            print(json.dumps({"path": path, "error": str(exc)}), flush=True)
            continue
        faces = [[f.frame_index, f.track, f.score] for f in result.faces]
        row = {"path": path, "label": result.label, "score": result.score, "faces": faces, "seconds": time.perf_counter() - start}
        row["sampling"] = getattr(result, "sampling", "even")
        print(json.dumps(row), flush=True)


def run(paths: list[str], src: Path, keyframes: str | None) -> dict[str, dict]:
    env = dict(os.environ, PYTHONPATH=str(src))
    command = [sys.executable, __file__, "--worker", *(["--keyframes", keyframes] if keyframes else []), *paths]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return {row["path"]: row for row in map(json.loads, out.splitlines())}


def compare(old: dict, new: dict) -> tuple[float | None, float | None, str]:
    """(video score difference, largest per-face difference at the same frame and track, reason if not comparable)."""
    if "error" in old or "error" in new:
        return None, None, f"error: old {old.get('error')}, new {new.get('error')}"
    video = None if old["score"] is None or new["score"] is None else abs(old["score"] - new["score"])
    old_faces = {(f, t): s for f, t, s in old["faces"]}
    new_faces = {(f, t): s for f, t, s in new["faces"]}
    shared = old_faces.keys() & new_faces.keys()
    face = max((abs(old_faces[k] - new_faces[k]) for k in shared), default=None)
    reason = ""
    if new.get("sampling") == "keyframes":
        reason = "sampled on keyframes (other frames)"
    elif old_faces.keys() != new_faces.keys():
        reason = f"faces differ: {len(old_faces)} old, {len(new_faces)} new, {len(shared)} shared"
    return video, face, reason


def _commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "src"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return f"{head}{' (with uncommitted changes in src/)' if dirty else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keyframes", default=None, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--old", type=Path, help="the older checkout (its src/ is put on PYTHONPATH)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the media pool (media.csv)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N videos (default all)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "scores_fast_path.md")
    args = parser.parse_args()
    if args.worker:
        worker(args.paths, args.keyframes)
        return
    if args.old is None:
        parser.error("--old is required")

    with open(args.data / "media.csv", newline="") as handle:
        videos = sorted(str(args.data / r["path"]) for r in csv.DictReader(handle) if r["kind"] == "video")
    videos = videos[: args.limit] if args.limit else videos
    print(f"{len(videos)} videos; old code from {args.old}", flush=True)
    old = run(videos, args.old / "src", None)
    same_frames = run(videos, ROOT / "src", "never")
    defaults = run(videos, ROOT / "src", "auto")

    lines = [
        "# Scores of the fast path against the sequential one (#11)",
        "",
        f"`{' '.join(['python', 'scripts/compare_scores.py', *sys.argv[1:]])}`; old code: `{args.old}`; "
        f"{len(videos)} pool videos, 32 frames, the bundled model. Tolerance {TOLERANCE}. New code: {_commit()}.",
        "",
        "| video | old score | same frames: diff (video / worst face) | keyframes=auto: diff | reason |",
        "|---|---:|---:|---:|---|",
    ]
    worst, failures = 0.0, []
    for path in videos:
        a, b, c = old[path], same_frames[path], defaults[path]
        video, face, reason = compare(a, b)
        video_auto, _, reason_auto = compare(a, c)
        for value in (video, face):
            if value is not None:
                worst = max(worst, value)
                if value > TOLERANCE and not reason:
                    failures.append(path)
        fmt = lambda v: "-" if v is None else f"{v:.5f}"  # noqa: E731
        score = "-" if a.get("score") is None else f"{a['score']:.4f}"
        name = str(Path(path).relative_to(args.data))
        lines.append(f"| {name} | {score} | {fmt(video)} / {fmt(face)} | {fmt(video_auto)} | {'; '.join(r for r in (reason, reason_auto) if r)} |")
    lines += ["", f"Largest difference at the same frames: {worst:.5f}; over {TOLERANCE} without a reason: {len(failures)} {failures}"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-1:]))
    print(f"written: {args.out}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
