"""The work of one `/api/upscale` request, on an inference thread: the upload's bytes -> image (the
project's one reader) -> `srgan.api.upscale` -> the bytes of the output file (the one writer).
Everything stays in memory."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from srgan import api
from srgan.api import ModelCache, SrganError, UpscaleOptions, output_size
from srgan.imaging.formats import find_format, format_written_for
from srgan.imaging.io import NotAnImage, TooManyPixels, decode_image, encode_image
from srgan.serve.errors import ServeError


@dataclass
class Result:
    body: bytes
    media_type: str
    filename: str
    scale: float
    width: int
    height: int
    seconds: float


def upscale_upload(data: bytes, filename: str, options: UpscaleOptions, cache: ModelCache,
                   max_pixels: int) -> Result:
    """The output file for an upload. Its header is read once, against `max_pixels` (--max-pixels), before
    any pixel is decoded: 415 when it is no image, 422 over the limit; 422 too when it cannot be decoded
    or upscaled as asked, or when the output would have more than `max_pixels` x scale^2 pixels."""
    start = time.perf_counter()
    try:
        image = decode_image(data, filename, limit=max_pixels)
    except NotAnImage as exc:
        raise ServeError(415, "not an image that can be read (PNG, JPEG, WebP, TIFF, BMP, GIF, ...)",
                         reason="bad_type") from exc
    except TooManyPixels as exc:
        width, height = exc.size or (0, 0)
        message = (f"{width}x{height} is {width * height:,d} pixels, more than the limit of {max_pixels:,d} "
                   "(--max-pixels)" if exc.size else str(exc).removeprefix(f"{filename}: "))
        raise ServeError(422, message, reason="too_many_pixels", limit=("max_pixels", max_pixels)) from exc
    except SrganError as exc:
        raise ServeError(422, str(exc), reason="corrupt") from exc
    try:
        runner = api.get_runner(options, cache)
        scale = options.outscale if options.outscale is not None else runner.scale
        width, height = output_size(image.width, image.height, runner.scale, options.outscale)
        most = max_pixels * runner.scale ** 2
        if width * height > most:
            raise ServeError(422, f"the output would be {width}x{height}, more than {most:,d} pixels (--max-pixels "
                                  f"x {runner.scale}^2): choose a smaller outscale", reason="too_many_pixels",
                             limit=("max_pixels", max_pixels))
        result = api.upscale(image, options=options, runner=runner)
        fmt = find_format(options.format) if options.format else format_written_for(image.format) or find_format("png")
        body = encode_image(result, fmt.name, quality=options.quality, strip_metadata=options.strip_metadata)
    except SrganError as exc:
        raise ServeError(422, str(exc), reason="unprocessable") from exc
    name = f"{Path(filename).stem or 'upload'}_x{scale:g}{fmt.suffixes[0]}"
    return Result(body, fmt.media_type, name, scale, result.width, result.height, time.perf_counter() - start)


def content_disposition(filename: str) -> str:
    """An attachment header that survives any file name (RFC 6266: an ASCII fallback, then UTF-8)."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
