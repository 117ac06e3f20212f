"""The bounded queue and the worker threads that run analyses, one at a time per worker.

Each worker thread owns a detector and its lock: PyTorch modules (and the CAM hooks of explanations) are
not safe to share across threads, so either every worker loads its own detector (``load`` gives a new
one per worker) or they share one under one lock, as the Streamlit app does. At most ``workers``
analyses run at once; at most ``queue`` more wait, uploads in progress included (so the disk holds at
most ``queue + workers`` uploads); past that :meth:`JobPool.reserve` raises
:class:`~fakelens.serve.errors.Busy` with a ``Retry-After`` estimate.

A timeout cannot interrupt PyTorch mid-call: the worker checks the deadline between stages (decode,
faces, scoring, explaining), through :meth:`Detector.predict`'s ``progress`` callback, and gives up at
the first check past it. A job's temporary file is removed as soon as its frames are decoded (or it
fails, or is cancelled while queued), and the upload folder goes when the pool stops.
"""

from __future__ import annotations

import base64
import collections
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fakelens.constants import AGGREGATIONS, CAM_METHODS, DEFAULT_CAM_METHOD, check_threshold
from fakelens.errors import InvalidArgument
from fakelens.serve.errors import Busy, NotReady, Timeout, describe, renamed

log = logging.getLogger(__name__)

#: Form fields of ``POST /v1/analyze`` and ``POST /v1/jobs`` besides ``file``.
OPTION_FIELDS = ("frames", "threshold", "aggregate", "explain", "heatmaps")
HEATMAP_MODES = ("none", "base64")
STATES = ("queued", "running", "done", "error")


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class AnalyzeOptions:
    """What one request asks for; None means the detector's own setting."""

    frames: int | None = None
    threshold: float | None = None
    aggregate: str | None = None
    explain: str | None = None
    heatmaps: str = "none"

    @classmethod
    def from_form(cls, fields: dict[str, str], max_frames: int) -> AnalyzeOptions:
        """Parse the text fields of a form; :class:`InvalidArgument` names the first bad one."""
        unknown = sorted(set(fields) - set(OPTION_FIELDS))
        if unknown:
            raise InvalidArgument(f"unknown form field(s) {', '.join(map(repr, unknown))}; the fields are file, {', '.join(OPTION_FIELDS)}")
        values = {k: v for k, v in fields.items() if v != ""}
        frames = values.get("frames")
        if frames is not None:
            if not frames.isdigit() or not 1 <= int(frames) <= max_frames:
                raise InvalidArgument(f"frames must be a whole number from 1 to {max_frames}, got {frames!r}")
            frames = int(frames)
        threshold = values.get("threshold")
        if threshold is not None:
            threshold = check_threshold(threshold)
        aggregate = values.get("aggregate")
        if aggregate is not None and aggregate not in AGGREGATIONS:
            raise InvalidArgument(f"aggregate must be one of {', '.join(AGGREGATIONS)}, got {aggregate!r}")
        explain = values.get("explain")
        if explain is not None and explain.lower() in ("none", "false", "0"):
            explain = None
        if explain is not None and explain not in CAM_METHODS:
            raise InvalidArgument(f"explain must be one of {', '.join(CAM_METHODS)}, got {explain!r}")
        heatmaps = values.get("heatmaps", "none")
        if heatmaps not in HEATMAP_MODES:
            raise InvalidArgument(f"heatmaps must be one of {', '.join(HEATMAP_MODES)}, got {heatmaps!r}")
        if heatmaps != "none" and explain is None:
            explain = DEFAULT_CAM_METHOD  # heatmaps need an explanation: the default method
        return cls(frames, threshold, aggregate, explain, heatmaps)


def encode_png(image) -> str:
    """An (H, W) or (H, W, 3) uint8 RGB array as base64 PNG text."""
    import cv2
    import numpy as np

    image = np.ascontiguousarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("could not encode a PNG")
    return base64.b64encode(encoded.tobytes()).decode("ascii")


