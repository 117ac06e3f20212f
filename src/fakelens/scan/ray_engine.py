"""The Ray engine: Ray Data across a cluster (or a local instance), with the detector split in two stages.

::

    paths ──► find_faces (CPU tasks, 1 CPU each) ──► classify + verdict (actor pool, one model per actor) ──► rows
              load_frames, MTCNN on the CPU,           detector.classify on one input's crops,
              the crops as uint8 bytes                 the verdict as Detector.predict makes it

Decoding and face finding are most of the cost and need no model, so they run as plain tasks on every
CPU of the cluster; each worker process builds its FaceExtractor once (:func:`fakelens.scan.stages.face_extractor`).
The classifier runs in ``actors`` actors, each loading the Detector once; with GPUs in the cluster each
actor takes one (``num_gpus=1``) and scores there. One input's crops stay together in one call, the batch
``Detector.predict`` makes, so scores equal ``fakelens predict``'s (see :mod:`fakelens.scan.stages`).
The driver writes a part as each row comes back, so a killed scan keeps every finished input.

Paths must be readable under the same name on every node (a shared file system). Ray is an optional
extra (``pip install "fakelens[ray]"``); without it this module still imports and :func:`run_ray` says what to install.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence

from fakelens.errors import FakelensError
from fakelens.scan.sources import HashedInput
from fakelens.scan.stages import ScanSettings, error_row, find_faces, load_detector, score_found

log = logging.getLogger(__name__)

Result = tuple[HashedInput, dict, list[dict]]
INSTALL_HINT = 'the Ray engine needs Ray, an optional extra: pip install "fakelens[ray]" (in a checkout: pip install -e ".[ray]")'
#: Inputs per Ray Data block: small blocks stream rows back (and into parts) as they finish.
MAX_BLOCKS = 10_000
#: Memory a face-finding task asks Ray for: 32 decoded 1080p frames and MTCNN's pyramids fit. The request
#: also keeps Ray Data from fusing the two stages (it fuses a task stage into the next actor stage only
#: when their resource requests match), which would run face finding inside the few classifier actors.
FACES_TASK_MEMORY = 768 * 2**20


class RayUnavailable(FakelensError):
    """``--engine ray`` without Ray installed."""


class RayConnectionFailed(FakelensError):
    """``--address`` names a cluster this process cannot join (not running, or its token missing)."""


#: What a refused connection usually means with Ray 2.60, whose clusters use token authentication by default.
AUTH_HINT = (
    "A cluster with token authentication (Ray 2.60's default) is joined with RAY_AUTH_MODE=token and its token "
    "(~/.ray/auth_token copied from the head, or RAY_AUTH_TOKEN); one started with RAY_AUTH_MODE=disabled, with "
    "RAY_AUTH_MODE=disabled"
)


class RayScanFailed(FakelensError):
    """Ray Data gave up (a node or worker lost past its retries); the parts written so far stay."""


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RayUnavailable(f"{INSTALL_HINT} ({exc})") from None
    return ray


_THREADS_SET = False


def _faces_row(row: dict, frames: int) -> dict:
    """Stage 1, one row: the input's crops and face metadata (errors travel as ``error``)."""
    global _THREADS_SET
    if not _THREADS_SET:
        import torch

        torch.set_num_threads(1)  # one CPU per task; MTCNN gains little from more (README, Performance)
        _THREADS_SET = True
    return {"sha256": row["sha256"], "path": row["path"], **find_faces(row["path"], frames)}


class Classifier:
    """Stage 2: an actor holding one Detector; a batch of stage-1 rows -> result rows (as JSON)."""

    def __init__(self, settings: dict, device: str | None):
        self.detector = load_detector(ScanSettings(**settings), device=device)

    def __call__(self, batch: dict) -> dict:
        rows, faces = [], []
        for i in range(len(batch["sha256"])):
            found = {key: batch[key][i] for key in ("crops", "n_crops", "faces_json", "frames", "seconds", "error")}
            try:
                row, face_rows = score_found(self.detector, found)
            except Exception as exc:  # noqa: BLE001 - one bad input must not fail the whole dataset
                row, face_rows = error_row(f"unexpected {type(exc).__name__}: {exc}", self.detector.name), []
            rows.append(json.dumps(row))
            faces.append(json.dumps(face_rows))
        return {"sha256": list(batch["sha256"]), "row_json": rows, "faces_json": faces}


