"""Receive an upload: the multipart field ``file`` streamed to a temporary file, with a limit.

The body is parsed as it arrives, after the caller's token has been checked, and written to
disk block by block; past the size limit the request is answered 413 at once, without reading
the rest. Only the part named ``file`` is kept as a file; the few short text fields an upload
may declare (:data:`TEXT_FIELDS`) are kept as text, any other field is ignored.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from api.problems import ApiProblem
from reintegration.housekeeping import new_upload_folder

FIELD = b"file"
TEXT_FIELDS = (b"consent_recorded_elsewhere",)
TEXT_FIELD_BYTES = 64  # a declaration is a word; a longer value is refused
# The multipart envelope around the file: boundaries and part headers.
ENVELOPE_BYTES = 64 << 10
_UNSAFE = re.compile(r"[^\w.\- ()\[\]+@,]+")


@dataclass
class Received:
    """A received file, alone in a temporary folder, and the name the client gave it."""

    path: Path
    file_name: str
    fields: dict[str, str] = field(default_factory=dict)
    """the declared text fields that came with the file (:data:`TEXT_FIELDS`), as sent"""

    def discard(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)


def safe_file_name(name: str | None) -> str:
    """The client's file name reduced to a plain name (no folders, no control characters).

    Examples
    --------
    >>> safe_file_name("C:\\\\Users\\\\x\\\\batch 1.csv"), safe_file_name("../../etc/passwd")
    ('batch 1.csv', 'passwd')
    >>> safe_file_name(""), safe_file_name("\\x00.csv")
    ('upload', 'upload.csv')
    """
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("", base).strip(" ").rstrip(".")[:200]
    if not base:
        return "upload"
    if base.startswith("."):
        base = "upload" + base
    return base


def too_large(limit_mb: int) -> ApiProblem:
    return ApiProblem(
        413,
        f"the file is larger than the upload limit of {limit_mb} MB; split it into smaller "
        "batches (or ingest it with the command line, which has no limit)",
    )


class _Sink:
    """Parser callbacks: keep the data of the part named ``file``, counting its bytes."""

    def __init__(self, folder: Path, limit_bytes: int, limit_mb: int) -> None:
        self.folder = folder
        self.limit_bytes = limit_bytes
        self.limit_mb = limit_mb
        self.header_field = b""
        self.header_value = b""
        self.disposition = b""
        self.out: IO[bytes] | None = None
        self.file_name: str | None = None
        self.written = 0
        self.found = False
        self.within_file = False
        self.fields: dict[bytes, bytearray] = {}
        self.text_field: bytes | None = None
        self.ended = False

    def on_part_begin(self) -> None:
        self.disposition = b""
        self.within_file = False
        self.text_field = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_field.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_field = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        part = options.get(b"name")
        if part in TEXT_FIELDS and b"filename" not in options and part not in self.fields:
            self.text_field = part
            self.fields[part] = bytearray()
            return
        if part != FIELD or self.found:
            return
        self.found = self.within_file = True
        name = options.get(b"filename", b"").decode("utf-8", errors="replace")
        self.file_name = safe_file_name(name)
        self.out = (self.folder / self.file_name).open("wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.text_field is not None:
            value = self.fields[self.text_field]
            value += data[start:end]
            if len(value) > TEXT_FIELD_BYTES:
                raise ApiProblem(
                    422, f"the field {self.text_field.decode()} is too long: send true or false"
                )
            return
        if not self.within_file or self.out is None:
            return
        self.written += end - start
        if self.written > self.limit_bytes:
            raise too_large(self.limit_mb)
        self.out.write(data[start:end])

    def on_part_end(self) -> None:
        self.within_file = False
        self.text_field = None

    def on_end(self) -> None:
        # Called only at the closing boundary: a body cut short never gets here.
        self.ended = True

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


async def receive_file(request: Request, *, limit_mb: int, folder: Path) -> Received:
    """Stream the multipart field ``file`` of ``request`` into a new folder under ``folder``.

    Raises
    ------
    ApiProblem
        413 over ``limit_mb`` megabytes; 415 when the body is not multipart/form-data;
        422 when it has no field ``file`` or is malformed; 400 when it stops before its
        closing boundary or the client leaves mid-body (the partial file is deleted).
    """
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise ApiProblem(
            415,
            "send the batch as multipart/form-data, with the file in a field named file",
        )
    limit_bytes = limit_mb << 20
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit_bytes + ENVELOPE_BYTES:
        raise too_large(limit_mb)
    target = new_upload_folder(folder)  # named after this process (see housekeeping)
    sink = _Sink(target, limit_bytes, limit_mb)
    try:
        try:
            parser = MultipartParser(
                options[b"boundary"],
                {
                    "on_part_begin": sink.on_part_begin,
                    "on_part_data": sink.on_part_data,
                    "on_part_end": sink.on_part_end,
                    "on_header_field": sink.on_header_field,
                    "on_header_value": sink.on_header_value,
                    "on_header_end": sink.on_header_end,
                    "on_headers_finished": sink.on_headers_finished,
                    "on_end": sink.on_end,
                },
            )
            async for block in request.stream():
                parser.write(block)
            parser.finalize()
        except (MultipartParseError, ValueError) as exc:
            raise ApiProblem(422, "the multipart body is malformed and cannot be read") from exc
        except ClientDisconnect:
            raise ApiProblem(
                400, "the upload was interrupted before the whole file arrived; send it again"
            ) from None
        finally:
            sink.close()
        if not sink.ended:
            # The parser takes a body that stops short of its closing boundary as if it had
            # ended there: half a file would be stored as a whole batch.
            raise ApiProblem(
                400,
                "the upload was cut short: the multipart body does not end with its closing "
                "boundary, so the file may be incomplete; nothing was stored, send it again",
            )
        if not sink.found or sink.file_name is None:
            raise ApiProblem(422, "the request has no field named file: send the batch in it")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    fields = {
        name.decode(): bytes(value).decode("utf-8", errors="replace")
        for name, value in sink.fields.items()
    }
    return Received(target / sink.file_name, sink.file_name, fields)
