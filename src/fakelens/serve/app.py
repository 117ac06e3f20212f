"""The FastAPI app: ``create_app(detector, settings)``; ``fakelens serve`` runs it under uvicorn.

Endpoints (all JSON; errors are ``{"code", "message"}`` with the statuses of :mod:`fakelens.serve.errors`):

- ``POST /v1/analyze``: a multipart upload (``file``, optional ``frames``, ``threshold``, ``aggregate``,
  ``explain``, ``heatmaps``) -> ``Prediction.to_dict()`` (plus ``heatmaps`` when asked), once analysed;
- ``POST /v1/jobs``: the same upload -> 202, ``{"id", "status", ...}`` and ``Location: /v1/jobs/{id}``;
  ``GET /v1/jobs/{id}``: ``queued`` / ``running`` / ``done`` (with ``result``) / ``error`` (with ``error``);
- ``GET /v1/model``: name, threshold, sha256, model card; ``GET /healthz`` (the process answers),
  ``GET /readyz`` (every worker has its model); OpenAPI docs at ``/docs``.

With a token, every ``/v1`` endpoint needs ``Authorization: Bearer <token>``; ``/healthz``, ``/readyz``
and the docs stay open (they say nothing about what was analysed).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from fakelens import __version__
from fakelens.constants import AGGREGATIONS, CAM_METHODS
from fakelens.errors import FakelensError
from fakelens.serve.errors import CODES, NotFound, Timeout, Unauthorized, describe, renamed
from fakelens.serve.jobs import HEATMAP_MODES, AnalyzeOptions, Job, JobPool
from fakelens.serve.settings import Settings
from fakelens.serve.uploads import FILE_FIELD, UploadFolder, receive_upload

log = logging.getLogger(__name__)

MODEL_CARD = Path(__file__).resolve().parents[1] / "MODEL_CARD.md"


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers or None)


def _form_schema(max_frames: int) -> dict:
    """The multipart request body, for the OpenAPI docs (the handlers parse the stream themselves)."""
    properties = {
        FILE_FIELD: {"type": "string", "format": "binary", "description": "the image or video"},
        "frames": {"type": "integer", "minimum": 1, "maximum": max_frames, "description": "frames sampled from a video (default: the server's, 32)"},
        "threshold": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "P(fake) at or above which the verdict is FAKE (default: the model's)",
        },
        "aggregate": {"type": "string", "enum": list(AGGREGATIONS), "description": "frame scores -> track score"},
        "explain": {"type": "string", "enum": list(CAM_METHODS), "description": "CAM method for heatmaps"},
        "heatmaps": {
            "type": "string",
            "enum": list(HEATMAP_MODES),
            "default": "none",
            "description": "base64: add a `heatmaps` list of PNGs (implies explain=gradcam if not given)",
        },
    }
    schema = {"type": "object", "required": [FILE_FIELD], "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def _error_responses(*codes: str) -> dict:
    out: dict = {}
    for code in codes:
        status, when = CODES[code]
        entry = out.setdefault(status, {"description": "", "content": {"application/json": {"example": {"code": code, "message": when}}}})
        entry["description"] = (entry["description"] + "; " if entry["description"] else "") + f"`{code}`: {when}"
    return out


def model_description(detector, settings: Settings) -> dict:
    """What ``GET /v1/model`` answers (the checkpoint's sha256 is computed once, here)."""
    from fakelens.checkpoint import sha256_file
    from fakelens.detector import DEFAULT_MODEL

    path = Path(detector.info.get("path", "")) if detector.info.get("path") else None
    bundled = path is not None and path.resolve() == DEFAULT_MODEL.resolve()
    card = None
    card_file = MODEL_CARD if bundled else (path.parent / "MODEL_CARD.md" if path is not None else None)
    if card_file is not None and card_file.is_file():
        card = card_file.read_text(encoding="utf-8")
    return {
        "name": detector.name,
        "threshold": round(float(detector.threshold), 5),
        "sha256": sha256_file(path) if path is not None and path.is_file() else None,
        "checkpoint": "bundled" if bundled else (path.name if path is not None else None),
        "backend": detector.classify.name,
        "device": str(detector.device),
        "defaults": {"frames": detector.num_frames, "aggregate": detector.aggregate},
        "explain_methods": list(CAM_METHODS),
        "limits": {
            "max_upload_mb": settings.max_upload_mb,
            "max_frames": settings.max_frames,
            "timeout_s": settings.timeout,
            "workers": settings.workers,
            "queue": settings.queue,
        },
        "fakelens": __version__,
        "model_card": card,
    }


def create_app(detector, settings: Settings | None = None, factory: Callable[[], object] | None = None) -> FastAPI:
    """The API over ``detector`` with ``settings``' limits.

    Worker 0 uses ``detector``; each further worker gets its own from ``factory()`` (loaded in its thread
    at start-up, so ``/readyz`` says when all are in). Without a factory the workers share ``detector``
    under one lock: correct, but one analysis at a time. The pool and the upload folder live from the
    app's start-up to its shut-down (uvicorn's lifespan, or ``with TestClient(app)``).
    """
    settings = settings or Settings()
    shared_lock = threading.Lock()

    def load(index: int):
        if index == 0 or factory is None:
            return detector, shared_lock
        return factory(), threading.Lock()

    model_info = model_description(detector, settings)
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        folder = UploadFolder()
        pool = JobPool(
            load,
            workers=settings.workers,
            queue=settings.queue,
            timeout=settings.timeout,
            keep_jobs=settings.keep_jobs,
            keep_seconds=settings.keep_seconds,
        )
        state.update(folder=folder, pool=pool)
        app.state.pool, app.state.uploads = pool, folder
        pool.start()
        try:
            yield
        finally:
            await run_in_threadpool(pool.stop)
            folder.remove()

    app = FastAPI(
        title="fakelens",
        version=__version__,
        description="Deepfake detection for face images and videos: MTCNN faces, a MobileNetV2 score per face, "
        "Grad-CAM heatmaps. Every `/v1` endpoint needs `Authorization: Bearer <token>` when the server has a token.",
        lifespan=lifespan,
    )

    # ------------------------------------------------------------------ errors as JSON

    @app.exception_handler(FakelensError)
    async def _fakelens_error(request: Request, exc: FakelensError):
        status, code, message, headers = describe(exc)
        return _error(status, code, message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return _error(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return _error(400, "invalid_argument", "; ".join(str(e.get("msg", e)) for e in exc.errors()) or "invalid request")

    @app.exception_handler(ClientDisconnect)
    async def _disconnect(request: Request, exc: ClientDisconnect):
        return _error(400, "bad_request", "the client closed the connection during the upload")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal_error", f"unexpected error: {type(exc).__name__}")

    # ------------------------------------------------------------------ auth

    def require_token(request: Request) -> None:
        if settings.token is None:
            return
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), settings.token.encode()):
            raise Unauthorized()

    # ------------------------------------------------------------------ open endpoints

    @app.get("/healthz", tags=["health"], summary="The process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Every worker has its model loaded",
        responses={503: {"description": "still loading, or a worker failed to load"}},
    )
    async def readyz():
        pool: JobPool = state["pool"]
        stats = pool.stats()
        if pool.ready:
            return {"status": "ready", "model": detector.name, **stats}
        status = "failed" if pool.load_errors else "loading"
        return JSONResponse({"status": status, "errors": pool.load_errors, **stats}, status_code=503)

    # ------------------------------------------------------------------ the API

    api = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])

    async def accept(request: Request, visible: bool) -> Job:
        """Reserve a queue place (429 before a byte is read), stream the upload, check it, queue it."""
        pool: JobPool = state["pool"]
        with pool.reserve() as slot:
            upload = await receive_upload(request.headers, request.stream(), state["folder"], settings.max_upload_bytes)
            try:
                options = AnalyzeOptions.from_form(upload.fields, settings.max_frames)
                await run_in_threadpool(_check_media, upload.path, upload.filename)
                return pool.submit(Job(upload.path, upload.filename, options, visible=visible), slot)
            except BaseException:
                upload.remove()
                raise

    analyze_errors = _error_responses(
        "bad_request", "invalid_argument", "unauthorized", "too_large", "unsupported_media", "unreadable_media", "busy", "timeout"
    )

    @api.post(
        "/analyze",
        tags=["analysis"],
        summary="Analyse an image or video and wait for the verdict",
        openapi_extra=_form_schema(settings.max_frames),
        responses=analyze_errors,
    )
    async def analyze(request: Request):
        pool: JobPool = state["pool"]
        job = await accept(request, visible=False)
        loop = asyncio.get_running_loop()
        finished: asyncio.Future = loop.create_future()

        def settle() -> None:
            if not finished.done():
                finished.set_result(None)

        def wake(_job: Job) -> None:
            loop.call_soon_threadsafe(settle)

        pool.on_done(job, wake)
        while not finished.done():
            remaining = job.deadline - time.monotonic()
            if remaining <= 0:
                pool.cancel(job, "timeout")
                break
            await asyncio.wait({finished}, timeout=min(1.0, remaining))
            if not finished.done() and await request.is_disconnected():
                pool.cancel(job, "the client went away")  # frees the worker at its next stage
                return Response(status_code=499)
        if not job.done:  # timed out while running: the worker stops at its next stage and removes the file
            status, code, message, headers = describe(Timeout(f"the analysis took longer than the server's timeout of {settings.timeout:g} s"))
            return _error(status, code, message, headers)
        if job.error is not None:
            status, code, message, headers = job.error
            return _error(status, code, message, headers)
        return JSONResponse(job.result)

    @api.post(
        "/jobs",
        tags=["jobs"],
        status_code=202,
        summary="Queue an analysis; poll GET /v1/jobs/{id}",
        openapi_extra=_form_schema(settings.max_frames),
        responses={
            202: {"description": "queued; `Location` names the job"},
            **_error_responses("bad_request", "invalid_argument", "unauthorized", "too_large", "unsupported_media", "unreadable_media", "busy"),
        },
    )
    async def submit_job(request: Request):
        pool: JobPool = state["pool"]
        job = await accept(request, visible=True)
        found = pool.get(job.id)
        position = found[1] if found else None
        return JSONResponse(job.to_dict(position), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @api.get(
        "/jobs/{job_id}", tags=["jobs"], summary="A job's status, and its result once done", responses=_error_responses("unauthorized", "not_found")
    )
    async def get_job(job_id: str):
        found = state["pool"].get(job_id)
        if found is None:
            raise NotFound(f"no job {job_id!r} (never created, or finished more than {settings.keep_seconds:g} s / {settings.keep_jobs} jobs ago)")
        job, position = found
        return job.to_dict(position)

    @api.get("/model", tags=["model"], summary="The model served: name, threshold, sha256, model card", responses=_error_responses("unauthorized"))
    async def model():
        return model_info

    app.include_router(api)
    return app


def _check_media(path: Path, name: str) -> None:
    """415 / 422 before queueing: what the content is (:func:`fakelens.media.media_kind`), named as uploaded."""
    from fakelens.media import media_kind

    try:
        media_kind(path)
    except FakelensError as exc:
        raise renamed(exc, path, name) from None
