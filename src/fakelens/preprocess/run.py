"""A run over many videos: shard selection, resume (skip what has a part file), then the videos run by
an engine: ``local`` (this process, or a pool of worker processes, ``spawn``, each building one detector)
or ``ray`` (one Ray task per video, :mod:`fakelens.preprocess.ray_engine`); then the outputs rebuilt from
the part files and summarised, the same code for both engines.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from fakelens import atomic
from fakelens.data.records import VideoRecord
from fakelens.preprocess.config import PreprocessConfig, PreprocessError, PreprocessSummary, summarise
from fakelens.preprocess.folder import FolderLock, check_config, clean_tmp_files, part_path, read_part, write_outputs
from fakelens.preprocess.video import build_extractor, process_video

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


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


def preprocess(
    records: Sequence[VideoRecord],
    out_dir: str | os.PathLike,
    config: PreprocessConfig | None = None,
    workers: int = 1,
    shard: tuple[int, int] | str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    extractor=None,
    engine: str = "local",
    address: str | None = None,
    num_cpus: int | None = None,
    ray_options: dict | None = None,
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
    engine : ``"local"`` (default: ``workers`` processes on this machine) or ``"ray"`` (one Ray task per
        video, 1 CPU each; ``workers`` is ignored). Both write the same part files, crops and manifest.
    address : ray: a running cluster to join (``"host:6379"``, ``"auto"``); default: start a local instance.
    num_cpus : ray: CPUs of the local instance it starts (default all).
    ray_options : ray: extra ``ray.init`` arguments (e.g. ``{"_temp_dir": "/tmp/ray-prep"}``).
    """
    from tqdm.auto import tqdm

    config = config or PreprocessConfig()
    config.validate()
    if engine not in ENGINES:
        raise PreprocessError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "ray":
        from fakelens.preprocess.ray_engine import import_ray

        import_ray()  # without Ray: say what to install before touching the output folder
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
    with FolderLock(out_dir, f"{shard[0]}-of-{shard[1]}" if shard else "all"):
        removed = clean_tmp_files(out_dir)
        if removed:
            log.info("removed %d temporary files left by an interrupted run", removed)
        check_config(out_dir, config, ",".join(datasets) or None)
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
        bar = tqdm(
            total=len(selected), initial=len(selected) - len(pending), desc="preprocessing", unit="video", disable=not progress, dynamic_ncols=True
        )
        info: dict = {}
        if engine == "ray":
            from fakelens.preprocess.ray_engine import run_ray

            videos = run_ray(pending, out_dir, config, address=address, num_cpus=num_cpus, ray_options=ray_options, info=info)
        else:
            videos = _run(pending, out_dir, config, workers, extractor)
        try:
            for result in videos:
                results.append(result)
                bar.update(1)
                bar.set_postfix(
                    crops=sum(r["crops"] for r in results),
                    no_face=sum(r["status"] == "no_face" for r in results),
                    failed=sum(r["status"] in ("failed", "error") for r in results),
                    refresh=False,
                )
        finally:
            bar.close()
            videos.close()  # stops the pool or the Ray tasks at once when the loop is left by an exception
        if engine == "ray":
            workers = int(info.get("cpus", workers))  # the summary's "workers": the cluster's CPUs
        parts = []
        for record in records:
            part = read_part(part_path(out_dir, record.relpath))
            if part is not None and part.get("frames_requested") == (record.frames or config.frames):
                part["record"] = record.to_dict()
                parts.append(part)
        manifest, crop_counts = write_outputs(out_dir, parts)
        selected_set = {r.relpath for r in selected}
        mine = [p for p in parts if p["record"]["relpath"] in selected_set]
        summary = summarise(
            out_dir, manifest, mine, crop_counts, results, len(selected), time.perf_counter() - start, shard_text, workers, config.settings()
        )
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
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init, initargs=(config_dict, threads, os.getpid()))
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
