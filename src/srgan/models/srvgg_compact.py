"""SRVGGNetCompact, Real-ESRGAN's small VGG-style generator (Wang et al., "Real-ESRGAN: Training
Real-World Blind Super-Resolution with Pure Synthetic Data", ICCVW 2021; the compact models
realesr-general-x4v3 and realesr-animevideov3 of its repository), the "Compact" of OpenModelDB.

All work happens at LR: a 3x3 conv + PReLU, `convs` more 3x3 conv + PReLU pairs, and a 3x3 conv to
out_channels * scale^2 channels, rearranged by a PixelShuffle; the nearest-upsampled input is added,
so the network only learns the residual over pixel repetition. PReLUs have one slope per channel.

Module names are Real-ESRGAN's (`body.N` in order, `upsampler`), so srgan's weights are the layout
that Real-ESRGAN and spandrel-based tools read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srgan.errors import SrganError
from srgan.models.generator import (
    MAX_CHANNELS,
    MAX_DEPTH,
    MAX_SCALE,
    MAX_WIDTH,
    Generator,
    GeneratorConfig,
    chain_context,
)
from srgan.models.registry import register, register_architecture


@dataclass(frozen=True)
class SRVGGCompactConfig(GeneratorConfig):
    """`width` is Real-ESRGAN's num_feat, `convs` its num_conv (the convs between the first and the
    last). The input skip needs as many output channels as input channels."""

    scale: int = 4
    in_channels: int = 3
    out_channels: int = 3
    width: int = 64
    convs: int = 32

    def __post_init__(self) -> None:
        self.check_positive("scale", most=MAX_SCALE)
        self.check_positive("in_channels", "out_channels", most=MAX_CHANNELS)
        self.check_positive("width", most=MAX_WIDTH)
        if not 0 <= self.convs <= MAX_DEPTH:
            raise SrganError(f"convs must be between 0 and {MAX_DEPTH}, got {self.convs}")
        if self.in_channels != self.out_channels:
            raise SrganError(f"the nearest-upsampled input is added to the output: in_channels ({self.in_channels}) "
                             f"must equal out_channels ({self.out_channels})")


@register_architecture("srvgg_compact", SRVGGCompactConfig)
class SRVGGCompact(Generator):
    """LR image in [0, 1] (N, C, h, w) -> SR image (N, C, scale*h, scale*w), unclamped."""

    config: SRVGGCompactConfig

    def __init__(self, config: SRVGGCompactConfig | None = None, **overrides: Any) -> None:
        cfg = (config or SRVGGCompactConfig()).replace(**overrides)
        super().__init__(cfg)
        w = cfg.width
        layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, w, 3, padding=1), nn.PReLU(w)]
        for _ in range(cfg.convs):
            layers += [nn.Conv2d(w, w, 3, padding=1), nn.PReLU(w)]
        layers.append(nn.Conv2d(w, cfg.out_channels * cfg.scale**2, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.upsampler = nn.PixelShuffle(cfg.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsampler(self.body(x)) + F.interpolate(x, scale_factor=self.scale, mode="nearest")

    def basicsr_class(self) -> str:
        return "SRVGGNetCompact"

    def context(self) -> int:
        """convs + 2 LR pixels (34 for realesr-general-x4v3): every conv runs at LR, the shuffle only
        rearranges and the nearest skip reads each output pixel's own LR pixel, so tiles are exact."""
        return chain_context(self.body, self.upsampler)


# ---------------------------------------------------------------- presets
# Parameter counts are for the default 3-channel network and are checked by the tests.


@register
def realesr_general_x4v3() -> SRVGGCompactConfig:
    """Real-ESRGAN realesr-general-x4v3 (Compact): 64 features, 32 convs, x4; 1,213,296 parameters."""
    return SRVGGCompactConfig()


@register
def realesr_animevideov3() -> SRVGGCompactConfig:
    """Real-ESRGAN realesr-animevideov3 (Compact): 64 features, 16 convs, x4; 621,424 parameters."""
    return SRVGGCompactConfig(convs=16)
