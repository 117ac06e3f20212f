"""``fakelens serve``: an HTTP API over :class:`fakelens.detector.Detector`, for other programs.

FastAPI and uvicorn are an optional extra (``pip install "fakelens[serve]"``): nothing here imports them
until :func:`create_app` is called, so ``import fakelens.serve`` and ``fakelens --help`` work without them.

- :mod:`~fakelens.serve.settings`: :class:`Settings` (limits, workers, token) and the binding rule;
- :mod:`~fakelens.serve.uploads`: a multipart upload streamed to a private temporary folder, size-checked
  chunk by chunk;
- :mod:`~fakelens.serve.jobs`: the bounded queue and the worker threads (one detector and lock each);
- :mod:`~fakelens.serve.errors`: fakelens errors -> HTTP status and a stable JSON ``code``;
- :mod:`~fakelens.serve.app`: the FastAPI app, ``create_app(detector, settings)``.
"""

from __future__ import annotations

from fakelens.serve.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # imports FastAPI: only when asked for
        from fakelens.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'fakelens.serve' has no attribute {name!r}")
