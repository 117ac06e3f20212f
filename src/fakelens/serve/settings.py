"""What a ``fakelens serve`` instance allows: limits, workers, the token, and who may connect.

Torch-free and FastAPI-free, so the CLI validates its options (and refuses an unsafe binding) before
anything heavy is imported.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from fakelens.constants import DEFAULT_MAX_UPLOAD_MB
from fakelens.errors import InvalidArgument
from fakelens.sysinfo import available_cores

#: The environment variable holding the bearer token; unset or empty means no authentication.
TOKEN_ENV = "FAKELENS_API_TOKEN"
#: The extra a user installs to get FastAPI, uvicorn and python-multipart.
INSTALL_HINT = 'pip install "fakelens[serve]"'
#: Modules ``fakelens serve`` needs (import names).
REQUIRED_MODULES = ("fastapi", "uvicorn", "python_multipart")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: Analyses waiting for a worker (uploads in progress count too), beyond those running.
DEFAULT_QUEUE = 16
#: Seconds an analysis may take: for ``POST /v1/analyze`` from the end of the upload (queue wait
#: included), for a job from the moment a worker starts it.
DEFAULT_TIMEOUT = 300.0
#: Finished jobs are kept for ``GET /v1/jobs/{id}`` this many at most, and this many seconds at most.
DEFAULT_KEEP_JOBS = 256
DEFAULT_KEEP_SECONDS = 3600.0
#: Most frames a request may ask for (the app's limit too).
MAX_FRAMES = 128


def default_workers() -> int:
    """Half the cores, 1 to 4: each analysis keeps about one core busy, and decoding and the server need some."""
    return max(1, min(4, available_cores() // 2))


def token_from_env() -> str | None:
    """The bearer token from ``$FAKELENS_API_TOKEN``, or None when unset or blank."""
    value = os.environ.get(TOKEN_ENV, "").strip()
    return value or None


def is_local_host(host: str) -> bool:
    """Whether binding to ``host`` only accepts connections from this machine (loopback addresses)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None, allow_remote: bool) -> None:
    """Refuse to listen beyond this machine without a token, unless ``allow_remote`` says it is meant."""
    if token or allow_remote or is_local_host(host):
        return
    raise InvalidArgument(
        f"refusing to serve on {host} without authentication: anyone who can reach this machine could use it. "
        f"Set {TOKEN_ENV} to a secret token (clients then send 'Authorization: Bearer <token>'), "
        "or pass --allow-remote if the network is trusted (a private network, or a proxy that authenticates)"
    )


@dataclass(frozen=True)
class Settings:
    """The limits of one server. ``token`` None means no authentication."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    queue: int = DEFAULT_QUEUE
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    timeout: float = DEFAULT_TIMEOUT
    token: str | None = None
    allow_remote: bool = False
    keep_jobs: int = DEFAULT_KEEP_JOBS
    keep_seconds: float = DEFAULT_KEEP_SECONDS
    max_frames: int = MAX_FRAMES
    #: The checkpoint served (None: the bundled model); reported by ``GET /v1/model``.
    checkpoint: str | None = None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def check(self) -> Settings:
        """These settings, or :class:`InvalidArgument` naming the first one out of range."""
        cores = available_cores()
        if not 0 <= self.port <= 65535:
            raise InvalidArgument(f"--port must be in 0..65535, got {self.port}")
        if not 1 <= self.workers <= cores:
            raise InvalidArgument(f"--workers must be in 1..{cores} (the cores this process may use), got {self.workers}")
        if self.queue < 1:
            raise InvalidArgument(f"--queue must be at least 1, got {self.queue}")
        if not self.max_upload_mb > 0:
            raise InvalidArgument(f"--max-upload-mb must be positive, got {self.max_upload_mb}")
        if not self.timeout > 0:
            raise InvalidArgument(f"--timeout must be positive (seconds), got {self.timeout}")
        if self.keep_jobs < 1 or not self.keep_seconds > 0:
            raise InvalidArgument("--keep-jobs must be at least 1 and --keep-seconds positive")
        if self.max_frames < 1:
            raise InvalidArgument(f"max_frames must be at least 1, got {self.max_frames}")
        check_binding(self.host, self.token, self.allow_remote)
        return self
