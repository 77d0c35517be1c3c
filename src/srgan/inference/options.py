"""`UpscaleOptions`: every choice of an upscale, validated once when it is made.

The CLI, the web server and Python callers all build one of these (from arguments, form fields or
keywords); everything downstream trusts it. Text forms are accepted where users type them
(`tile="256"`, `lowpass="gaussian:0.5"`) and normalised here, so a mistake is one `SrganError`
before any file is read.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from srgan import hardware
from srgan.errors import SrganError
from srgan.imaging.formats import writable_formats
from srgan.inference.backends import backend_names
from srgan.inference.colorfix import METHODS as COLOR_FIXES
from srgan.inference.lowpass import LowPass, parse_lowpass
from srgan.inference.tiling import MIN_TILE
from srgan.models.interpolation import strength_partner
from srgan.models.weights import DEFAULT_MODEL

ALPHA_MODES = ("model", "bicubic")
PRECISIONS = ("auto", *hardware.PRECISIONS)
MAX_OUTSCALE = 16


@dataclass(frozen=True)
class UpscaleOptions:
    """How to upscale and write one image.

    model: shipped weights name, weights file, `.onnx` file (ONNX Runtime or OpenVINO), or a loaded generator;
        None is the default model.
    outscale: final size as a factor of the input (None: the model's scale), in (0, 16].
    tile: LR tile side in pixels, "auto" (fits memory) or None / 0 (whole image).
    tile_pad: LR context around each tile (None: the model's receptive field, exact result).
    device: auto | cpu | cuda | cuda:N.  precision: auto | fp32 | bf16 | fp16.
    backend: auto | torch | onnxruntime | openvino (auto: torch, or for an `.onnx` file OpenVINO where
        installed, else ONNX Runtime).
    color_fix: none | hist | lowfreq.  lowpass: a `srgan.inference.lowpass` spec or none.
    alpha: model | bicubic (how transparency is upscaled).
    format: output format png | jpg | webp | tiff (None: the input's).  quality: JPEG/WebP 1-100.
    strip_metadata: do not copy ICC profile and EXIF into the output.
    strength: 0..1 for a shipped GAN model with a PSNR partner (`srgan.models.interpolation`): the
        blend of the two networks' weights, 1 the GAN model, 0 its PSNR model; None: the model as it is.
    """

    model: Any = None
    outscale: float | None = None
    tile: int | str | None = "auto"
    tile_pad: int | None = None
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    color_fix: str = "none"
    lowpass: LowPass | str | None = None
    alpha: str = "model"
    format: str | None = None
    quality: int | None = None
    strip_metadata: bool = False
    strength: float | None = None

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)
        set_("tile", parse_tile(self.tile))
        set_("lowpass", parse_lowpass(self.lowpass))
        if self.outscale is not None:
            set_("outscale", number("outscale", self.outscale))
            if not 0 < self.outscale <= MAX_OUTSCALE:
                raise SrganError(f"outscale must be between 0 and {MAX_OUTSCALE}, got {self.outscale:g}")
        if self.tile_pad is not None:
            set_("tile_pad", whole("tile_pad", self.tile_pad, minimum=0))
        if self.quality is not None:
            set_("quality", whole("quality", self.quality, minimum=1))
            if self.quality > 100:
                raise SrganError(f"quality must be between 1 and 100, got {self.quality}")
        for name, allowed in (("precision", PRECISIONS), ("backend", backend_names()), ("color_fix", COLOR_FIXES),
                              ("alpha", ALPHA_MODES)):
            set_(name, _choice(name, getattr(self, name), allowed))
        if self.format is not None:
            names = {name: row.name for row in writable_formats() for name in (row.name, *row.aliases)}
            set_("format", names[_choice("format", self.format, tuple(names))])
        if not isinstance(self.device, str):
            set_("device", str(self.device))
        if not isinstance(self.strip_metadata, bool):
            raise SrganError(f"strip_metadata must be true or false, got {self.strip_metadata!r}")
        if self.strength is not None:
            set_("strength", number("strength", self.strength))
            if not 0 <= self.strength <= 1:
                raise SrganError(f"strength must be between 0 and 1, got {self.strength:g}")
            strength_partner(DEFAULT_MODEL if self.model is None else self.model)  # refused here if it has none

    def replace(self, **changes: Any) -> UpscaleOptions:
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise SrganError(f"unknown upscale option {unknown[0]!r} (known: {', '.join(field_names())})")
        return dataclasses.replace(self, **changes)


def option_choices(name: str) -> tuple[str, ...]:
    """The values an option with a fixed set of choices takes, from the one table of each choice (for
    the CLI's `choices=`): precision, backend, color_fix, alpha or format."""
    tables = {"precision": lambda: PRECISIONS, "backend": backend_names, "color_fix": lambda: tuple(COLOR_FIXES),
              "alpha": lambda: ALPHA_MODES, "format": lambda: tuple(row.name for row in writable_formats())}
    return tables[name]()


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(UpscaleOptions)]


def parse_tile(tile: int | str | None) -> int | str | None:
    """'auto', None / 'none' / 0 (whole image) or at least `MIN_TILE` pixels (also as text): the one
    check of a tile, so the tiling code trusts what it is given."""
    if tile is None or tile == "auto":
        return tile
    if isinstance(tile, str):
        text = tile.strip().lower()
        if text in ("auto", "none"):
            return None if text == "none" else "auto"
        if not text.isdigit():
            raise SrganError(f"tile must be auto or a number of pixels, got {tile!r}")
        tile = int(text)
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 0:
        raise SrganError(f"tile must be auto or a number of pixels, got {tile!r}")
    if 0 < tile < MIN_TILE:
        raise SrganError(f"tile must be auto, 0 (the whole image) or at least {MIN_TILE} pixels, got {tile}")
    return tile or None


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in allowed:
        raise SrganError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return text


def number(name: str, value: Any) -> float:
    """`value` as a finite float (also from text), else an `SrganError` naming `name`."""
    if isinstance(value, bool):
        raise SrganError(f"{name} must be a number, got {value!r}")
    try:
        found = float(value)
    except (TypeError, ValueError) as exc:
        raise SrganError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(found):
        raise SrganError(f"{name} must be a finite number, got {value!r}")
    return found


def whole(name: str, value: Any, *, minimum: int) -> int:
    """`value` as an int of at least `minimum` (also from text such as \"8\" or 8.0)."""
    found = number(name, value)
    if found != int(found) or found < minimum:
        raise SrganError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(found)
