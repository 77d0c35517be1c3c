"""The image file formats srgan knows, in one table: which suffixes are images, which can be written,
with what (alpha, gray, bit depths, quality) and under which names. Reading, writing, output naming,
folder listing, the CLI's `--format`, `UpscaleOptions`, the web form and the web page's format list
all derive from it, so a new writable format is one `register_format` call."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srgan.errors import SrganError


def _no_options(quality: int | None) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ImageFormat:
    """One row of the table.

    name: what `--format` and the web form take (lower case); aliases: other names for it.
    pillow: Pillow's format name; suffixes: file suffixes, the first is the one written.
    writable: srgan writes it (else it is only read); media_type: the HTTP answer's type.
    label: its name in the web page's list; browser: browsers show it, so the page offers it.
    alpha: it stores transparency; gray: it has gray modes (else gray is written as RGB).
    bit_depths: bits per channel it stores; 16-bit colour goes beyond Pillow (pypng / tifffile, see
        `srgan.imaging.io`), so 16 is for PNG and TIFF.
    quality: it takes `quality` (1-100); save_options: Pillow's `save` keywords for a quality (None:
        the default).
    """

    name: str
    pillow: str
    suffixes: tuple[str, ...]
    writable: bool = True
    media_type: str = "application/octet-stream"
    label: str = ""
    browser: bool = False
    alpha: bool = True
    gray: bool = True
    bit_depths: tuple[int, ...] = (8,)
    quality: bool = False
    save_options: Callable[[int | None], dict[str, Any]] = _no_options
    aliases: tuple[str, ...] = field(default=())


TABLE: dict[str, ImageFormat] = {}
"""Format name -> its row, in the order registered."""
FORMATS: dict[str, str] = {}
"""Suffix -> Pillow format of the formats srgan writes (kept in step with `TABLE` by `register_format`)."""
FORMAT_SUFFIX: dict[str, str] = {}
"""A writable format's name or alias -> the suffix its files get."""
IMAGE_SUFFIXES: set[str] = set()
"""Suffixes of the files taken for images when a folder is listed (read-only formats included)."""


def register_format(row: ImageFormat) -> ImageFormat:
    """Add `row` to the table (and the indexes derived from it)."""
    if row.name in TABLE:
        raise SrganError(f"image format {row.name!r} is registered twice")
    TABLE[row.name] = row
    IMAGE_SUFFIXES.update(row.suffixes)
    if row.writable:
        FORMATS.update(dict.fromkeys(row.suffixes, row.pillow))
        FORMAT_SUFFIX.update(dict.fromkeys((row.name, *row.aliases, *(s.lstrip(".") for s in row.suffixes)),
                                           row.suffixes[0]))
    return row


def writable_formats() -> list[ImageFormat]:
    return [row for row in TABLE.values() if row.writable]


def format_names() -> list[str]:
    """The names `--format` takes (aliases not included)."""
    return [row.name for row in writable_formats()]


def find_format(fmt: str) -> ImageFormat:
    """The writable format named `fmt` (a name, an alias or a suffix; a leading dot is allowed)."""
    suffix = FORMAT_SUFFIX.get(fmt.lower().lstrip("."))
    if suffix is None:
        raise SrganError(f"unknown output format {fmt!r} (choose {_choices()})")
    return format_of_suffix(suffix)


def format_of_suffix(suffix: str) -> ImageFormat:
    return next(row for row in writable_formats() if suffix.lower() in row.suffixes)


def format_written_for(pillow: str | None) -> ImageFormat | None:
    """The writable format of an input Pillow read as `pillow` (None when srgan cannot write it)."""
    return next((row for row in writable_formats() if row.pillow == pillow), None)


def output_format(path: str | os.PathLike, fmt: str | None = None) -> ImageFormat:
    """The format named `fmt`, or else the one of the suffix of `path`."""
    if fmt:
        return find_format(fmt)
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise SrganError(f"{path}: cannot tell the output format from the suffix {suffix or '(none)'!r}; "
                         f"use {', '.join(row.suffixes[0] for row in writable_formats())}")
    return format_of_suffix(suffix)


def format_suffix(fmt: str) -> str:
    """The suffix written for a format name (png, jpg, jpeg, webp, tif, tiff; a leading dot is allowed)."""
    return find_format(fmt).suffixes[0]


def _choices() -> str:
    names = format_names()
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


def _jpeg(quality: int | None) -> dict[str, Any]:
    quality = quality or 95
    return {"quality": quality, "subsampling": 0 if quality >= 90 else 2}


def _webp(quality: int | None) -> dict[str, Any]:
    return {"quality": quality or 95, "lossless": quality == 100}


register_format(ImageFormat("png", "PNG", (".png",), media_type="image/png", label="PNG", browser=True,
                            bit_depths=(8, 16), save_options=lambda quality: {"compress_level": 6}))
register_format(ImageFormat("jpg", "JPEG", (".jpg", ".jpeg"), media_type="image/jpeg", label="JPEG", browser=True,
                            alpha=False, quality=True, save_options=_jpeg, aliases=("jpeg",)))
register_format(ImageFormat("webp", "WEBP", (".webp",), media_type="image/webp", label="WebP", browser=True,
                            gray=False, quality=True, save_options=_webp))
register_format(ImageFormat("tiff", "TIFF", (".tif", ".tiff"), media_type="image/tiff", label="TIFF",
                            bit_depths=(8, 16), save_options=lambda quality: {"compression": "tiff_deflate"},
                            aliases=("tif",)))
for _name, _pillow, _suffixes in (("bmp", "BMP", (".bmp",)), ("gif", "GIF", (".gif",)), ("tga", "TGA", (".tga",)),
                                  ("ppm", "PPM", (".ppm", ".pgm", ".pbm")), ("jp2", "JPEG2000", (".jp2",)),
                                  ("ico", "ICO", (".ico",))):
    register_format(ImageFormat(_name, _pillow, _suffixes, writable=False))
