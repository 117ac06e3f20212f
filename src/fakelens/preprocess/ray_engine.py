"""The Ray engine of ``fakelens preprocess``: one Ray task per video, across a cluster or a local instance.

Each task is :func:`~fakelens.preprocess.video.process_video` on one record, exactly as the local engine
runs it: it writes the video's crops, then its part file, into the output folder, and returns the
:class:`~fakelens.preprocess.config.VideoResult` as a dict. A task takes 1 CPU (and uses 1 torch thread);
each Ray worker process builds the detector once and keeps it for the next videos it gets. The driver
(:func:`fakelens.preprocess.run.preprocess`) does everything else as for ``--engine local``: the shard,
what is already done (resume), and the manifest and CSVs rebuilt from the part files at the end, so the
two engines give the same manifest for the same input and settings.

A task whose worker dies (a node lost, the OOM killer) is run again by Ray (``max_retries``), as is one
that raises (``retry_exceptions``; :func:`process_video` itself never raises for bad media, so that is
e.g. a full disk). A video that fails past its retries stops the run with :class:`RayPreprocessFailed`:
every finished video has its part file, so running the same command again resumes.

The dataset and the output folder must be readable and writable under the same paths on every node (a
shared file system). Ray is an optional extra (``pip install "fakelens[ray]"``); this module imports
without it, and :func:`run_ray` then raises :class:`~fakelens.scan.ray_engine.RayUnavailable`, which says
what to install.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Sequence
from dataclasses import asdict
from pathlib import Path

from fakelens.data.records import VideoRecord
from fakelens.preprocess.config import PreprocessConfig, PreprocessError
from fakelens.preprocess.video import build_extractor, process_video
from fakelens.scan.ray_engine import INSTALL_HINT, RayUnavailable, _init_ray, import_ray, ray_available

log = logging.getLogger(__name__)

#: Runs of a task after its first: a lost worker or node, or an exception (e.g. a full disk).
MAX_RETRIES = 3
#: Memory a task asks Ray for: 32 decoded 1080p frames and MTCNN's pyramids fit (as in the scan engine).
TASK_MEMORY = 768 * 2**20
#: Tasks submitted ahead per cluster CPU: every CPU stays busy, and 100k videos are never all queued at once.
IN_FLIGHT_PER_CPU = 2

# One detector per Ray worker process, rebuilt only for other settings.
_EXTRACTOR: dict = {}


class RayPreprocessFailed(PreprocessError):
    """A video's task failed past its retries; the part files written so far stay (rerun to resume)."""


def _video_task(record_dict: dict, out_dir: str, config_dict: dict) -> dict:
    """One video in a Ray worker: :func:`process_video` with this worker's detector; the result as a dict."""
    key = json.dumps(config_dict, sort_keys=True)
    if _EXTRACTOR.get("key") != key:
        import torch

        torch.set_num_threads(1)  # one CPU per task
        try:
            import cv2

            cv2.setNumThreads(1)
        except ImportError:  # pragma: no cover
            pass
        _EXTRACTOR["extractor"] = build_extractor(PreprocessConfig(**config_dict))
        _EXTRACTOR["key"] = key
    config = PreprocessConfig(**config_dict)
    return process_video(VideoRecord(**record_dict), out_dir, config, _EXTRACTOR["extractor"]).to_dict()


def run_ray(
    pending: Sequence[VideoRecord],
    out_dir: Path,
    config: PreprocessConfig,
    address: str | None = None,
    num_cpus: int | None = None,
    ray_options: dict | None = None,
    info: dict | None = None,
) -> Generator[dict, None, None]:
    """Yield each pending video's result dict as its Ray task finishes (in completion order).

    ``address`` joins a running cluster (``"auto"``, ``"host:6379"``, ``"ray://..."``); without it a local
    instance is started with ``num_cpus`` (default all) and stopped at the end. When this process already
    called ``ray.init``, that instance is used as it is. ``ray_options`` go to ``ray.init`` (e.g.
    ``{"_temp_dir": "/tmp/ray-prep"}``). ``info``, when given, receives ``"cpus"``: the cluster's CPUs.
    """
    ray = import_ray()
    if not pending:
        return
    started = _init_ray(ray, address, num_cpus, ray_options)  # RayConnectionFailed, with AUTH_HINT, when refused
    task = ray.remote(num_cpus=1, memory=TASK_MEMORY, max_retries=MAX_RETRIES, retry_exceptions=True)(_video_task)
    running: dict = {}
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        if info is not None:
            info["cpus"] = cpus
        log.info("Ray: %d CPUs for %d videos", cpus, len(pending))
        config_ref = ray.put(asdict(config))
        queue = iter(pending)
        limit = max(1, cpus * IN_FLIGHT_PER_CPU)

        def submit() -> bool:
            record = next(queue, None)
            if record is None:
                return False
            running[task.remote(record.to_dict(), str(out_dir), config_ref)] = record
            return True

        while len(running) < limit and submit():
            pass
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                record = running.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - say what to do, not a Ray traceback
                    raise RayPreprocessFailed(
                        f"{record.relpath}: its Ray task failed after {MAX_RETRIES} retries ({type(exc).__name__}: {exc}); "
                        "finished videos are saved, run the same command again to resume"
                    ) from exc
                yield result
                submit()
    finally:
        for ref in running:
            ray.cancel(ref)
        if started:
            ray.shutdown()


__all__ = ["INSTALL_HINT", "MAX_RETRIES", "RayPreprocessFailed", "RayUnavailable", "import_ray", "ray_available", "run_ray"]
