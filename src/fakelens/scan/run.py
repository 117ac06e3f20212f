"""``scan(sources, out_dir)``: list and hash the inputs, skip what is done, run an engine, write parts, merge, summarise."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from fakelens import atomic
from fakelens.errors import InvalidArgument
from fakelens.scan.results import ResultsFolder, ScanSummary, plot_scores, summarise
from fakelens.scan.sources import HashedInput, expand_sources, hash_inputs
from fakelens.scan.stages import ERROR, ScanSettings

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


def _settings_record(settings: ScanSettings) -> dict:
    """What must match for a rerun to reuse parts: the model (by content) and the options that change scores."""
    from fakelens.scan.sources import sha256_file

    if settings.checkpoint:
        checkpoint = os.path.abspath(settings.checkpoint)
        if not os.path.isfile(checkpoint):
            raise InvalidArgument(f"{checkpoint}: checkpoint not found")
        model = sha256_file(checkpoint)
    else:
        import fakelens

        record = Path(fakelens.__file__).parent / "weights" / "default.json"  # detector.DEFAULT_MODEL_RECORD, without torch
        model = json.loads(record.read_text())["sha256"] if record.is_file() else "bundled"
    return {"model_sha256": model, "frames": settings.frames, "threshold": settings.threshold, "aggregate": settings.aggregate}


def scan(
    sources: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    settings: ScanSettings | None = None,
    engine: str = "local",
    workers: int | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    retry_errors: bool = False,
    ray_options: dict | None = None,
    progress: bool = True,
    plot: bool = True,
    detector=None,
) -> ScanSummary:
    """Scan every input of ``sources`` into ``out_dir`` (see :mod:`fakelens.scan`); resume what is done.

    engine : ``"local"`` (a pool of ``workers`` processes, default 2 on 2 cores) or ``"ray"`` (Ray Data;
        ``address`` joins a running cluster, default a local instance with ``num_cpus``; ``workers`` is
        then the number of classifier actors).
    ray_options : extra ``ray.init`` arguments for the Ray engine (e.g. ``{"_temp_dir": "/tmp/ray-scan"}``).
    retry_errors : scan inputs whose part is an ERROR row again (default False: an ERROR is a result).
    detector : a ready Detector for ``engine="local", workers=1`` (tests, notebooks).
    """
    from tqdm.auto import tqdm

    if engine not in ENGINES:
        raise InvalidArgument(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    settings = settings or ScanSettings()
    start = time.perf_counter()
    inputs = expand_sources(sources)
    if not inputs:
        raise InvalidArgument("no image or video found in the given sources")
    folder = ResultsFolder(out_dir)
    folder.prepare(_settings_record(settings))
    hashed = hash_inputs(inputs)
    done = folder.done()
    if retry_errors:
        done = {sha: row for sha, row in done.items() if row["label"] != ERROR}
    pending: list[HashedInput] = []
    queued: set[str] = set()
    resumed = duplicates = 0
    for item in hashed:
        if item.sha256 is None:
            continue
        if item.sha256 in done:
            resumed += 1
        elif item.sha256 in queued:
            duplicates += 1
        else:
            queued.add(item.sha256)
            pending.append(item)
    if engine == "local":
        from fakelens.scan.local import default_workers, run_local

        workers = default_workers() if workers is None else max(1, int(workers))
        results = run_local(pending, settings, workers, detector)
    else:
        from fakelens.scan.ray_engine import run_ray

        workers = 1 if workers is None else max(1, int(workers))
        results = run_ray(pending, settings, actors=workers, address=address, num_cpus=num_cpus, ray_options=ray_options)
    unreadable = sum(1 for h in hashed if h.sha256 is None)
    copies = Counter(h.sha256 for h in hashed if h.sha256 in queued)
    bar = tqdm(total=len(hashed), initial=resumed + unreadable, desc="scanning", unit="file", disable=not progress, dynamic_ncols=True)
    processed = 0
    counts: dict[str, int] = {}
    scan_start = time.perf_counter()
    try:
        for item, row, faces in results:
            assert item.sha256 is not None
            folder.write_part(item.sha256, item.path, row, faces)
            done[item.sha256] = {**row, "path": item.path, "sha256": item.sha256}
            processed += 1
            counts[row["label"]] = counts.get(row["label"], 0) + 1
            bar.update(copies[item.sha256])
            bar.set_postfix(counts, refresh=False)
    finally:
        close = getattr(results, "close", None)
        if close:
            close()
        bar.close()
    scan_seconds = time.perf_counter() - scan_start
    table, _ = folder.merge(hashed, done)
    summary = summarise(
        table,
        out_dir=str(folder.root),
        inputs=len(hashed),
        processed=processed,
        resumed=resumed,
        duplicates=duplicates,
        seconds=time.perf_counter() - start,
        per_minute=processed / scan_seconds * 60 if processed and scan_seconds > 0 else None,
        engine=engine,
        workers=workers,
        settings={**settings.to_dict(), "unreadable": unreadable},
    )
    atomic.write_json(folder.root / "summary.json", summary.to_dict())
    if plot:
        plot_scores(table, folder.root / "scores.png")
    return summary
