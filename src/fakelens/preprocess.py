"""Dataset -> face crops + one manifest: resumable, sharded and parallel.

For each :class:`~fakelens.data.VideoRecord`, frames are sampled, faces found with MTCNN and the
crops written as ``OUT/crops/<relpath>/<frame>_<track>.jpg`` (224x224 by default). Crops are JPEG at
quality 95 by default: about 5x smaller and faster to read back than PNG, and the source videos are
already H.264-compressed, so a q95 re-encode adds little error next to the codec's, and it treats
real and fake crops alike. ``image_format="png"`` gives lossless crops instead.

Crash safety. Every file is written to a temporary name and moved into place with ``os.replace``. A
video's crops are written first, then its *part file* ``OUT/parts/<hash>.json`` (its status, timings and
manifest rows). A video is done if and only if its part file exists, so a run killed at any moment
(even ``kill -9``) and started again redoes only the unfinished video, after clearing its half-written
crop folder. ``OUT/manifest.csv``, ``OUT/videos.csv`` and ``OUT/failures.csv`` are rebuilt from the
part files at the end. A video that cannot be read, or has no face, gets a part file with its status
and reason (so it is not retried unless ``retry_failed``), and the run goes on.

Scaling out. ``workers > 1`` runs a process pool whose workers each build one detector and use
``cpu_count // workers`` torch threads. ``shard=(i, n)`` processes the videos whose relpath hashes to
``i`` modulo ``n`` (stable when a dataset gains files), so ``n`` machines can share a dataset; their
output folders are joined with :func:`merge` (or all shards may write to one shared folder).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from fakelens import atomic
from fakelens.constants import INPUT_SIZE, KEEP_MODES, LABELS, SPLITS
from fakelens.data.datasets import class_counts
from fakelens.data.manifest import FAILURE_COLUMNS, VIDEO_COLUMNS, points_json, write_csv, write_manifest
from fakelens.data.records import VideoRecord
from fakelens.errors import FakelensError

log = logging.getLogger(__name__)

#: Part statuses: ``ok`` (crops written), ``no_face``, ``failed`` (unreadable media), ``error`` (anything else).
STATUSES = ("ok", "no_face", "failed", "error")
PART_VERSION = 1
_RECORD_COLUMNS = ("label", "split", "group", "method", "dataset")


class PreprocessError(FakelensError):
    """A preprocessing folder or option cannot be used (other settings, another run holds it, ...)."""


@dataclass
class PreprocessConfig:
    """What decides the crops; a folder keeps the settings of its first run and refuses others.

    frames : frames sampled per video (default 32; a record's own ``frames`` wins).
    size, margin, align, keep : crop side (224), context margin (0.3), landmark alignment (False),
        ``"largest"`` face per frame or ``"all"`` faces as tracks (see :class:`fakelens.faces.FaceExtractor`).
    min_face_size, detection_size : MTCNN options (20 px; None = detect at full resolution).
    image_format : ``"jpg"`` (default, quality ``jpeg_quality`` = 95) or ``"png"``.
    device : detector device (None = CUDA when available); not part of the settings check.
    """

    frames: int = 32
    size: int = INPUT_SIZE
    margin: float = 0.3
    align: bool = False
    keep: str = "largest"
    min_face_size: int = 20
    detection_size: int | None = None
    image_format: str = "jpg"
    jpeg_quality: int = 95
    device: str | None = None

    def settings(self) -> dict:
        """The fields that change the output (all but ``device``)."""
        values = asdict(self)
        values.pop("device")
        return values

    def validate(self) -> None:
        if self.frames < 1:
            raise PreprocessError(f"frames must be at least 1, got {self.frames}")
        if self.size < 16:
            raise PreprocessError(f"size must be at least 16 pixels, got {self.size}")
        if self.margin < 0:
            raise PreprocessError(f"margin must be >= 0, got {self.margin}")
        if self.keep not in KEEP_MODES:
            raise PreprocessError(f"keep must be one of {', '.join(KEEP_MODES)}, got {self.keep!r}")
        if self.image_format not in ("jpg", "png"):
            raise PreprocessError(f"image_format must be 'jpg' or 'png', got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise PreprocessError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.min_face_size < 1:
            raise PreprocessError(f"min_face_size must be positive, got {self.min_face_size}")
        if self.detection_size is not None and self.detection_size < 12:
            raise PreprocessError(f"detection_size must be at least 12 or None, got {self.detection_size}")


@dataclass
class VideoResult:
    """What happened to one video: status, crops written and seconds spent per stage."""

    video: str
    status: str
    crops: int = 0
    frames: int = 0
    reason: str = ""
    seconds: dict = field(default_factory=lambda: {"decode": 0.0, "detect": 0.0, "write": 0.0})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PreprocessSummary:
    """The outcome of :func:`preprocess` or :func:`merge` over the videos it was given."""

    out_dir: str
    manifest: str
    videos: int
    processed: int
    already_done: int
    ok: int
    no_face: int
    failed: int
    crops: int
    crops_this_run: int
    seconds: float
    videos_per_minute: float
    stage_seconds: dict
    video_counts: dict
    crop_counts: dict
    shard: str | None = None
    workers: int = 1
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in self.stage_seconds.items())
        lines = [
            f"videos: {self.videos} ({self.processed} processed now, {self.already_done} already done)"
            + (f", shard {self.shard}" if self.shard else ""),
            f"  ok {self.ok}, without a face {self.no_face}, failed {self.failed}",
            f"crops: {self.crops} ({self.crops_this_run} written now)",
            f"time: {self.seconds:.1f} s, {self.videos_per_minute:.1f} videos/min"
            + (f" (worker time: {stages})" if self.processed else ""),
            f"manifest: {self.manifest}",
            "class counts (videos with crops / crops):",
            f"  {'split':<6} {'real':>7} {'fake':>7} {'real':>9} {'fake':>9}",
        ]
        for split in SPLITS:
            v = self.video_counts.get(split, {"real": 0, "fake": 0})
            c = self.crop_counts.get(split, {"real": 0, "fake": 0})
            if v["real"] + v["fake"] + c["real"] + c["fake"]:
                lines.append(f"  {split:<6} {v['real']:>7} {v['fake']:>7} {c['real']:>9} {c['fake']:>9}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- files


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_tmp_files(out_dir: str | os.PathLike) -> int:
    """Delete temporary files left by dead runs in ``out_dir`` and ``out_dir/parts``; return how many.

    Crop folders need no scan: an unfinished video's folder is cleared when the video is redone.
    """
    removed = 0
    for folder in (Path(out_dir), Path(out_dir) / "parts"):
        if not folder.is_dir():
            continue
        for tmp in folder.glob("*.tmp"):
            pid = tmp.name.rsplit(".", 2)[-2] if tmp.name.count(".") >= 2 else ""
            if pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid)):
                continue  # another live run (a shard sharing this folder) is writing it
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def part_path(out_dir: str | os.PathLike, relpath: str) -> Path:
    """Where a video's part file lives: a hash of its relpath, so any name maps to a safe flat file."""
    return Path(out_dir) / "parts" / f"{hashlib.sha1(relpath.encode('utf-8')).hexdigest()[:24]}.json"


def read_part(path: str | os.PathLike) -> dict | None:
    """A part file's content, or None if it is unreadable (it is then treated as not done)."""
    try:
        part = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(part, dict) or part.get("version") != PART_VERSION or "record" not in part:
        return None
    return part


def crop_dir(out_dir: str | os.PathLike, relpath: str) -> Path:
    return Path(out_dir) / "crops" / relpath


# --------------------------------------------------------------------------- one video


def _encode(image, config: PreprocessConfig) -> bytes:
    import cv2

    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if config.image_format == "png":
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    if not ok:
        raise OSError("image encoding failed")
    return data.tobytes()


def build_extractor(config: PreprocessConfig):
    """The :class:`fakelens.faces.FaceExtractor` (with its MTCNN) that ``config`` describes."""
    from fakelens.faces import FaceExtractor
    from fakelens.mtcnn import MTCNN

    detector = MTCNN(min_face_size=config.min_face_size, detection_size=config.detection_size, device=config.device)
    return FaceExtractor(
        detector=detector, num_frames=config.frames, keep=config.keep, size=config.size,
        margin=config.margin, align=config.align,
    )


def process_video(record: VideoRecord, out_dir: str | os.PathLike, config: PreprocessConfig, extractor) -> VideoResult:
    """Sample, detect and crop one video; write its crops, then its part file. Never raises for bad media."""
    from fakelens.errors import MediaError
    from fakelens.media import load_frames

    out_dir = Path(out_dir)
    frames_wanted = record.frames or config.frames
    result = VideoResult(video=record.relpath, status="ok")
    folder = crop_dir(out_dir, record.relpath)
    # Crops of a run killed mid-video: the video is redone from scratch.
    shutil.rmtree(folder, ignore_errors=True)
    rows: list[dict] = []
    try:
        start = time.perf_counter()
        frames = load_frames(record.path, num_frames=frames_wanted)
        result.frames = len(frames)
        mid = time.perf_counter()
        result.seconds["decode"] = mid - start
        crops = extractor.extract_frames(frames)
        del frames
        result.seconds["detect"] = time.perf_counter() - mid
        if not crops:
            result.status, result.reason = "no_face", f"no face found in {result.frames} sampled frames"
        else:
            start = time.perf_counter()
            folder.mkdir(parents=True, exist_ok=True)
            suffix = "png" if config.image_format == "png" else "jpg"
            for crop in crops:
                name = f"{crop.frame_index:06d}_{crop.track}.{suffix}"
                atomic.write_bytes(folder / name, _encode(crop.image, config))
                x1, y1, x2, y2 = (round(float(v), 2) for v in crop.box)
                rows.append({
                    "crop_path": (folder / name).relative_to(out_dir).as_posix(),
                    "video": record.relpath,
                    "frame_index": int(crop.frame_index),
                    "timestamp": round(float(crop.timestamp), 4),
                    "track": int(crop.track),
                    "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                    "prob": round(float(crop.prob), 5),
                    "landmarks": points_json(crop.landmarks),
                    "crop_landmarks": points_json(crop.crop_landmarks),
                })
            result.crops = len(rows)
            result.seconds["write"] = time.perf_counter() - start
    except MediaError as exc:
        result.status, result.reason = "failed", exc.reason
    except Exception as exc:  # noqa: BLE001 - one odd video must not stop a run of thousands
        log.exception("%s: unexpected error", record.relpath)
        result.status, result.reason = "error", f"{type(exc).__name__}: {exc}"
    if result.status != "ok":
        shutil.rmtree(folder, ignore_errors=True)
        rows = []
    part = {
        "version": PART_VERSION,
        "record": record.to_dict(),
        "frames_requested": frames_wanted,
        "result": result.to_dict(),
        "rows": rows,
    }
    atomic.write_bytes(part_path(out_dir, record.relpath), json.dumps(part, separators=(",", ":")))
    return result


# --------------------------------------------------------------------------- worker processes

_WORKER: dict = {}


def _watch_parent(parent_pid: int) -> None:
    # A pool worker whose parent was killed (kill -9) would otherwise wait forever on its task queue.
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(1)


def _worker_init(config_dict: dict, threads: int, parent_pid: int) -> None:
    import threading

    import torch

    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    torch.set_num_threads(threads)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass
    config = PreprocessConfig(**config_dict)
    _WORKER["config"] = config
    _WORKER["extractor"] = build_extractor(config)


def _worker_task(record_dict: dict, out_dir: str) -> dict:
    result = process_video(VideoRecord(**record_dict), out_dir, _WORKER["config"], _WORKER["extractor"])
    return result.to_dict()


# --------------------------------------------------------------------------- runs


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/N"`` (0 <= i < N) -> ``(i, N)``; None stays None."""
    if text is None:
        return None
    try:
        index, count = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise PreprocessError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise PreprocessError(f"--shard i/N needs 0 <= i < N, got {text!r}")
    return index, count


def in_shard(relpath: str, shard: tuple[int, int] | None) -> bool:
    """Whether a video belongs to a shard: its relpath's hash modulo N (stable as the dataset grows)."""
    if shard is None:
        return True
    index, count = shard
    return int(hashlib.sha1(relpath.encode("utf-8")).hexdigest(), 16) % count == index


class _Lock:
    """An exclusive lock on ``out_dir`` for one shard, released by the OS even after kill -9."""

    def __init__(self, out_dir: Path, key: str):
        self.path = out_dir / f".lock-{key}"
        self.handle = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock, runs must not overlap
            return self
        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            raise PreprocessError(f"another preprocessing run is writing {self.path.parent} ({self.path.name})") from None
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.close()


def _check_config(out_dir: Path, config: PreprocessConfig, dataset: str | None) -> None:
    path = out_dir / "config.json"
    wanted = {"dataset": dataset, "settings": config.settings()}
    if path.is_file():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            found = None
        if isinstance(found, dict) and found.get("settings") is not None:
            diff = sorted(k for k in wanted["settings"] if found["settings"].get(k) != wanted["settings"][k])
            if found.get("dataset") != dataset:
                diff.insert(0, "dataset")
            if diff:
                detail = ", ".join(
                    f"{k}: {found.get(k) if k == 'dataset' else found['settings'].get(k)!r} -> "
                    f"{dataset if k == 'dataset' else wanted['settings'][k]!r}"
                    for k in diff
                )
                raise PreprocessError(
                    f"{out_dir} holds crops made with other settings ({detail}); use another --out folder"
                )
            return
    atomic.write_bytes(path, json.dumps(wanted, indent=2))


def _is_done(part: dict | None, record: VideoRecord, config: PreprocessConfig, retry_failed: bool) -> bool:
    if part is None or part.get("frames_requested") != (record.frames or config.frames):
        return False
    status = part["result"]["status"]
    return not (retry_failed and status in ("failed", "error"))


def _refresh_part(path: Path, part: dict, record: VideoRecord) -> None:
    """Keep a done part's labels and split in step with the current records (e.g. another val fraction)."""
    current = record.to_dict()
    if any(part["record"].get(k) != current[k] for k in current if k not in ("path", "frames")):
        part["record"] = current
        atomic.write_bytes(path, json.dumps(part, separators=(",", ":")))


def _rows_of(part: dict, record: VideoRecord | None = None) -> list[dict]:
    meta = (record.to_dict() if record else part["record"])
    extra = {k: meta[k] for k in _RECORD_COLUMNS}
    return [{**row, **extra} for row in part["rows"]]


def _video_row(part: dict) -> dict:
    record, result = part["record"], part["result"]
    return {
        "video": record["relpath"], **{k: record[k] for k in ("label", "split", "group", "identity", "method", "dataset")},
        "frames": part.get("frames_requested"), "status": result["status"], "crops": result["crops"],
        "reason": result["reason"],
    }


def write_outputs(out_dir: str | os.PathLike, parts: Sequence[dict]) -> tuple[Path, dict]:
    """(Re)write ``manifest.csv``, ``videos.csv`` and ``failures.csv`` from part files, atomically.

    Returns the manifest path and ``{split: {label: crops}}``.
    """
    out_dir = Path(out_dir)
    parts = sorted(parts, key=lambda p: p["record"]["relpath"])
    rows = []
    for part in parts:
        rows.extend(sorted(_rows_of(part), key=lambda r: (int(r["frame_index"]), int(r["track"]))))
    manifest = write_manifest(rows, out_dir / "manifest.csv")
    video_rows = [_video_row(p) for p in parts]
    write_csv(out_dir / "videos.csv", VIDEO_COLUMNS, video_rows)
    write_csv(out_dir / "failures.csv", FAILURE_COLUMNS, [r for r in video_rows if r["status"] != "ok"])
    crop_counts = {s: {label: 0 for label in LABELS} for s in SPLITS}
    for row in rows:
        crop_counts[row["split"]][row["label"]] += 1
    return manifest, {s: c for s, c in crop_counts.items() if sum(c.values())}


def _summarise(
    out_dir: Path, manifest: Path, parts: Sequence[dict], crop_counts: dict, results: Sequence[dict],
    selected: int, elapsed: float, shard: str | None, workers: int, settings: dict,
) -> PreprocessSummary:
    statuses = [p["result"]["status"] for p in parts]
    stage = {k: round(sum(r["seconds"][k] for r in results), 3) for k in ("decode", "detect", "write")}
    ok_records = [VideoRecord(**p["record"]) for p in parts if p["result"]["status"] == "ok"]
    return PreprocessSummary(
        out_dir=str(out_dir),
        manifest=str(manifest),
        videos=selected,
        processed=len(results),
        already_done=selected - len(results),
        ok=statuses.count("ok"),
        no_face=statuses.count("no_face"),
        failed=statuses.count("failed") + statuses.count("error"),
        crops=sum(p["result"]["crops"] for p in parts),
        crops_this_run=sum(r["crops"] for r in results),
        seconds=round(elapsed, 3),
        videos_per_minute=round(len(results) / elapsed * 60, 2) if results and elapsed > 0 else 0.0,
        stage_seconds=stage,
        video_counts=class_counts(ok_records),
        crop_counts=crop_counts,
        shard=shard,
        workers=workers,
        settings=settings,
    )


def preprocess(
    records: Sequence[VideoRecord],
    out_dir: str | os.PathLike,
    config: PreprocessConfig | None = None,
    workers: int = 1,
    shard: tuple[int, int] | str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    extractor=None,
) -> PreprocessSummary:
    """Crop every face of ``records`` into ``out_dir`` and write its manifest; resume what is done.

    Parameters
    ----------
    records : videos to process (all shards' records: the manifest covers every one that is done).
    out_dir : output folder (created). Reusing it with other crop settings raises :class:`PreprocessError`.
    config : crop and detector settings (default :class:`PreprocessConfig`).
    workers : processes (default 1 = in this process).
    shard : ``(i, N)`` or ``"i/N"``: process only that slice (default: everything).
    retry_failed : redo videos whose part says failed/error (default False: they are done).
    progress : show a tqdm bar over videos (default True).
    extractor : a ready :class:`fakelens.faces.FaceExtractor` for ``workers=1`` (default: built from config).
    """
    from tqdm.auto import tqdm

    config = config or PreprocessConfig()
    config.validate()
    if isinstance(shard, str):
        shard = parse_shard(shard)
    workers = max(1, int(workers))
    records = sorted(records, key=lambda r: r.relpath)
    relpaths = [r.relpath for r in records]
    if len(set(relpaths)) != len(relpaths):
        raise PreprocessError("two records share a relpath; each video must appear once")
    datasets = sorted({r.dataset for r in records})
    out_dir = Path(os.path.abspath(out_dir))
    (out_dir / "parts").mkdir(parents=True, exist_ok=True)
    shard_text = f"{shard[0]}/{shard[1]}" if shard else None
    start = time.perf_counter()
    with _Lock(out_dir, f"{shard[0]}-of-{shard[1]}" if shard else "all"):
        removed = clean_tmp_files(out_dir)
        if removed:
            log.info("removed %d temporary files left by an interrupted run", removed)
        _check_config(out_dir, config, ",".join(datasets) or None)
        selected = [r for r in records if in_shard(r.relpath, shard)]
        pending = []
        for record in selected:
            path = part_path(out_dir, record.relpath)
            part = read_part(path) if path.exists() else None
            if _is_done(part, record, config, retry_failed):
                _refresh_part(path, part, record)
            else:
                pending.append(record)
        results: list[dict] = []
        bar = tqdm(total=len(selected), initial=len(selected) - len(pending), desc="preprocessing",
                   unit="video", disable=not progress, dynamic_ncols=True)
        try:
            for result in _run(pending, out_dir, config, workers, extractor):
                results.append(result)
                bar.update(1)
                bar.set_postfix(crops=sum(r["crops"] for r in results),
                                no_face=sum(r["status"] == "no_face" for r in results),
                                failed=sum(r["status"] in ("failed", "error") for r in results), refresh=False)
        finally:
            bar.close()
        parts = []
        for record in records:
            part = read_part(part_path(out_dir, record.relpath))
            if part is not None and part.get("frames_requested") == (record.frames or config.frames):
                part["record"] = record.to_dict()
                parts.append(part)
        manifest, crop_counts = write_outputs(out_dir, parts)
        selected_set = {r.relpath for r in selected}
        mine = [p for p in parts if p["record"]["relpath"] in selected_set]
        summary = _summarise(out_dir, manifest, mine, crop_counts, results, len(selected),
                             time.perf_counter() - start, shard_text, workers, config.settings())
        name = f"summary_shard-{shard[0]}-of-{shard[1]}.json" if shard else "summary.json"
        atomic.write_bytes(out_dir / name, json.dumps(summary.to_dict(), indent=2))
    return summary


def _run(pending: Sequence[VideoRecord], out_dir: Path, config: PreprocessConfig, workers: int, extractor):
    """Yield each pending video's result dict as it finishes, in this process or in a pool."""
    if not pending:
        return
    if workers == 1 or len(pending) == 1:
        extractor = extractor or build_extractor(config)
        for record in pending:
            yield process_video(record, out_dir, config, extractor).to_dict()
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    workers = min(workers, len(pending))
    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn, not fork: forking a process that has started torch's thread pools can deadlock.
    context = multiprocessing.get_context("spawn")
    config_dict = asdict(config)
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                   initargs=(config_dict, threads, os.getpid()))
    queue = iter(pending)
    running = set()
    try:
        # Bounded in-flight work: a list of 100k videos is never all pickled into the pool at once.
        for record in queue:
            running.add(executor.submit(_worker_task, record.to_dict(), str(out_dir)))
            if len(running) >= workers * 2:
                break
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                record = next(queue, None)
                if record is not None:
                    running.add(executor.submit(_worker_task, record.to_dict(), str(out_dir)))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- merging shards


