"""MSRResNet, BasicSR's "modified SRResNet" (Wang et al. 2018, the PSNR-oriented SRResNet baseline
of the ESRGAN paper, Sec. 4.1 / Table 1): Ledig et al.'s SRResNet without batch norm.

It is not srgan's `srresnet` with batch_norm=False, so it has its own file: a 3x3 head (not 9x9)
with LeakyReLU(0.1), residual blocks conv-ReLU-conv with no norm and no global skip or trunk conv,
sub-pixel upsampling (x4: two x2 stages; x2, x3: one stage) with LeakyReLU(0.1), conv_hr +
LeakyReLU(0.1) and conv_last, plus the bilinearly upsampled input added to the output.

Module names are BasicSR's (`conv_first`, `body.N.conv1`, `body.N.conv2`, `upconv1`, `upconv2`,
`conv_hr`, `conv_last`), so srgan's weights are the layout BasicSR and spandrel-based tools read.
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
    MAX_WIDTH,
    Generator,
    GeneratorConfig,
    chain_context,
    scaled_msra_init,
)
from srgan.models.registry import register, register_architecture

NEGATIVE_SLOPE = 0.1


@dataclass(frozen=True)
class MSRResNetConfig(GeneratorConfig):
    """`width` is BasicSR's num_feat, `blocks` num_block."""

    scale: int = 4
    in_channels: int = 3
    out_channels: int = 3
    width: int = 64
    blocks: int = 16

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4):
            raise SrganError(f"MSRResNet scale must be 2, 3 or 4, got {self.scale}")
        self.check_positive("in_channels", "out_channels", most=MAX_CHANNELS)
        self.check_positive("width", most=MAX_WIDTH)
        self.check_positive("blocks", most=MAX_DEPTH)


class ResidualBlockNoBN(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        scaled_msra_init([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


@register_architecture("msrresnet", MSRResNetConfig)
class MSRResNet(Generator):
    """LR image in [0, 1] (N, C, h, w) -> SR image (N, C', scale*h, scale*w), unclamped."""

    config: MSRResNetConfig

    def __init__(self, config: MSRResNetConfig | None = None, **overrides: Any) -> None:
        cfg = (config or MSRResNetConfig()).replace(**overrides)
        super().__init__(cfg)
        w = cfg.width
        self.conv_first = nn.Conv2d(cfg.in_channels, w, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlockNoBN(w) for _ in range(cfg.blocks)))
        factor = 2 if cfg.scale == 4 else cfg.scale
        self.upconv1 = nn.Conv2d(w, w * factor**2, 3, padding=1)
        if cfg.scale == 4:
            self.upconv2 = nn.Conv2d(w, w * 4, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(factor)
        self.conv_hr = nn.Conv2d(w, w, 3, padding=1)
        self.conv_last = nn.Conv2d(w, cfg.out_channels, 3, padding=1)
        self.lrelu = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)
        scaled_msra_init([c for c in (self.conv_first, *self._up_convs(), self.conv_hr, self.conv_last)], 0.1)

    def _up_convs(self) -> list[nn.Conv2d]:
        return [self.upconv1, self.upconv2] if self.config.scale == 4 else [self.upconv1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(self.lrelu(self.conv_first(x)))
        for conv in self._up_convs():
            out = self.lrelu(self.pixel_shuffle(conv(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)

    def basicsr_class(self) -> str:
        return "MSRResNet"

    def context(self) -> int:
        """1 (conv_first) + 2 per block + 2 for the upsampling and HR convs seen from LR: 35 for
        msrresnet_x4. The bilinear skip reads the two nearest LR pixels (reach 1, within that)."""
        stages: list[nn.Module] = [self.conv_first, self.body]
        for conv in self._up_convs():
            stages += [conv, self.pixel_shuffle]
        return max(1, chain_context(*stages, self.conv_hr, self.conv_last))


# ---------------------------------------------------------------- presets


@register
def msrresnet_x4() -> MSRResNetConfig:
    """BasicSR MSRResNet x4 (ESRGAN paper's SRResNet baseline): 16 blocks, 64 features, no BN, LeakyReLU 0.1; 1,517,571 parameters."""
    return MSRResNetConfig()
