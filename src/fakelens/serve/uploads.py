"""A multipart/form-data upload streamed to a temporary file, chunk by chunk, never held whole in memory.

The file part (field ``file``) goes straight to disk in the server's private folder while the body
arrives; the first chunk past the limit raises :class:`~fakelens.serve.errors.TooLarge` (and a
``Content-Length`` already over it is refused before a byte is read). Other fields are small text
values (``frames``, ``threshold``, ...) and are capped. Whatever goes wrong, the partial file is removed.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakelens.constants import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from fakelens.serve.errors import BadRequest, TooLarge

#: The form field that carries the media.
FILE_FIELD = "file"
#: Room for the multipart framing and the small fields on top of the file itself.
FORM_OVERHEAD = 64 * 1024
MAX_FIELD_BYTES = 1024
MAX_FIELDS = 16


@dataclass
class Upload:
    """An uploaded file on disk (``path``, owned by whoever holds this) and the form's other fields."""

    path: Path
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class UploadFolder:
    """The server's private temporary folder (under ``$TMPDIR``), created on start and removed on stop."""

    def __init__(self, parent: str | Path | None = None):
        self.path = Path(tempfile.mkdtemp(prefix="fakelens-serve-", dir=parent))

    def new_file(self, filename: str) -> Path:
        """A fresh path for an upload; the client's suffix is kept when it is a media one (decoders like it)."""
        suffix = Path(filename).suffix.lower()
        suffix = suffix if suffix in IMAGE_SUFFIXES | VIDEO_SUFFIXES else ".upload"
        return self.path / f"upload-{uuid.uuid4().hex}{suffix}"

    def files(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir() if p.is_file()) if self.path.is_dir() else []

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _boundary(content_type: str) -> bytes:
    from python_multipart.multipart import parse_options_header

    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadRequest(
            f"send the media as multipart/form-data with the file in the field {FILE_FIELD!r} (got Content-Type {content_type or '(none)'!r})"
        )
    return boundary


class _FormReader:
    """python-multipart callbacks: the file part to disk, other parts to small strings."""

    def __init__(self, folder: UploadFolder, max_bytes: int):
        self.folder = folder
        self.max_bytes = max_bytes
        self.fields: dict[str, str] = {}
        self.path: Path | None = None
        self.filename = ""
        self.size = 0
        self._handle: Any = None
        self._headers: dict[bytes, bytes] = {}
        self._header_field = b""
        self._header_value = b""
        self._name: str | None = None
        self._value = bytearray()
        self._is_file = False

    # python-multipart calls these with (data, start, end) for data and () for events.
    def on_part_begin(self) -> None:
        self._headers, self._name, self._value, self._is_file = {}, None, bytearray(), False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.strip().lower()] = self._header_value.strip()
        self._header_field, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            raise BadRequest("a part of the form has no Content-Disposition: form-data; name=...")
        self._name = name.decode("utf-8", "replace")
        if b"filename" in options or self._name == FILE_FIELD:
            if self._name != FILE_FIELD:
                raise BadRequest(f"files go in the field {FILE_FIELD!r}, got a file in {self._name!r}")
            if self.path is not None:
                raise BadRequest(f"one file per request (the field {FILE_FIELD!r} came twice)")
            self._is_file = True
            self.filename = Path(options.get(b"filename", b"upload").decode("utf-8", "replace")).name or "upload"
            self.path = self.folder.new_file(self.filename)
            self._handle = open(self.path, "xb")
        elif len(self.fields) >= MAX_FIELDS:
            raise BadRequest(f"too many form fields (at most {MAX_FIELDS})")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.size += end - start
            if self.size > self.max_bytes:
                raise TooLarge(f"the upload is over the {_mb(self.max_bytes)} limit")
            self._handle.write(data[start:end])
        else:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise BadRequest(f"the form field {self._name!r} is over {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if self._is_file:
            self._handle.close()
            self._handle = None
        elif self._name is not None:
            if self._name in self.fields:
                raise BadRequest(f"the form field {self._name!r} came twice")
            self.fields[self._name] = self._value.decode("utf-8", "replace").strip()

    def callbacks(self) -> dict:
        names = ("part_begin", "header_field", "header_value", "header_end", "headers_finished", "part_data", "part_end")
        return {f"on_{name}": getattr(self, f"on_{name}") for name in names}

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:g} MB"


async def receive_upload(headers: Mapping[str, str], chunks: AsyncIterator[bytes], folder: UploadFolder, max_bytes: int) -> Upload:
    """Read a multipart body from ``chunks`` into a file of ``folder``; the caller owns (and removes) it.

    Raises :class:`BadRequest` (not a form, no file, malformed) or :class:`TooLarge` (as soon as the file,
    or a declared ``Content-Length``, is over ``max_bytes``); nothing stays on disk when it does.
    """
    from python_multipart import MultipartParser
    from python_multipart.exceptions import MultipartParseError

    boundary = _boundary(headers.get("content-type", ""))
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD:
        raise TooLarge(f"the upload ({_mb(int(declared))}) is over the {_mb(max_bytes)} limit")
    reader = _FormReader(folder, max_bytes)
    parser = MultipartParser(boundary, reader.callbacks())
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > max_bytes + FORM_OVERHEAD:
                raise TooLarge(f"the upload is over the {_mb(max_bytes)} limit")
            parser.write(chunk)
        parser.finalize()
        if reader.path is None:
            raise BadRequest(f"no file: send the media in the form field {FILE_FIELD!r}")
        if reader._handle is not None:
            raise BadRequest("the form ended in the middle of the file")
    except MultipartParseError as exc:
        reader.discard()
        raise BadRequest(f"malformed multipart body: {exc}") from None
    except BaseException:
        reader.discard()
        raise
    return Upload(reader.path, reader.filename, reader.size, reader.fields)
