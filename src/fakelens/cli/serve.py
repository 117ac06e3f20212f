"""``fakelens serve``: the HTTP API (FastAPI + uvicorn) for other programs; see fakelens.serve."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from fakelens.constants import DEFAULT_MAX_UPLOAD_MB
from fakelens.serve.settings import (
    DEFAULT_HOST,
    DEFAULT_KEEP_JOBS,
    DEFAULT_KEEP_SECONDS,
    DEFAULT_PORT,
    DEFAULT_QUEUE,
    DEFAULT_TIMEOUT,
    INSTALL_HINT,
    REQUIRED_MODULES,
    TOKEN_ENV,
    Settings,
    available_cores,
    default_workers,
    token_from_env,
)

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="HTTP API for other programs: POST a video or image, get the verdict as JSON",
        description=f"Serve the detector over HTTP (OpenAPI docs at /docs). Set {TOKEN_ENV} to require "
        "'Authorization: Bearer <token>'; without a token only localhost may be bound, unless --allow-remote. "
        f"Needs the serve extra: {INSTALL_HINT}",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--checkpoint", type=Path, default=None, help="model checkpoint (default: the bundled model)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"analyses run at once, each with its own model (default {default_workers()}, at most {available_cores()}: the cores here)",
    )
    parser.add_argument(
        "--queue",
        type=int,
        default=DEFAULT_QUEUE,
        help=f"analyses that may wait for a worker, uploads in progress included; beyond: 429 (default {DEFAULT_QUEUE})",
    )
    parser.add_argument(
        "--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB, help=f"largest upload in MB; beyond: 413 (default {DEFAULT_MAX_UPLOAD_MB})"
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help=f"seconds one analysis may take; beyond: 504 (default {DEFAULT_TIMEOUT:g})"
    )
    parser.add_argument(
        "--keep-jobs", type=int, default=DEFAULT_KEEP_JOBS, help=f"finished jobs kept for GET /v1/jobs/ID (default {DEFAULT_KEEP_JOBS})"
    )
    parser.add_argument(
        "--keep-seconds", type=float, default=DEFAULT_KEEP_SECONDS, help=f"how long a finished job is kept (default {DEFAULT_KEEP_SECONDS:g})"
    )
    parser.add_argument("--allow-remote", action="store_true", help=f"allow a non-localhost --host without {TOKEN_ENV} (only on a trusted network)")
    parser.set_defaults(func=run)


def missing_modules() -> list[str]:
    missing = []
    for name in REQUIRED_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def run(args: argparse.Namespace) -> int:
    missing = missing_modules()
    if missing:
        print(
            f"fakelens: error: `fakelens serve` needs {', '.join(missing)}, which is not installed. Install the serve extra: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 1
    from fakelens.errors import CheckpointError

    token = token_from_env()
    settings = Settings(
        host=args.host,
        port=args.port,
        workers=args.workers or default_workers(),
        queue=args.queue,
        max_upload_mb=args.max_upload_mb,
        timeout=args.timeout,
        token=token,
        allow_remote=args.allow_remote,
        keep_jobs=args.keep_jobs,
        keep_seconds=args.keep_seconds,
        checkpoint=str(args.checkpoint) if args.checkpoint else None,
    ).check()  # before loading anything: a bad option or an unsafe binding fails at once
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise CheckpointError(f"{args.checkpoint}: file not found")

    import torch
    import uvicorn

    from fakelens.detector import Detector
    from fakelens.pipeline import face_threads
    from fakelens.serve.app import create_app

    # Each analysis running at once gets its share of the cores' face finders.
    options = {"device": args.device, "face_threads": face_threads(max(1, available_cores() // settings.workers))}

    def build() -> Detector:
        if args.checkpoint is not None:
            return Detector.from_checkpoint(args.checkpoint, **options)
        return Detector.default(**options)

    detector = build()  # in the foreground: a broken checkpoint is an error here, not a server that never gets ready
    if settings.workers > 1 and detector.device.type == "cpu":
        torch.set_num_threads(max(1, available_cores() // settings.workers))  # workers x threads <= cores
    app = create_app(detector, settings, factory=build if settings.workers > 1 else None)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    auth = "bearer token required" if token else "no authentication"
    if not token and args.allow_remote:
        log.warning("serving on %s without authentication (--allow-remote)", settings.host)
    print(
        f"fakelens serve: {detector.name} on http://{host}:{settings.port} ({auth}; "
        f"{settings.workers} worker(s), queue {settings.queue}); API docs at /docs; Ctrl+C to stop",
        flush=True,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", timeout_graceful_shutdown=15)
    return 0
