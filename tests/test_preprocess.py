"""`fakelens preprocess`: crops + manifest from a miniature Celeb-DF v2 tree; failures, resume, shards."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from fakelens.cli import main
from fakelens.data import read_celebdf, read_manifest
from fakelens.errors import FakelensError
from fakelens.preprocess import PreprocessConfig, parse_shard, part_path, preprocess

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
REAL_CLIP = EXAMPLES / "real_dfdc_aayrffkzxn.mp4"  # 256x256 DFDC face clips, ~130 KB
FAKE_CLIP = EXAMPLES / "fake_dfdc_abhggqdift.mp4"

#: The manifest columns of docs/ARCHITECTURE.md, spelled out so a change there breaks this test.
COLUMNS = [
    "crop_path",
    "video",
    "frame_index",
    "timestamp",
    "track",
    "x1",
    "y1",
    "x2",
    "y2",
    "prob",
    "landmarks",
    "crop_landmarks",
    "label",
    "split",
    "group",
    "method",
    "dataset",
]
#: Fast settings: few frames, and MTCNN need not look for faces under 40 px in 256x256 clips.
FAST = ["--frames", "2", "--min-face-size", "40", "--no-progress"]

FACE_VIDEOS = {
    "Celeb-real/id0_0000.mp4": REAL_CLIP,
    "Celeb-real/id1_0000.mp4": REAL_CLIP,
    "Celeb-real/id2_0001.mp4": REAL_CLIP,
    "Celeb-synthesis/id0_id1_0000.mp4": FAKE_CLIP,
    "Celeb-synthesis/id1_id0_0000.mp4": FAKE_CLIP,
    "Celeb-synthesis/id2_id0_0001.mp4": FAKE_CLIP,
    "YouTube-real/00000.mp4": REAL_CLIP,
}
NO_FACE = "YouTube-real/00001.mp4"
CORRUPT = "Celeb-synthesis/id2_id1_0002.mp4"
TEST_LIST = "1 YouTube-real/00000.mp4\n0 Celeb-synthesis/id2_id1_0002.mp4\n0 Celeb-synthesis/id1_id0_0000.mp4\n"


def make_no_face_clip(path: Path) -> None:
    """10 frames of real footage (the lower-left corner of an FF++ clip: wall and shoulder, no face)."""
    with av.open(str(EXAMPLES / "real_ffpp_004.mp4")) as source, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 200, 200, "yuv420p"
        for index, frame in enumerate(source.decode(video=0)):
            if index >= 10:
                break
            corner = np.ascontiguousarray(frame.to_ndarray(format="rgb24")[520:720, 0:200])
            out.mux(stream.encode(av.VideoFrame.from_ndarray(corner, format="rgb24")))
        out.mux(stream.encode())


def build_celebdf(root: Path) -> Path:
    for relpath, source in FACE_VIDEOS.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(source, root / relpath)
    make_no_face_clip(root / NO_FACE)
    # A download cut short: the first 20 kB of a clip (the MP4 index is missing).
    (root / CORRUPT).write_bytes(FAKE_CLIP.read_bytes()[:20_000])
    (root / "List_of_testing_videos.txt").write_text(TEST_LIST)
    return root


@pytest.fixture(scope="module")
def celebdf(tmp_path_factory) -> Path:
    return build_celebdf(tmp_path_factory.mktemp("data") / "Celeb-DF-v2")


@pytest.fixture(scope="module")
def full_run(celebdf, tmp_path_factory):
    """One uninterrupted CLI run, shared by the checks below."""
    out = tmp_path_factory.mktemp("full") / "out"
    code = main(["preprocess", str(celebdf), "--dataset", "celebdf", "--out", str(out), "--cross-identity", "target", *FAST])
    assert code == 0
    return out


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder.parent).as_posix() for p in folder.rglob("*") if p.is_file()}


def check_consistent(out: Path) -> list[dict]:
    """Manifest rows unique, every crop file listed once and no other file under crops/."""
    rows = read_csv(out / "manifest.csv")
    paths = [r["crop_path"] for r in rows]
    assert len(paths) == len(set(paths))
    assert len({(r["video"], r["frame_index"], r["track"]) for r in rows}) == len(rows)
    assert files_under(out / "crops") == set(paths)
    assert not list(out.rglob("*.tmp"))
    return rows


@pytest.mark.slow
def test_manifest_crops_and_failures(full_run, celebdf, capsys):
    out = full_run
    with open(out / "manifest.csv", newline="") as handle:
        assert next(csv.reader(handle)) == COLUMNS
    rows = check_consistent(out)
    assert {r["video"] for r in rows} == set(FACE_VIDEOS)
    records = {r.relpath: r for r in read_celebdf(celebdf, cross_identity="target")}
    for row in rows:
        record = records[row["video"]]
        assert (row["label"], row["split"], row["group"], row["method"], row["dataset"]) == (
            record.label,
            record.split,
            record.group,
            record.method,
            record.dataset,
        )
        assert row["crop_path"].startswith(f"crops/{row['video']}/")
        with Image.open(out / row["crop_path"]) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (224, 224))
        assert len(json.loads(row["landmarks"])) == len(json.loads(row["crop_landmarks"])) == 5
        x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
        assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 256 and 0.5 < float(row["prob"]) <= 1
    # The list's 1 = real: the listed YouTube video is real, the listed synthesis video fake, both test.
    by_video = {r["video"]: r for r in rows}
    assert (by_video["YouTube-real/00000.mp4"]["label"], by_video["YouTube-real/00000.mp4"]["split"]) == ("real", "test")
    assert (by_video["Celeb-synthesis/id1_id0_0000.mp4"]["label"], by_video["Celeb-synthesis/id1_id0_0000.mp4"]["split"]) == ("fake", "test")
    failures = {r["video"]: r for r in read_csv(out / "failures.csv")}
    assert set(failures) == {NO_FACE, CORRUPT}
    assert failures[NO_FACE]["status"] == "no_face" and "no face" in failures[NO_FACE]["reason"]
    assert failures[CORRUPT]["status"] == "failed" and failures[CORRUPT]["reason"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["videos"], summary["ok"], summary["no_face"], summary["failed"]) == (9, 7, 1, 1)
    assert summary["crops"] == len(rows) and summary["processed"] == 9
    assert set(summary["stage_seconds"]) == {"decode", "detect", "write"}
    crops_by_split = {}
    for row in rows:
        crops_by_split.setdefault(row["split"], {"real": 0, "fake": 0})[row["label"]] += 1
    assert summary["crop_counts"] == crops_by_split
    videos = {r["video"]: r for r in read_csv(out / "videos.csv")}
    assert set(videos) == set(FACE_VIDEOS) | {NO_FACE, CORRUPT}

    # Run again: nothing is redone and the outputs stay the same.
    before = (out / "manifest.csv").read_bytes()
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    capsys.readouterr()
    assert main(["preprocess", str(celebdf), "--dataset", "celebdf", "--out", str(out), "--cross-identity", "target", *FAST]) == 0
    printed = capsys.readouterr().out
    assert "0 processed now, 9 already done" in printed and "test" in printed
    assert (out / "manifest.csv").read_bytes() == before
    assert {p: p.stat().st_mtime_ns for p in (out / "parts").iterdir()} == mtimes


@pytest.mark.slow
def test_other_settings_are_refused(full_run, celebdf, capsys):
    code = main(["preprocess", str(celebdf), "--dataset", "celebdf", "--out", str(full_run), "--size", "112", *FAST])
    assert code == 1
    assert "other settings (size: 224 -> 112)" in capsys.readouterr().err


@pytest.mark.slow
def test_shards_merge_to_the_full_run(full_run, celebdf, tmp_path):
    shards = []
    for index in range(2):
        out = tmp_path / f"shard{index}"
        assert (
            main(
                ["preprocess", str(celebdf), "--dataset", "celebdf", "--out", str(out), "--cross-identity", "target", "--shard", f"{index}/2", *FAST]
            )
            == 0
        )
        shards.append(out)
        summary = json.loads((out / f"summary_shard-{index}-of-2.json").read_text())
        assert summary["shard"] == f"{index}/2"
    videos = [{r["video"] for r in read_csv(out / "videos.csv")} for out in shards]
    assert videos[0] and videos[1] and not videos[0] & videos[1]
    assert videos[0] | videos[1] == set(FACE_VIDEOS) | {NO_FACE, CORRUPT}
    merged = tmp_path / "merged"
    # A shard named twice must not duplicate anything.
    assert main(["preprocess", "--merge", str(shards[0]), str(shards[1]), str(shards[0]), "--out", str(merged), "--no-progress"]) == 0
    rows = check_consistent(merged)
    assert rows == read_csv(full_run / "manifest.csv")
    assert read_csv(merged / "failures.csv") == read_csv(full_run / "failures.csv")


@pytest.mark.slow
def test_resume_after_kill_9(celebdf, tmp_path):
    """kill -9 a two-worker run after its first video, clutter the folder, run again: all done once."""
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "fakelens",
        "preprocess",
        str(celebdf),
        "--dataset",
        "celebdf",
        "--out",
        str(out),
        "--cross-identity",
        "target",
        "--workers",
        "2",
        "--frames",
        "6",
        "--min-face-size",
        "40",
        "--no-progress",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    children: set[int] = set()
    while time.monotonic() < deadline and process.poll() is None:
        children |= child_pids(process.pid)
        if list((out / "parts").glob("*.json")):
            break
        time.sleep(0.01)
    assert process.poll() is None, process.stderr.read().decode()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    # The pool's workers notice their parent is gone and exit by themselves.
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert children and not any(alive(pid) for pid in children)
    done = {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("*.json")}
    assert 1 <= len(done) < 9
    # Debris of a killed run: leftover temporary files and a half-filled crop folder of a pending video.
    (out / "manifest.csv.4000000.tmp").write_text("video\nhalf a manif")
    (out / "parts" / "0123.json.4000000.tmp").write_text('{"version": 1, "rec')
    pending = next(r for r in FACE_VIDEOS if not part_path(out, r).exists())
    (out / "crops" / pending).mkdir(parents=True, exist_ok=True)
    (out / "crops" / pending / "000999_0.jpg").write_bytes(b"\xff\xd8 half a jpeg")

    records = read_celebdf(celebdf, cross_identity="target")
    summary = preprocess(records, out, PreprocessConfig(frames=6, min_face_size=40), progress=False)
    assert summary.already_done == len(done) and summary.processed == 9 - len(done)
    assert (summary.ok, summary.no_face, summary.failed) == (7, 1, 1)
    # Videos finished before the kill were not done again.
    assert {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("*.json") if p.name in done} == done
    rows = check_consistent(out)
    assert {r["video"] for r in rows} == set(FACE_VIDEOS)
    assert summary.crops == len(rows)


def child_pids(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found |= {int(p) for p in task.read_text().split()}
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_folder_dataset_with_an_image_and_a_corrupt_part(tmp_path, capsys):
    root = tmp_path / "mine"
    (root / "real").mkdir(parents=True)
    (root / "fake").mkdir()
    os.symlink(EXAMPLES / "real_ffpp_ex_original.png", root / "real" / "still.png")
    os.symlink(REAL_CLIP, root / "real" / "clip.mp4")
    (root / "fake" / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    out = tmp_path / "out"
    args = ["preprocess", str(root), "--dataset", "folder", "--out", str(out), "--val-fraction", "0", *FAST]
    assert main(args) == 0
    rows = check_consistent(out)
    still = [r for r in rows if r["video"] == "real/still.png"]
    assert len(still) == 1 and still[0]["frame_index"] == "0" and still[0]["dataset"] == "mine"
    assert {r["video"] for r in read_csv(out / "failures.csv")} == {"fake/noise.mp4"}
    # A part file damaged by hand is not trusted: that video is done again.
    part_path(out, "real/clip.mp4").write_text("{broken")
    assert main(args) == 0
    assert "1 processed now, 2 already done" in capsys.readouterr().out
    assert check_consistent(out) == rows
    # Each row of the manifest reads back with numbers and landmarks parsed.
    parsed = read_manifest(out / "manifest.csv")
    assert len(parsed) == len(rows) and parsed[0].crop_path.is_absolute() and parsed[0].crop_path.is_file()
    first = next(p for p in parsed if p.video == "real/still.png")
    assert first.frame_index == 0 and first.track == 0 and 0 < first.prob <= 1 and len(first.box) == 4
    assert np.asarray(first.landmarks).shape == (5, 2) and np.asarray(first.crop_landmarks).shape == (5, 2)


def test_bad_options(tmp_path, capsys):
    assert main(["preprocess", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "--dataset is required" in capsys.readouterr().err
    assert main(["preprocess", str(tmp_path / "nope"), "--dataset", "celebdf", "--out", str(tmp_path / "o")]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["preprocess", "--merge", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "not a preprocessing output folder" in capsys.readouterr().err
    for text in ("2/2", "a/b", "1"):
        with pytest.raises(FakelensError, match="shard"):
            parse_shard(text)
    assert parse_shard("1/3") == (1, 3)
