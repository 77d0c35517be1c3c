"""What a client sends to `/api/upscale`, read and checked before any pixel is decoded.

The body is read into memory under a hard cap (`--max-upload-mb`): no temporary file is written, and
a body that announces or reaches more is answered 413 at that point. Its image header is read once,
when it is decoded (`job.upscale_upload`): what is not an image is 415 and what has more pixels than
`--max-pixels` 422, before any pixel is decoded, so a decompression bomb never is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from srgan.errors import one_line
from srgan.serve.errors import ServeError

FILE_FIELD = "file"


@dataclass
class Upload:
    data: bytes
    filename: str
    fields: dict[str, str] = field(default_factory=dict)


async def read_upload(request: Request, limit: int) -> Upload:
    """The image in form field `file` and the other form fields, from a multipart body of at most
    `limit` bytes."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ServeError(415, f"send multipart/form-data with the image in the field {FILE_FIELD!r}",
                         reason="bad_type")
    parser = MultiPartParser(request.headers, _capped(request, limit), max_files=1, max_fields=64)
    parser.spool_max_size = limit + 1  # the file part stays in memory: never a temporary file
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


async def discard_body(request: Request, limit: int) -> None:
    """Read and drop up to `limit` bytes of a refused request's body, so the client (still sending)
    reads the refusal instead of a reset connection."""
    try:
        async for _ in _capped(request, limit):
            pass
    except ServeError:
        pass


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
