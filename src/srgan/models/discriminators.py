"""`build_discriminator(kind, **options)`: the discriminator a training config names.

kind "vgg": `VGGStyleDiscriminator(**options)` (in_channels, negative_slope, width, dense, pool_size);
kind "fft": `FFTDiscriminator(**options)` (in_channels, grid, hidden, negative_slope, eps);
kind "both": `CombinedDiscriminator`, where `in_channels` and `negative_slope` go to both parts,
`vgg: {...}` and `fft: {...}` to one part each, plus `spatial_weight` / `spectral_weight`.
Unknown options raise `SrganError` naming the key, so a typo in YAML is not silently ignored.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from srgan.errors import SrganError
from srgan.models.discriminator import VGGStyleDiscriminator
from srgan.models.spectral_discriminator import CombinedDiscriminator, FFTDiscriminator

KINDS = ("vgg", "fft", "both")
_SHARED = ("in_channels", "negative_slope")


def _make(cls: type[nn.Module], options: dict[str, Any], where: str) -> nn.Module:
    known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SrganError(f"unknown discriminator option {where}{unknown[0]!r} (known: {', '.join(known)})")
    try:
        return cls(**options)
    except TypeError as exc:
        raise SrganError(f"bad discriminator options {where}{options}: {exc}") from None


def build_discriminator(kind: str, **options: Any) -> nn.Module:
    """A fresh discriminator of `kind` (vgg | fft | both); every one returns (N, 1) raw logits."""
    if kind == "vgg":
        return _make(VGGStyleDiscriminator, options, "")
    if kind == "fft":
        return _make(FFTDiscriminator, options, "")
    if kind != "both":
        raise SrganError(f"unknown discriminator kind {kind!r} (known: {', '.join(KINDS)})")
    options = dict(options)
    shared = {k: options.pop(k) for k in _SHARED if k in options}
    vgg_opts, fft_opts = options.pop("vgg", None) or {}, options.pop("fft", None) or {}
    if not isinstance(vgg_opts, dict) or not isinstance(fft_opts, dict):
        raise SrganError("discriminator options vgg and fft must be mappings of options")
    weights = {k: options.pop(k) for k in ("spatial_weight", "spectral_weight") if k in options}
    if options:
        known = [*_SHARED, "vgg", "fft", "spatial_weight", "spectral_weight"]
        raise SrganError(f"unknown discriminator option {min(options)!r} (known: {', '.join(known)})")
    spatial = _make(VGGStyleDiscriminator, {**shared, **vgg_opts}, "vgg.")
    spectral = _make(FFTDiscriminator, {**shared, **fft_opts}, "fft.")
    return CombinedDiscriminator(spatial, spectral, **weights)
