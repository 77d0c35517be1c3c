"""Form fields of `/api/upscale` -> one `UpscaleOptions`, which validates them (a mistake is 422).

The fields say what result the client wants: model (a name from `/api/models`), outscale, color_fix,
lowpass, alpha, format, quality, strip_metadata, strength. How it is computed (device, precision, backend,
tile, tile_pad) is the server's choice, so no client can ask for a whole-image run that exhausts
memory, or for another device. Empty fields count as not sent, as HTML forms send them.
"""

from __future__ import annotations

from collections.abc import Mapping

from srgan.api import SrganError, UpscaleOptions
from srgan.imaging.formats import format_names, writable_formats
from srgan.serve.errors import ServeError
from srgan.serve.models import ModelCatalog

SERVER_FIELDS = ("device", "precision", "backend", "tile", "tile_pad")
FIELD_HELP = {
    "model": "a name from GET /api/models (default: the server's default model)",
    "outscale": "final size as a factor of the input, in (0, 16] (default: the model's scale)",
    "color_fix": "none | hist | lowfreq: pull colours back to the input's",
    "lowpass": "none | ideal:R | gaussian:S | butterworth:C,N | gradient:R0,R1, radii as fractions of Nyquist",
    "alpha": "model | bicubic: how transparency is upscaled",
    "format": f"{' | '.join(format_names())} (default: the input's format if one of these, else png)",
    "quality": "JPEG / WebP quality 1-100 (default 95; WebP 100 is lossless)",
    "strip_metadata": "true: do not copy the ICC profile and EXIF",
    "strength": "0-1: GAN texture strength, for models whose /api/models entry has strength: true "
                "(their weights blended with the PSNR model they were trained from; 1 = the GAN model)",
}
_FLAGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def request_options(fields: Mapping[str, str], base: UpscaleOptions, catalog: ModelCatalog) -> UpscaleOptions:
    values: dict[str, object] = {key: value.strip() for key, value in fields.items() if value.strip()}
    for key in values:
        if key in SERVER_FIELDS:
            raise ServeError(422, f"{key} is set by the server, not per request", reason="bad_option")
    values["model"] = catalog.spec(values.get("model"))
    flag = values.get("strip_metadata")
    if isinstance(flag, str):
        values["strip_metadata"] = _FLAGS.get(flag.lower(), flag)
    try:
        return base.replace(**values)
    except SrganError as exc:
        raise ServeError(422, str(exc), reason="bad_option") from exc


def format_options() -> str:
    """The `<option>`s of the page's format list: the writable formats browsers show."""
    return "".join(f'<option value="{row.name}">{row.label or row.name}</option>'
                   for row in writable_formats() if row.browser)