def _init_ray(ray, address: str | None, num_cpus: int | None, options: dict | None) -> bool:
    """Connect to ``address`` or start a local instance; True when this call started it (so must stop it)."""
    if ray.is_initialized():
        return False
    kwargs = dict(options or {})
    kwargs.setdefault("logging_level", logging.WARNING)
    kwargs.setdefault("include_dashboard", False)
    if address:
        try:
            ray.init(address=address, **{k: v for k, v in kwargs.items() if k not in ("include_dashboard", "_temp_dir")})
        except ConnectionError as exc:
            raise RayConnectionFailed(f"cannot join the Ray cluster at {address}: {exc}. {AUTH_HINT}") from None
    else:
        ray.init(address="local", num_cpus=num_cpus, **kwargs)  # "local": a new instance, even beside a running cluster
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its per-dataset INFO lines; -v shows them
    return True


def run_ray(
    pending: Sequence[HashedInput],
    settings: ScanSettings,
    actors: int = 1,
    address: str | None = None,
    num_cpus: int | None = None,
    ray_options: dict | None = None,
) -> Iterator[Result]:
    """Yield ``(input, result row, face rows)`` for each pending input as Ray Data finishes it.

    ``address`` joins a running cluster (``"auto"``, ``"host:6379"``, ``"ray://..."``); without it a local
    instance is started with ``num_cpus`` (default all) and stopped at the end. ``ray_options`` go to
    ``ray.init`` (e.g. ``{"_temp_dir": "/tmp/ray-scan"}``).
    """
    ray = import_ray()
    if not pending:
        return
    started = _init_ray(ray, address, num_cpus, ray_options)
    try:
        from ray.data import ActorPoolStrategy, DataContext

        context = DataContext.get_current()
        context.enable_progress_bars = False  # fakelens scan shows its own bar over files
        gpus = int(ray.cluster_resources().get("GPU", 0))
        actors = max(1, min(actors, gpus) if gpus else actors)
        by_sha = {item.sha256: item for item in pending}
        items = [{"sha256": item.sha256, "path": item.path} for item in pending]
        dataset = ray.data.from_items(items, override_num_blocks=min(len(items), MAX_BLOCKS))
        dataset = dataset.map(_faces_row, fn_kwargs={"frames": settings.frames}, num_cpus=1, memory=FACES_TASK_MEMORY)
        classify_resources = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        dataset = dataset.map_batches(
            Classifier,
            fn_constructor_kwargs={"settings": settings.to_dict(), "device": "cuda" if gpus else "cpu"},
            compute=ActorPoolStrategy(size=actors),
            batch_size=1,
            batch_format="numpy",
            **classify_resources,
        )
        log.info("Ray: %s CPUs, %d GPUs, %d classifier actors", ray.cluster_resources().get("CPU"), gpus, actors)
        rows = iter(dataset.iter_rows())
        while True:
            try:
                out = next(rows)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - a lost node or worker: say what to do, not a Ray traceback
                raise RayScanFailed(f"the Ray scan stopped ({type(exc).__name__}: {exc}); finished inputs are saved, rerun to resume") from exc
            item = by_sha[str(out["sha256"])]
            yield item, json.loads(out["row_json"]), json.loads(out["faces_json"])
    finally:
        if started:
            ray.shutdown()


def ray_available() -> bool:
    try:
        import_ray()
    except RayUnavailable:
        return False
    return True


__all__ = ["Classifier", "RayScanFailed", "RayUnavailable", "import_ray", "ray_available", "run_ray", "INSTALL_HINT"]