def _link_or_copy(src: Path, dst: Path) -> None:
    with atomic.atomic_path(dst) as tmp:
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)  # same filesystem: no copy, no extra space
        except OSError:
            shutil.copy2(src, tmp)


def merge(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, progress: bool = True) -> PreprocessSummary:
    """Join preprocessing folders (e.g. shards) into ``out_dir``: crops linked or copied, one manifest.

    Each video appears once: when several folders hold it, the first ``ok`` part wins (else the
    first). All inputs must have the same settings. ``out_dir`` may be one of the inputs.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    out_dir = Path(os.path.abspath(out_dir))
    folders = []
    for folder in inputs:
        folder = Path(os.path.abspath(folder))
        if not (folder / "config.json").is_file() or not (folder / "parts").is_dir():
            raise PreprocessError(f"{folder} is not a preprocessing output folder (no config.json or parts/)")
        if folder not in folders:
            folders.append(folder)
    if not folders:
        raise PreprocessError("nothing to merge")
    configs = [json.loads((f / "config.json").read_text(encoding="utf-8")) for f in folders]
    for folder, config in zip(folders[1:], configs[1:]):
        if config != configs[0]:
            raise PreprocessError(f"{folder} was made with other settings than {folders[0]}; cannot merge")
    (out_dir / "parts").mkdir(parents=True, exist_ok=True)
    with _Lock(out_dir, "all"):
        clean_tmp_files(out_dir)
        if (out_dir / "config.json").is_file() and out_dir not in folders:
            if json.loads((out_dir / "config.json").read_text(encoding="utf-8")) != configs[0]:
                raise PreprocessError(f"{out_dir} holds crops made with other settings; use another --out folder")
        atomic.write_bytes(out_dir / "config.json", json.dumps(configs[0], indent=2))
        chosen: dict[str, tuple[Path, dict]] = {}
        duplicates = 0
        for folder in ([out_dir] if out_dir not in folders else []) + folders:
            for path in sorted((folder / "parts").glob("*.json")):
                part = read_part(path)
                if part is None:
                    continue
                relpath = part["record"]["relpath"]
                if relpath in chosen:
                    duplicates += 1
                    if chosen[relpath][1]["result"]["status"] == "ok" or part["result"]["status"] != "ok":
                        continue
                chosen[relpath] = (folder, part)
        if duplicates:
            log.info("merge: %d videos appeared in more than one folder; each is kept once", duplicates)
        for relpath, (folder, part) in tqdm(sorted(chosen.items()), desc="merging", unit="video", disable=not progress):
            if folder == out_dir:
                continue
            shutil.rmtree(crop_dir(out_dir, relpath), ignore_errors=True)  # debris of an interrupted merge
            for row in part["rows"]:
                _link_or_copy(folder / row["crop_path"], out_dir / row["crop_path"])
            atomic.write_bytes(part_path(out_dir, relpath), json.dumps(part, separators=(",", ":")))
        parts = [part for _, part in chosen.values()]
        manifest, crop_counts = write_outputs(out_dir, parts)
        summary = _summarise(out_dir, manifest, parts, crop_counts, [], len(parts),
                             time.perf_counter() - start, None, 1, configs[0].get("settings", {}))
        atomic.write_bytes(out_dir / "summary.json", json.dumps(summary.to_dict(), indent=2))
    return summary


__all__ = [
    "PreprocessConfig",
    "PreprocessError",
    "PreprocessSummary",
    "VideoResult",
    "build_extractor",
    "process_video",
    "preprocess",
    "merge",
    "parse_shard",
    "in_shard",
    "write_outputs",
    "clean_tmp_files",
]
