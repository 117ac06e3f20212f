"""`fakelens scan`: inputs from folders and lists, the local and Ray engines against `predict`, errors, resume after SIGKILL."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from shared_paths import SHARED_DATA

from fakelens.errors import InvalidArgument
from fakelens.scan import RESULT_COLUMNS, ScanSettings, expand_sources, read_list, scan
from fakelens.scan.ray_engine import RayUnavailable, ray_available

FRAMES = 8
ROOT = Path(__file__).resolve().parents[1]


def _shared_clips(count: int = 2) -> list[tuple[Path, str]]:
    """The smallest real and fake videos of the shared pool, or [] without it."""
    media = SHARED_DATA / "media.csv"
    if not media.is_file():
        return []
    with open(media, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["kind"] == "video" and (SHARED_DATA / r["path"]).is_file()]
    picked = []
    for label in ("real", "fake"):
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: (SHARED_DATA / r["path"]).stat().st_size)
        picked += [(SHARED_DATA / r["path"], label) for r in mine[: count // 2]]
    return picked


@pytest.fixture(scope="module")
def media(tmp_path_factory, examples) -> dict:
    """A CSV list (path, label) over the examples, a truncated video, a text file named .mp4 and, when present, shared clips."""
    folder = tmp_path_factory.mktemp("media")
    truncated = folder / "truncated.mp4"
    truncated.write_bytes((examples / "real_ffpp_004.mp4").read_bytes()[:20000])
    text = folder / "notes.mp4"
    text.write_text("these are notes, not a video\n")
    entries = [(p, "fake" if p.name.startswith("fake") else "real") for p in sorted(examples.iterdir())]
    entries += [(truncated, "real"), (text, "fake")]
    shared = _shared_clips()
    entries += shared
    listing = folder / "list.csv"
    with open(listing, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([[str(p), label] for p, label in entries])
    return {"list": listing, "entries": entries, "truncated": truncated, "text": text, "shared": [p for p, _ in shared]}


@pytest.fixture(scope="module")
def reference(checkpoint, media) -> dict:
    """What `Detector.predict` (so `fakelens predict`) gives on every input: a Prediction or the MediaError."""
    from fakelens import Detector
    from fakelens.errors import FakelensError

    detector = Detector.from_checkpoint(checkpoint, num_frames=FRAMES)
    out = {}
    for path, _ in media["entries"]:
        try:
            out[str(path)] = detector.predict(path)
        except FakelensError as exc:
            out[str(path)] = exc
    return out


@pytest.fixture(scope="module")
def local_scan(tmp_path_factory, checkpoint, media):
    out = tmp_path_factory.mktemp("scan") / "results"
    settings = ScanSettings(checkpoint=str(checkpoint), frames=FRAMES)
    summary = scan([media["list"]], out, settings, engine="local", workers=2, progress=False)
    return out, settings, summary


def _check_against_predict(out: Path, reference: dict, paths) -> None:
    results = {r["path"]: r for r in pq.read_table(out / "results.parquet").to_pylist()}
    faces = pq.read_table(out / "faces.parquet").to_pylist()
    for path in map(str, paths):
        row, expected = results[path], reference[path]
        if isinstance(expected, Exception):
            assert row["label"] == "ERROR" and row["score"] is None and row["error"] == getattr(expected, "reason", str(expected))
            continue
        assert row["label"] == expected.label, path
        assert (row["score"] is None) == (expected.score is None)
        if expected.score is not None:
            assert row["score"] == pytest.approx(expected.score, abs=1e-5), path
        assert (row["frames"], row["faces"], row["error"]) == (expected.frames, expected.num_faces, None)
        mine = sorted((f for f in faces if f["path"] == path), key=lambda f: (f["frame_index"], f["track"]))
        theirs = sorted(expected.faces, key=lambda f: (f.frame_index, f.track))
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs):
            assert (a["frame_index"], a["track"]) == (b.frame_index, b.track)
            assert a["score"] == pytest.approx(b.score, abs=1e-5)
            assert a["box"] == pytest.approx(list(b.box), abs=1e-3)


# --------------------------------------------------------------------------- sources


def test_sources_folders_lists_and_duplicates(tmp_path, examples):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.mp4").write_bytes(b"x")
    (tmp_path / "sub" / "skip.json").write_text("{}")
    (tmp_path / "list.txt").write_text("# a comment\nsub/a.mp4\n\nmissing.png\n")
    (tmp_path / "list.csv").write_text("label,path\nFAKE,sub/a.mp4\n")
    found = expand_sources([tmp_path / "sub", tmp_path / "list.txt", tmp_path / "list.csv", examples / "real_ffpp_004.mp4"])
    assert [Path(i.path).name for i in found] == ["a.mp4", "missing.png", "real_ffpp_004.mp4"]
    assert all(Path(i.path).is_absolute() for i in found) and found[0].label is None  # the first mention wins
    assert read_list(tmp_path / "list.csv")[0].label == "fake"
    (tmp_path / "bad.csv").write_text("file,label\na.mp4,real\n")
    with pytest.raises(InvalidArgument, match="'path' column"):
        read_list(tmp_path / "bad.csv")
    with pytest.raises(InvalidArgument, match="no such file"):
        expand_sources([tmp_path / "nowhere"])


# --------------------------------------------------------------------------- the local engine


def test_local_scan_equals_predict(local_scan, reference, media):
    out, _, summary = local_scan
    table = pq.read_table(out / "results.parquet")
    assert tuple(table.column_names) == RESULT_COLUMNS
    rows = table.to_pylist()
    assert [r["path"] for r in rows] == [str(p) for p, _ in media["entries"]]  # one row per input, in input order
    assert [r["true_label"] for r in rows] == [label for _, label in media["entries"]]
    _check_against_predict(out, reference, [p for p, _ in media["entries"]])
    by_path = {r["path"]: r for r in rows}
    assert by_path[str(media["truncated"])]["label"] == "ERROR" and by_path[str(media["truncated"])]["error"]
    assert by_path[str(media["text"])]["label"] == "ERROR" and "not an image or video" in by_path[str(media["text"])]["error"]
    assert all(len(r["sha256"]) == 64 and r["size"] > 0 for r in rows)
    data = json.loads((out / "summary.json").read_text())
    distinct = len({r["sha256"] for r in rows})  # a shared clip may be the same file as an example: scanned once
    assert data["inputs"] == len(rows) and data["processed"] == distinct and data["duplicates"] == len(rows) - distinct and data["resumed"] == 0
    assert data["labels"]["ERROR"] == data["errors"] == 2 and sum(data["labels"].values()) == len(rows)
    assert sum(sum(v.values()) for v in data["by_true_label"].values()) == len(rows)
    assert summary.per_minute and summary.per_minute > 0
    assert (out / "scores.png").stat().st_size > 1000


def test_shared_clips_equal_predict(local_scan, reference, media, shared_data):
    if not media["shared"]:
        pytest.skip("no videos listed in the shared pool's media.csv")
    _check_against_predict(local_scan[0], reference, media["shared"])


def test_rerun_skips_everything_and_other_settings_are_refused(local_scan, media):
    out, settings, _ = local_scan
    before = {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    again = scan([media["list"]], out, settings, workers=2, progress=False, plot=False)
    assert again.processed == 0 and again.resumed == again.inputs == len(media["entries"])
    assert {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()} == before
    assert pq.read_table(out / "results.parquet").num_rows == len(media["entries"])
    with pytest.raises(InvalidArgument, match="other settings"):
        scan([media["list"]], out, ScanSettings(checkpoint=settings.checkpoint, frames=FRAMES + 1), progress=False)


def _done(out: Path) -> dict[str, int]:
    parts = out / "parts"
    return {p.name: p.stat().st_mtime_ns for p in parts.glob("*.parquet") if not p.name.endswith(".faces.parquet")} if parts.is_dir() else {}


@pytest.mark.slow
def test_sigkill_half_way_then_rerun_loses_and_repeats_nothing(tmp_path, checkpoint, examples):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in sorted(examples.iterdir()):
        (inputs / path.name).write_bytes(path.read_bytes())
    (inputs / "zz_broken.mp4").write_bytes(b"\x00" * 4096)
    out = tmp_path / "results"
    command = [
        sys.executable,
        "-c",
        "import sys; from fakelens.cli import main; sys.exit(main())",
        "scan",
        str(inputs),
        "--out",
        str(out),
        "--frames",
        str(FRAMES),
    ]
    command += ["--checkpoint", str(checkpoint), "--workers", "2", "--no-progress", "--no-plot"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(_done(out)) < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.poll() is None, f"the scan ended before it could be killed: {first.stderr.read().decode()[-2000:]}"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    first.stderr.close()
    before = _done(out)
    assert 3 <= len(before) < 7
    assert not (out / "results.parquet").exists()
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] == len(before) and summary["processed"] == 7 - len(before)
    after = _done(out)
    assert len(after) == 7 and all(after[name] == stamp for name, stamp in before.items())  # nothing redone
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert sorted(Path(r["path"]).name for r in rows) == sorted(p.name for p in inputs.iterdir())  # every input exactly once
    assert [r["label"] for r in rows if r["path"].endswith("zz_broken.mp4")] == ["ERROR"]
    assert not list(out.rglob("*.tmp"))


# --------------------------------------------------------------------------- Ray


def test_ray_engine_without_ray_says_what_to_install(monkeypatch, tmp_path, examples, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as without the extra
    with pytest.raises(RayUnavailable, match=r'pip install "fakelens\[ray\]"'):
        scan([examples / "real_ffpp_ex_original.png"], tmp_path / "out", engine="ray", progress=False)
    from fakelens.cli import main

    assert main(["scan", str(examples / "real_ffpp_ex_original.png"), "--out", str(tmp_path / "out"), "--engine", "ray"]) == 1
    assert 'pip install "fakelens[ray]"' in capsys.readouterr().err


def test_import_and_help_need_neither_ray_nor_torch():
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import fakelens, fakelens.scan, fakelens.scan.ray_engine\n"
        "from fakelens.cli import build_parser\n"
        "help = build_parser().format_help()\n"
        "assert 'scan' in help, help\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Data's own, from reading its DataContext
@pytest.mark.skipif(not ray_available(), reason='needs Ray, the optional extra: pip install "fakelens[ray]"')
def test_ray_engine_equals_predict(tmp_path_factory, monkeypatch, checkpoint, media, reference):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a private local instance; no token under ~/.ray
    temp = Path("/tmp") / f"flray-{os.getpid()}"
    out = tmp_path_factory.mktemp("ray") / "results"
    paths = [p for p, _ in media["entries"] if p not in media["shared"]]  # the examples, a truncated video, a text file
    settings = ScanSettings(checkpoint=str(checkpoint), frames=FRAMES)
    try:
        summary = scan(paths, out, settings, engine="ray", num_cpus=2, ray_options={"_temp_dir": str(temp)}, progress=False)
    finally:
        import shutil

        shutil.rmtree(temp, ignore_errors=True)
    assert summary.processed == len(paths) and summary.labels.get("ERROR") == 2
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    _check_against_predict(out, reference, paths)
