"""Errors as the API reports them: an HTTP status and ``{"code": "...", "message": "..."}``.

The ``code`` strings are stable (clients switch on them); messages are for people and may change.
Bad input never becomes a 500: fakelens's own errors map to 4xx, and only a bug in the server is a 500.
"""

from __future__ import annotations

from fakelens.errors import CheckpointError, FakelensError, InvalidArgument, MediaError, UnsupportedMedia

#: code -> (HTTP status, when), in the order the README's table lists them.
CODES: dict[str, tuple[int, str]] = {
    "bad_request": (400, "the request is not a multipart form with one file in the field `file`"),
    "invalid_argument": (400, "a form field or option is out of range or of the wrong kind"),
    "unauthorized": (401, "the bearer token is missing or wrong"),
    "not_found": (404, "no such job (never created, or expired) or no such endpoint"),
    "method_not_allowed": (405, "the endpoint exists but not with this method"),
    "too_large": (413, "the upload is over the server's limit"),
    "unsupported_media": (415, "the file is no image or video (its content matches no format)"),
    "unreadable_media": (422, "the file looks like media but cannot be read (truncated, corrupt, empty)"),
    "analysis_failed": (422, "the media was read but could not be analysed"),
    "busy": (429, "the queue is full: retry after the seconds in `Retry-After`"),
    "internal_error": (500, "a bug in the server (logged)"),
    "model_error": (500, "the model could not be loaded or run"),
    "not_ready": (503, "no worker has a model loaded"),
    "timeout": (504, "the analysis took longer than the server's timeout"),
}


class ApiError(FakelensError):
    """An error with its HTTP status, code and optional headers (``Retry-After``, ``WWW-Authenticate``)."""

    code = "internal_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return CODES[self.code][0]


class BadRequest(ApiError):
    code = "bad_request"


class Unauthorized(ApiError):
    code = "unauthorized"

    def __init__(self, message: str = "missing or wrong bearer token: send 'Authorization: Bearer <token>'"):
        super().__init__(message, {"WWW-Authenticate": "Bearer"})


class NotFound(ApiError):
    code = "not_found"


class TooLarge(ApiError):
    code = "too_large"


class Busy(ApiError):
    code = "busy"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, {"Retry-After": str(int(retry_after))})
        self.retry_after = int(retry_after)


class NotReady(ApiError):
    code = "not_ready"


class Timeout(ApiError):
    code = "timeout"


def describe(exc: BaseException) -> tuple[int, str, str, dict[str, str]]:
    """``(status, code, message, headers)`` for any exception raised while serving a request."""
    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.message, exc.headers
    if isinstance(exc, InvalidArgument):
        code = "invalid_argument"
    elif isinstance(exc, UnsupportedMedia):
        code = "unsupported_media"
    elif isinstance(exc, MediaError):
        code = "unreadable_media"
    elif isinstance(exc, CheckpointError):
        code = "model_error"
    elif isinstance(exc, FakelensError):
        code = "analysis_failed"
    else:
        return 500, "internal_error", f"unexpected error: {type(exc).__name__}", {}
    return CODES[code][0], code, str(exc), {}


def body(code: str, message: str) -> dict:
    return {"code": code, "message": message}


def renamed(exc: FakelensError, path, name: str) -> FakelensError:
    """``exc`` with the temporary file's path replaced by the name the client uploaded (decoders quote it)."""
    if isinstance(exc, MediaError):
        reason = exc.reason.replace(str(path), name)
        return type(exc)(name, reason) if type(exc) in (MediaError, UnsupportedMedia) else exc
    return exc
