"""The one error family fakelens raises for bad input, so callers can catch it without decoder internals."""

from __future__ import annotations

from pathlib import Path


class FakelensError(Exception):
    """Base class of every error fakelens raises on purpose."""


class MediaError(FakelensError):
    """A file could not be read as an image or a video.

    ``path`` names the file and ``reason`` says what was wrong, in words a user can act on.
    """

    def __init__(self, path: str | Path | None, reason: str):
        self.path = None if path is None else str(path)
        self.reason = reason
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{reason}")


class CheckpointError(FakelensError):
    """A model checkpoint is missing, corrupt or of another kind."""


class TrainingError(FakelensError):
    """Training cannot start or continue (bad options, unusable data, run folder conflicts)."""


class InvalidArgument(FakelensError, ValueError):
    """An option or parameter a user gave is out of range or of the wrong kind; the message names it."""


class UnsupportedMedia(MediaError):
    """The file is neither an image nor a video this version reads (as opposed to a damaged one)."""
