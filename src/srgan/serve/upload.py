"""What a client sends to `/api/upscale`, read and checked before any pixel is decoded.

The body is read into memory under a hard cap (`--max-upload-mb`): no temporary file is written, and
a body that announces or reaches more is answered 413 at that point. Its image header is read once,
when it is decoded (`job.upscale_upload`): what is not an image is 415 and what has more pixels than
`--max-pixels` 422, before any pixel is decoded, so a decompression bomb never is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from srgan.errors import one_line
from srgan.serve.errors import ServeError

FILE_FIELD = "file"


@dataclass
class Upload:
    data: bytes
    filename: str
    fields: dict[str, str] = field(default_factory=dict)


UPLOAD_GRACE = 5.0
"""Seconds an upload may send at any pace before the minimum rate applies (a slow start, a stall)."""


@dataclass(frozen=True)
class BodyLimits:
    """How big and how slow a request body may be: at most `size` bytes, in at most `deadline`
    seconds, and after `UPLOAD_GRACE` seconds at `min_rate` bytes per second or more on average."""

    size: int
    deadline: float
    min_rate: float


async def read_upload(request: Request, limits: BodyLimits) -> Upload:
    """The image in form field `file` and the other form fields, from a multipart body within
    `limits` (413 too big, 408 too slow, `ClientGone` when the client hangs up)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ServeError(415, f"send multipart/form-data with the image in the field {FILE_FIELD!r}",
                         reason="bad_type")
    parser = MultiPartParser(request.headers, _paced(request, limits), max_files=1, max_fields=64)
    parser.spool_max_size = limits.size + 1  # the file part stays in memory: never a temporary file
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ServeError(400, f"malformed multipart body: {one_line(exc)}", reason="bad_request") from exc
    try:
        upload = form.get(FILE_FIELD)
        if not isinstance(upload, UploadFile):
            raise ServeError(422, f"no image in the form field {FILE_FIELD!r}", reason="bad_request")
        fields = {}
        for key, value in form.multi_items():
            if key == FILE_FIELD:
                continue
            if not isinstance(value, str):
                raise ServeError(422, f"form field {key!r} must be text, not a file", reason="bad_option")
            fields[key] = value
        return Upload(await upload.read(), upload.filename or "upload", fields)
    finally:
        await form.close()


class ClientGone(Exception):
    """The client closed the connection before its upload was in: nobody to answer (499-style)."""


async def _paced(request: Request, limits: BodyLimits) -> AsyncIterator[bytes]:
    """The body's chunks under `limits`: each chunk is awaited no longer than the body deadline
    and the minimum average rate allow, so a stalled client is answered 408 at that point."""
    start = time.monotonic()
    size = 0
    chunks = _capped(request, limits.size).__aiter__()
    while True:
        elapsed = time.monotonic() - start
        wait = min(limits.deadline, max(UPLOAD_GRACE, size / limits.min_rate)) - elapsed
        if wait <= 0:
            raise _too_slow(limits, size, elapsed)
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), wait)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise _too_slow(limits, size, time.monotonic() - start) from None
        except ClientDisconnect as exc:
            raise ClientGone from exc
        size += len(chunk)
        yield chunk


def _too_slow(limits: BodyLimits, size: int, elapsed: float) -> ServeError:
    return ServeError(408, f"upload too slow: {size:,d} bytes in {elapsed:.0f} s (the body must arrive within "
                           f"{limits.deadline:g} s, at {limits.min_rate / 1024:g} KiB/s or more after "
                           f"{UPLOAD_GRACE:g} s; --upload-timeout, --min-upload-kbps)", reason="slow_upload",
                      limit=("upload_timeout", limits.deadline))


async def _capped(request: Request, limit: int) -> AsyncIterator[bytes]:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        yield chunk


def _too_large(limit: int) -> ServeError:
    megabytes = limit / (1024 * 1024)
    return ServeError(413, f"upload larger than the limit of {megabytes:g} MB (--max-upload-mb)",
                      reason="too_large", limit=("max_upload_mb", megabytes))
