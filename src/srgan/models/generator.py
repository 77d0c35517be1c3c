"""The SRResNet generator of Ledig et al. 2017 and every published variant of it, from one config.

Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
Network", CVPR 2017, Fig. 4: a 9x9 head conv + PReLU, B residual blocks (conv-BN-PReLU-conv-BN),
a conv-BN closed by a skip over all blocks, log2(scale) x2 upsampling stages and a 9x9 tail conv.
The variants differ only in the fields of `GeneratorConfig`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from srgan.errors import SrganError

Padding = Literal["zeros", "reflect", "replicate"]
Upsampler = Literal["pixelshuffle", "nearest", "transposed"]


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that distinguishes one SRGAN generator variant from another.

    `bn_momentum` uses PyTorch's convention (weight of the new batch statistic). Keras's
    `BatchNormalization(momentum=0.5)` weighs the old statistic by 0.5, which is the same 0.5 here.
    `padding="reflect"` is what some SRGAN write-ups call "symmetric padding": it mirrors the
    image at its border instead of adding zeros, so tiles stitch without visible seams.
    """

    scale: int = 4
    blocks: int = 16
    width: int = 64
    in_channels: int = 3
    out_channels: int = 3
    head_kernel: int = 9
    tail_kernel: int = 9
    batch_norm: bool = True
    bn_momentum: float = 0.1
    padding: Padding = "zeros"
    upsampler: Upsampler = "pixelshuffle"
    upsample_pre_conv: bool = False  # a 3x3 conv before each transposed conv (Osnabrueck variant)
    global_skip: bool = True

    def __post_init__(self) -> None:
        if self.scale not in (2, 4, 8):
            raise SrganError(f"scale must be 2, 4 or 8 (x2 stages), got {self.scale}")
        if self.padding not in ("zeros", "reflect", "replicate"):
            raise SrganError(f"padding must be zeros, reflect or replicate, got {self.padding!r}")
        if self.upsampler not in ("pixelshuffle", "nearest", "transposed"):
            raise SrganError(f"upsampler must be pixelshuffle, nearest or transposed, got {self.upsampler!r}")
        for name in ("blocks", "width", "in_channels", "out_channels"):
            if int(getattr(self, name)) < 1:
                raise SrganError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("head_kernel", "tail_kernel"):
            if getattr(self, name) % 2 == 0:
                raise SrganError(f"{name} must be odd so the output stays aligned, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GeneratorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SrganError(f"unknown generator setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
        return cls(**values)


def _conv(cfg: GeneratorConfig, cin: int, cout: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, padding_mode=cfg.padding)


def _norm(cfg: GeneratorConfig) -> nn.Module:
    return nn.BatchNorm2d(cfg.width, momentum=cfg.bn_momentum) if cfg.batch_norm else nn.Identity()


class ResidualBlock(nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(cfg, cfg.width, cfg.width, 3),
            _norm(cfg),
            nn.PReLU(),
            _conv(cfg, cfg.width, cfg.width, 3),
            _norm(cfg),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _upsample_stage(cfg: GeneratorConfig) -> nn.Sequential:
    """One x2 stage. PixelShuffle is Shi et al. 2016's sub-pixel convolution; nearest + conv is the
    resize-convolution of Odena et al. 2016; transposed conv is the "deconvolution" of the MIT and
    Osnabrueck variants (kernel 4, stride 2, padding 1: exactly x2)."""
    w = cfg.width
    if cfg.upsampler == "pixelshuffle":
        layers = [_conv(cfg, w, 4 * w, 3), nn.PixelShuffle(2)]
    elif cfg.upsampler == "nearest":
        layers = [nn.Upsample(scale_factor=2, mode="nearest"), _conv(cfg, w, w, 3)]
    else:
        layers = [_conv(cfg, w, w, 3)] if cfg.upsample_pre_conv else []
        layers.append(nn.ConvTranspose2d(w, w, 4, stride=2, padding=1))
    return nn.Sequential(*layers, nn.PReLU())


class Generator(nn.Module):
    """LR image in [0, 1] (N, C, h, w) -> SR image (N, C, scale*h, scale*w), unclamped."""

    def __init__(self, config: GeneratorConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = dataclasses.replace(config or GeneratorConfig(), **overrides)
        self.config = cfg
        self.head = nn.Sequential(_conv(cfg, cfg.in_channels, cfg.width, cfg.head_kernel), nn.PReLU())
        self.body = nn.Sequential(*(ResidualBlock(cfg) for _ in range(cfg.blocks)))
        self.body_tail = nn.Sequential(_conv(cfg, cfg.width, cfg.width, 3), _norm(cfg))
        self.upsample = nn.Sequential(*(_upsample_stage(cfg) for _ in range(int(math.log2(cfg.scale)))))
        self.tail = _conv(cfg, cfg.width, cfg.out_channels, cfg.tail_kernel)

    @property
    def scale(self) -> int:
        return self.config.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        body = self.body_tail(self.body(features))
        if self.config.global_skip:
            body = body + features
        return self.tail(self.upsample(body))
