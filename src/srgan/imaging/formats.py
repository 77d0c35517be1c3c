"""The image file formats srgan knows: which suffixes are images, which can be written, and the
Pillow format name of each. Reading, writing, output naming and folder listing all use this table."""

from __future__ import annotations

import os
from pathlib import Path

from srgan.errors import SrganError

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
"""Suffix -> Pillow format of the formats srgan writes (and keeps alpha / 16 bits / metadata in)."""
FORMAT_SUFFIX = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tiff": ".tif", "tif": ".tif"}
"""A `--format` name -> the suffix its files get."""
IMAGE_SUFFIXES = frozenset(FORMATS) | {".bmp", ".gif", ".tga", ".ppm", ".pgm", ".pbm", ".jp2", ".ico"}
"""Suffixes of the files taken for images when a folder is listed (read-only formats included)."""


def output_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The Pillow format name for `fmt` (png, jpg, webp, tiff) or else for the suffix of `path`."""
    if fmt:
        return FORMATS[format_suffix(fmt)]
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise SrganError(f"{path}: cannot tell the output format from the suffix {suffix or '(none)'!r}; "
                         "use .png, .jpg, .webp or .tiff")
    return FORMATS[suffix]


def format_suffix(fmt: str) -> str:
    """The suffix written for a format name (png, jpg, jpeg, webp, tif, tiff; a leading dot is allowed)."""
    suffix = FORMAT_SUFFIX.get(fmt.lower().lstrip("."))
    if suffix is None:
        raise SrganError(f"unknown output format {fmt!r} (choose png, jpg, webp or tiff)")
    return suffix
