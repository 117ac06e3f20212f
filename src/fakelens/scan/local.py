"""The local engine: a small pool of processes across files, each with its own Detector, loaded once.

Each worker runs ``Detector.predict`` on whole files (:func:`fakelens.scan.stages.predict_row`), so its
numbers are ``fakelens predict``'s by construction. Workers are ``spawn``ed (forking a process that has
started torch's thread pools can deadlock), share the cores (``torch.set_num_threads(cores // workers)``)
and exit when the scanning process dies, even by SIGKILL. Results come back to the scanning process,
which writes the parts, so only it writes in RESULTS/.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence

from fakelens.scan.sources import HashedInput
from fakelens.scan.stages import ScanSettings, error_row, load_detector, predict_row

log = logging.getLogger(__name__)

Result = tuple[HashedInput, dict, list[dict]]

_WORKER: dict = {}


def default_workers() -> int:
    """Two on two cores, and at most half the cores beyond (each worker holds a model and a face detector)."""
    cores = os.cpu_count() or 1
    return max(1, min(cores, 2) if cores <= 4 else cores // 2)


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(1)


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass


def _init(settings: dict, threads: int, parent_pid: int) -> None:
    import threading

    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    from fakelens.pipeline import face_threads

    _set_threads(threads)
    # Each worker has its share of the cores: as many face finders as a machine of that size gets.
    _WORKER["detector"] = load_detector(ScanSettings(**settings), face_threads=face_threads(threads))


def _task(path: str) -> tuple[dict, list[dict]]:
    return predict_row(_WORKER["detector"], path)


def run_local(pending: Sequence[HashedInput], settings: ScanSettings, workers: int = 1, detector=None) -> Iterator[Result]:
    """Yield ``(input, result row, face rows)`` for each pending input as it finishes (in any order).

    ``workers=1`` scans in this process (with ``detector`` when given). A worker process that dies
    (out of memory, a crash in a decoder) turns the inputs it held into ERROR rows and the pool is started again.
    """
    if not pending:
        return
    if workers <= 1 or len(pending) == 1:
        detector = detector or load_detector(settings)
        for item in pending:
            row, faces = predict_row(detector, item.path)
            yield item, row, faces
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    workers = min(workers, len(pending))
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    queue = list(reversed(pending))

    def start() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=context, initializer=_init, initargs=(settings.to_dict(), threads, os.getpid()))

    executor = start()
    running: dict = {}
    try:
        while queue or running:
            # Bounded in-flight work: a list of 100k files is never all pickled into the pool at once.
            while queue and len(running) < workers * 2:
                item = queue.pop()
                running[executor.submit(_task, item.path)] = item
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                item = running.pop(future)
                try:
                    row, faces = future.result()
                except BrokenProcessPool:
                    broken = True
                    row, faces = error_row("the worker process died while scanning this file (out of memory?)"), []
                yield item, row, faces
            if broken:
                queue.extend(running.values())  # innocent bystanders: scanned again by the new pool
                running.clear()
                executor.shutdown(wait=False, cancel_futures=True)
                log.warning("a worker process died; starting the pool again")
                executor = start()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
