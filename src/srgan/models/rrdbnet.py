"""RRDBNet, the generator of ESRGAN (Wang et al., "ESRGAN: Enhanced Super-Resolution Generative
Adversarial Networks", ECCV Workshops 2018), and of Real-ESRGAN (Wang et al., ICCV Workshops 2021).

ESRGAN keeps SRGAN's plan (trunk at LR, upsampling, two convs at HR) and changes the trunk: batch
norm is removed and each residual block becomes a Residual-in-Residual Dense Block (RRDB), three
dense blocks of five 3x3 convs in which every conv sees the block input and all earlier outputs
(`growth` channels each), LeakyReLU(0.2) after the first four; each dense block's output and each
RRDB's output is scaled by 0.2 before its skip. Upsampling is nearest x2 + conv + LeakyReLU per
stage, then conv_hr + LeakyReLU and conv_last at HR. Real-ESRGAN's x2 and x1 models run the same
x4 network on a pixel-unshuffled input (x2: 2x2 blocks -> 12 channels; x1: 4x4 -> 48).

Module names are BasicSR's (`conv_first`, `body.N.rdb1.conv1`, `conv_body`, `conv_up1`, `conv_hr`,
`conv_last`), so srgan's weights are the layout that BasicSR, Real-ESRGAN and spandrel-based tools
read; `srgan.models.foreign` maps the older ESRGAN and BSRGAN layouts onto it.
"""

from __future__ import annotations

import math
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
    scaled_msra_init,
)
from srgan.models.registry import register, register_architecture

RESIDUAL_SCALE = 0.2
"""ESRGAN's residual scaling beta (Wang et al. 2018, Sec. 3.1 and Fig. 4)."""
NEGATIVE_SLOPE = 0.2
EXACT_CONTEXT_LIMIT = 64
"""Largest receptive field (LR pixels) carried around every tile for an exact result. With it an
auto-sized CPU tile of ~256 pixels costs at most (1 + 2 * 64 / 256)^2 = 2.25x the pixels; a
23-block RRDBNet reaches 349 pixels, which would cost ~14x, so its tiles are blended instead."""