def heatmap_entries(prediction) -> list[dict]:
    """One entry per face (the order of ``face_scores``): the map as 8-bit grayscale and drawn on its crop."""
    import numpy as np

    from fakelens.explain.render import overlay

    entries = []
    for index, face in enumerate(prediction.faces):
        if face.heatmap is None:
            continue
        gray = (np.clip(np.nan_to_num(face.heatmap), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        entries.append(
            {
                "face": index,
                "frame_index": face.frame_index,
                "track": face.track,
                "score": round(face.score, 5),
                "heatmap_png": encode_png(gray),
                "overlay_png": encode_png(overlay(face.crop, face.heatmap)),
            }
        )
    return entries


def analyze(detector, path: Path, name: str, options: AnalyzeOptions, progress=None) -> dict:
    """``Prediction.to_dict()`` for one file, with ``source`` the client's name and heatmaps when asked."""
    prediction = detector.predict(
        path, num_frames=options.frames, threshold=options.threshold, aggregate=options.aggregate, explain=options.explain, progress=progress
    )
    prediction.source = name
    result = prediction.to_dict()
    if options.heatmaps == "base64":
        result["heatmaps"] = heatmap_entries(prediction)
    return result


def release_memory() -> None:
    """Hand freed heap back to the system (glibc's ``malloc_trim``) once the pool is idle.

    Decoded frames are large, short-lived arrays: without this, glibc keeps the peak of a burst of
    analyses (hundreds of MB of 1080p frames) as the process's resident size long after it is over."""
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc: Any = None


# --------------------------------------------------------------------------- jobs


class Cancelled(Exception):
    """Raised inside a worker (from the progress callback) to stop an analysis between stages."""


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


@dataclass(eq=False)
class Job:
    """One analysis: its uploaded file (owned by the pool once submitted), options, state and outcome.

    ``visible`` jobs (``POST /v1/jobs``) are kept for ``GET /v1/jobs/{id}``; the others belong to a
    waiting ``POST /v1/analyze``. ``deadline`` (time.monotonic) is set on submit for those, on start for jobs.
    """

    path: Path
    filename: str
    options: AnalyzeOptions
    visible: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    deadline: float | None = None
    result: dict | None = None
    #: (HTTP status, code, message, headers) when ``status == "error"``.
    error: tuple[int, str, str, dict] | None = None
    _cancel_reason: str | None = None
    _callbacks: list = field(default_factory=list, repr=False)

    @property
    def done(self) -> bool:
        return self.status in ("done", "error")

    def to_dict(self, position: int | None = None) -> dict:
        data = {
            "id": self.id,
            "status": self.status,
            "filename": self.filename,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "seconds": None if self.started is None else round((self.finished or time.time()) - self.started, 3),
            "result": self.result,
            "error": None if self.error is None else {"code": self.error[1], "message": self.error[2], "status": self.error[0]},
        }
        if position is not None:
            data["position"] = position
        return data


class Slot:
    """A place in the queue held while an upload arrives: :meth:`JobPool.submit` uses it, or closing frees it."""

    def __init__(self, pool: JobPool):
        self._pool = pool
        self.used = False

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc) -> None:
        if not self.used:
            self.used = True
            self._pool._release()


class JobPool:
    """``workers`` threads taking jobs from a bounded queue.

    ``load(i)`` returns ``(detector, lock)`` for worker ``i`` and runs in that worker's thread at start;
    ``runner(detector, job, progress)`` returns the result dict (default :func:`analyze`).
    """

    def __init__(
        self,
        load: Callable[[int], tuple[object, threading.Lock]],
        workers: int = 1,
        queue: int = 16,
        timeout: float = 300.0,
        keep_jobs: int = 256,
        keep_seconds: float = 3600.0,
        runner: Callable | None = None,
    ):
        self._load = load
        self.workers = workers
        self.queue = queue
        self.timeout = timeout
        self.keep_jobs = keep_jobs
        self.keep_seconds = keep_seconds
        self._runner = runner or (lambda detector, job, progress: analyze(detector, job.path, job.filename, job.options, progress))
        self._cond = threading.Condition()
        self._pending: collections.deque[Job] = collections.deque()
        self._reserved = 0
        self._running = 0
        self._loaded = 0
        self._alive = 0
        self._stopping = False
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._mean_seconds = 5.0  # running estimate of one analysis, for Retry-After
        self._threads: list[threading.Thread] = []
        self.load_errors: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        with self._cond:
            self._alive = self.workers
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, args=(i,), name=f"fakelens-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, wait: float = 10.0) -> None:
        """Stop taking jobs, fail the queued ones (removing their files), wait up to ``wait`` s for running ones."""
        with self._cond:
            self._stopping = True
            pending, self._pending = list(self._pending), collections.deque()
            for job in list(self._jobs.values()) + pending:
                if not job.done:
                    job._cancel_reason = "the server is shutting down"
            self._cond.notify_all()
        for job in pending:
            self._finish(job, error=(503, "not_ready", "the server is shutting down", {}))
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def ready(self) -> bool:
        with self._cond:
            return self._loaded == self.workers

    def stats(self) -> dict:
        with self._cond:
            return {
                "workers": self.workers,
                "loaded": self._loaded,
                "running": self._running,
                "queued": len(self._pending),
                "uploading": self._reserved,
                "queue": self.queue,
                "jobs_kept": len(self._jobs),
            }

    # ------------------------------------------------------------------ submitting

    def retry_after(self) -> int:
        """Seconds until a place is likely to free up (at least 1)."""
        with self._cond:
            ahead = len(self._pending) + self._reserved + self._running
        return max(1, min(600, math.ceil(self._mean_seconds * max(1, ahead) / self.workers)))

    def reserve(self) -> Slot:
        """A place in the queue for an upload about to arrive, or :class:`Busy` when there is none."""
        with self._cond:
            if self._stopping or self._alive == 0:
                raise NotReady("no worker is running" if not self._stopping else "the server is shutting down")
            if len(self._pending) + self._reserved < self.queue:
                self._reserved += 1
                return Slot(self)
        retry = self.retry_after()
        raise Busy(f"all {self.workers} worker(s) are busy and the queue of {self.queue} is full; retry in {retry} s", retry)

    def _release(self) -> None:
        with self._cond:
            self._reserved -= 1

    def submit(self, job: Job, slot: Slot) -> Job:
        """Queue ``job`` in the place ``slot`` holds; the pool owns ``job.path`` from here on."""
        with self._cond:
            if slot.used:
                raise RuntimeError("this queue slot was already used")
            slot.used = True
            self._reserved -= 1
            if self._stopping or self._alive == 0:
                job.path.unlink(missing_ok=True)
                raise NotReady("no worker is running")
            if not job.visible:
                job.deadline = time.monotonic() + self.timeout
            else:
                self._prune()
                self._jobs[job.id] = job
            self._pending.append(job)
            self._cond.notify()
        return job

    def on_done(self, job: Job, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` (from a worker thread) once it is finished, or now if it already is."""
        with self._cond:
            if not job.done:
                job._callbacks.append(callback)
                return
        callback(job)

    def cancel(self, job: Job, reason: str = "timeout") -> None:
        """Give up ``job``: dropped now if still queued (its file removed), stopped at the next stage if running."""
        with self._cond:
            if job.done:
                return
            job._cancel_reason = reason
            queued = job in self._pending
            if queued:
                self._pending.remove(job)
        if queued:
            self._finish(job, error=self._cancel_error(job))

    def get(self, job_id: str) -> tuple[Job, int | None] | None:
        """A kept job and its place in the queue (1 = next), or None."""
        with self._cond:
            self._prune()
            job = self._jobs.get(job_id)
            if job is None:
                return None
            position = next((i + 1 for i, j in enumerate(self._pending) if j is job), None)
            return job, position

    def _prune(self) -> None:
        """Forget finished jobs past ``keep_seconds``, then the oldest past ``keep_jobs`` (lock held)."""
        now = time.time()
        finished = [j for j in self._jobs.values() if j.done]
        expired = {j.id for j in finished if now - j.finished > self.keep_seconds}
        finished = [j for j in finished if j.id not in expired]
        finished.sort(key=lambda j: j.finished or 0.0)
        expired |= {j.id for j in finished[: max(0, len(finished) - self.keep_jobs)]}
        for job_id in expired:
            del self._jobs[job_id]

    # ------------------------------------------------------------------ working

    def _cancel_error(self, job: Job) -> tuple[int, str, str, dict]:
        if job._cancel_reason == "timeout":
            return describe(Timeout(f"the analysis took longer than the server's timeout of {self.timeout:g} s"))
        return describe(NotReady(job._cancel_reason or "cancelled"))

    def _check(self, job: Job) -> None:
        if job._cancel_reason is None and job.deadline is not None and time.monotonic() > job.deadline:
            job._cancel_reason = "timeout"
        if job._cancel_reason is not None:
            raise Cancelled(job._cancel_reason)

    def _progress(self, job: Job, stage: str) -> None:
        """Between two stages: past decoding the frames are in memory, so the upload goes at once; then the deadline."""
        if stage != "reading frames":
            job.path.unlink(missing_ok=True)
        self._check(job)

    def _work(self, index: int) -> None:
        try:
            detector, lock = self._load(index)
        except Exception as exc:  # noqa: BLE001 - reported by /readyz and the log
            log.exception("worker %d could not load the model", index)
            with self._cond:
                self.load_errors.append(f"worker {index}: {type(exc).__name__}: {exc}")
                self._alive -= 1
                orphans = list(self._pending) if self._alive == 0 else []
                if orphans:
                    self._pending.clear()
            for job in orphans:
                self._finish(job, error=(503, "not_ready", "no worker could load the model", {}))
            return
        with self._cond:
            self._loaded += 1
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    self._alive -= 1
                    return
                job = self._pending.popleft()
                job.status, job.started = "running", time.time()
                if job.visible:
                    job.deadline = time.monotonic() + self.timeout
                self._running += 1
            started = time.monotonic()
            result = error = None
            try:
                self._check(job)
                with lock:
                    result = self._runner(detector, job, lambda stage, fraction, job=job: self._progress(job, stage))
            except Cancelled:
                error = self._cancel_error(job)
            except Exception as exc:  # noqa: BLE001 - every failure becomes the job's error, none kills the worker
                exc = renamed(exc, job.path, job.filename)
                error = describe(exc)
                if error[0] >= 500:
                    log.error("analysis of %s failed", job.filename, exc_info=exc)
            finally:
                with self._cond:
                    self._running -= 1
                    self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * (time.monotonic() - started)
            self._finish(job, result=result, error=error)
            with self._cond:
                idle = not self._pending and self._running == 0
            if idle:
                release_memory()

    def _finish(self, job: Job, result: dict | None = None, error: tuple | None = None) -> None:
        job.path.unlink(missing_ok=True)
        with self._cond:
            job.result, job.error = result, error
            job.finished = time.time()
            job.status = "error" if error is not None else "done"
            callbacks, job._callbacks = job._callbacks, []
        for callback in callbacks:
            try:
                callback(job)
            except Exception:  # noqa: BLE001
                log.exception("a job callback failed")