@dataclass(frozen=True)
class RRDBNetConfig(GeneratorConfig):
    """`width` is BasicSR's num_feat, `blocks` num_block, `growth` num_grow_ch. `pixel_unshuffle`
    (1, 2 or 4) folds f x f input blocks into channels first (Real-ESRGAN x2: 2, x1: 4); the network
    then upsamples by scale * pixel_unshuffle."""

    scale: int = 4
    in_channels: int = 3
    out_channels: int = 3
    width: int = 64
    blocks: int = 23
    growth: int = 32
    pixel_unshuffle: int = 1

    def __post_init__(self) -> None:
        self.check_positive("scale", most=MAX_SCALE)
        self.check_positive("in_channels", "out_channels", most=MAX_CHANNELS)
        self.check_positive("width", "growth", most=MAX_WIDTH)
        self.check_positive("blocks", most=MAX_DEPTH // 2)  # 15 convs a block: the slowest to build
        if self.pixel_unshuffle not in (1, 2, 4):
            raise SrganError(f"pixel_unshuffle must be 1, 2 or 4, got {self.pixel_unshuffle}")
        stages = math.log2(self.scale * self.pixel_unshuffle)
        if not stages.is_integer():
            raise SrganError(f"scale x pixel_unshuffle must be a power of two (x2 stages), got "
                             f"{self.scale} x {self.pixel_unshuffle}")

    @property
    def stages(self) -> int:
        return int(math.log2(self.scale * self.pixel_unshuffle))


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each fed the block input and every earlier output (dense connections)."""

    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.conv1 = _conv(width, growth)
        self.conv2 = _conv(width + growth, growth)
        self.conv3 = _conv(width + 2 * growth, growth)
        self.conv4 = _conv(width + 3 * growth, growth)
        self.conv5 = _conv(width + 4 * growth, width)
        self.lrelu = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)
        scaled_msra_init([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x + RESIDUAL_SCALE * x5


class RRDB(nn.Module):
    """Residual in residual: three dense blocks and a scaled skip around them."""

    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(width, growth)
        self.rdb2 = ResidualDenseBlock(width, growth)
        self.rdb3 = ResidualDenseBlock(width, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + RESIDUAL_SCALE * self.rdb3(self.rdb2(self.rdb1(x)))


@register_architecture("rrdbnet", RRDBNetConfig)
class RRDBNet(Generator):
    """LR image in [0, 1] (N, C, h, w) -> SR image (N, C, scale*h, scale*w), unclamped."""

    config: RRDBNetConfig

    def __init__(self, config: RRDBNetConfig | None = None, **overrides: Any) -> None:
        cfg = (config or RRDBNetConfig()).replace(**overrides)
        super().__init__(cfg)
        w = cfg.width
        self.conv_first = _conv(cfg.in_channels * cfg.pixel_unshuffle**2, w)
        self.body = nn.Sequential(*(RRDB(w, cfg.growth) for _ in range(cfg.blocks)))
        self.conv_body = _conv(w, w)
        for i in range(1, cfg.stages + 1):
            self.add_module(f"conv_up{i}", _conv(w, w))
        self.conv_hr = _conv(w, w)
        self.conv_last = _conv(w, cfg.out_channels)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.lrelu = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)

    def _up_convs(self) -> list[nn.Conv2d]:
        return [getattr(self, f"conv_up{i}") for i in range(1, self.config.stages + 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.config.pixel_unshuffle
        height, width = x.shape[-2:]
        if f > 1:  # Real-ESRGAN pads to a multiple of f by reflection and crops the output
            x = F.pixel_unshuffle(F.pad(x, (0, (-width) % f, 0, (-height) % f), mode="reflect"), f)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in self._up_convs():
            feat = self.lrelu(conv(self.upsample(feat)))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        if f > 1:
            out = out[..., :height * self.scale, :width * self.scale]
        return out

    def receptive_field(self) -> int:
        """How far one output pixel looks, in network-input pixels: 5 per dense block (its longest
        path is its five convs), so 15 per RRDB, + 1 (conv_first) + 1 (conv_body), + 2 for the
        upsampling and the two HR convs at x4 (seen from the LR grid): 349 for 23 blocks. The
        skips add no reach. With pixel unshuffle this is in unshuffled pixels (f input pixels each)."""
        stages: list[nn.Module] = [self.conv_first, self.body, self.conv_body]
        for conv in self._up_convs():
            stages += [self.upsample, conv]
        return chain_context(*stages, self.conv_hr, self.conv_last)

    def basicsr_class(self) -> str | None:
        """BasicSR's RRDBNet always upsamples x4 after unshuffling by 4 / scale (x4: none, x2: 2,
        x1: 4); other forms (x8, or x2 without unshuffle as in some ESRGAN-era models) have no equivalent."""
        return "RRDBNet" if self.config.stages == 2 else None

    def input_multiple(self) -> int:
        return self.config.pixel_unshuffle

    def context(self) -> int | None:
        """The receptive field in input pixels (f x that of the unshuffled network, tiles being aligned
        to the f x f blocks by `input_multiple`) when tiles can carry it at a reasonable cost
        (<= `EXACT_CONTEXT_LIMIT`, e.g. the small presets), so tiles are exact; otherwise None and
        tiles are blended."""
        reach = self.receptive_field() * self.config.pixel_unshuffle
        return reach if reach <= EXACT_CONTEXT_LIMIT else None


# ---------------------------------------------------------------- presets
# Parameter counts are for the default 3-channel network and are checked by the tests.


@register
def esrgan_x4() -> RRDBNetConfig:
    """ESRGAN x4 (Wang et al. 2018), also Real-ESRGAN x4plus and most community ESRGAN models: 23 RRDBs, 64 features, growth 32; 16,697,987 parameters."""
    return RRDBNetConfig()


@register
def realesrgan_x2plus() -> RRDBNetConfig:
    """Real-ESRGAN x2plus (Wang et al. 2021): the x4 network on a 2x2 pixel-unshuffled input; 16,703,171 parameters."""
    return RRDBNetConfig(scale=2, pixel_unshuffle=2)


@register
def realesrgan_x4plus_anime_6b() -> RRDBNetConfig:
    """Real-ESRGAN x4plus anime 6B (Wang et al. 2021): 6 RRDBs, 64 features, growth 32; 4,467,779 parameters."""
    return RRDBNetConfig(blocks=6)


@register
def esrgan_small_x4() -> RRDBNetConfig:
    """A small ESRGAN x4 for tests and CPU runs: 2 RRDBs, 32 features, growth 16 (34-pixel context, tiles exact); 398,755 parameters."""
    return RRDBNetConfig(width=32, blocks=2, growth=16)
