"""SRResNet, the generator of Ledig et al. 2017, and every published SRGAN variant of it, from one config.

Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
Network", CVPR 2017, Fig. 4: a 9x9 head conv + PReLU, B residual blocks (conv-BN-PReLU-conv-BN),
a conv-BN closed by a skip over all blocks, log2(scale) x2 upsampling stages and a 9x9 tail conv.
The variants differ only in the fields of `SRResNetConfig`; each is a preset at the end of this file.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.models.fuse import conv_before_pixel_shuffle
from srgan.models.generator import (
    MAX_CHANNELS,
    MAX_DEPTH,
    MAX_WIDTH,
    Generator,
    GeneratorConfig,
    chain_context,
)
from srgan.models.registry import register, register_architecture

Padding = Literal["zeros", "reflect", "replicate"]
Upsampler = Literal["pixelshuffle", "nearest", "transposed"]
MAX_KERNEL = 31


@dataclass(frozen=True)
class SRResNetConfig(GeneratorConfig):
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
        self.check_positive("in_channels", "out_channels", most=MAX_CHANNELS)
        self.check_positive("width", most=MAX_WIDTH)
        self.check_positive("blocks", most=MAX_DEPTH)
        self.check_positive("head_kernel", "tail_kernel", most=MAX_KERNEL)
        for name in ("head_kernel", "tail_kernel"):
            if getattr(self, name) % 2 == 0:
                raise SrganError(f"{name} must be odd so the output stays aligned, got {getattr(self, name)}")

    def folds_into(self, other: GeneratorConfig) -> bool:
        """A batch-norm network becomes its no-BN twin once the BNs are folded (bn_momentum then plays no part)."""
        return (self.batch_norm and isinstance(other, SRResNetConfig) and not other.batch_norm
                and dataclasses.replace(self, batch_norm=False, bn_momentum=other.bn_momentum) == other)


def _conv(cfg: SRResNetConfig, cin: int, cout: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, padding_mode=cfg.padding)


def _norm(cfg: SRResNetConfig) -> nn.Module:
    return nn.BatchNorm2d(cfg.width, momentum=cfg.bn_momentum) if cfg.batch_norm else nn.Identity()


class ResidualBlock(nn.Module):
    def __init__(self, cfg: SRResNetConfig) -> None:
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


def _upsample_stage(cfg: SRResNetConfig) -> nn.Sequential:
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


@register_architecture("srresnet", SRResNetConfig)
class SRResNet(Generator):
    """LR image in [0, 1] (N, C, h, w) -> SR image (N, C, scale*h, scale*w), unclamped."""

    config: SRResNetConfig

    def __init__(self, config: SRResNetConfig | None = None, **overrides: Any) -> None:
        cfg = (config or SRResNetConfig()).replace(**overrides)
        super().__init__(cfg)
        self.head = nn.Sequential(_conv(cfg, cfg.in_channels, cfg.width, cfg.head_kernel), nn.PReLU())
        self.body = nn.Sequential(*(ResidualBlock(cfg) for _ in range(cfg.blocks)))
        self.body_tail = nn.Sequential(_conv(cfg, cfg.width, cfg.width, 3), _norm(cfg))
        self.upsample = nn.Sequential(*(_upsample_stage(cfg) for _ in range(int(math.log2(cfg.scale)))))
        self.tail = _conv(cfg, cfg.width, cfg.out_channels, cfg.tail_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        body = self.body_tail(self.body(features))
        if self.config.global_skip:
            body = body + features
        return self.tail(self.upsample(body))

    def context(self) -> int:
        """40 LR pixels for srresnet_x4: 4 (9x9 head) + 2 per block + 1 (body tail) + 3 (upsampling and
        the 9x9 tail at x4, as seen from the LR grid). The global skip adds no reach."""
        return chain_context(self.head, self.body, self.body_tail, self.upsample, self.tail)

    def rewrite_for_inference(self) -> None:
        subpixel_tail(self)


def subpixel_tail(model: SRResNet) -> bool:
    """Move the 9x9 tail conv in front of the last PixelShuffle(2) (`fuse.conv_before_pixel_shuffle`).

    Why: the tail (64 -> 3 channels, 9x9, at full output resolution) runs at a fraction of the conv
    peak because 3 output channels starve the vector units; as 256 -> 12 channels, 5x5, at half
    resolution it is ~2.7x faster on the AVX-512 CPU for 1.23x the multiply-adds. Exact for zero
    padding only (the border of a shuffled image maps to the border of the pre-shuffle one); the
    scalar PReLU commutes with the shuffle. Returns whether the model was rewritten.
    """
    cfg = model.config
    if cfg.upsampler != "pixelshuffle" or cfg.padding != "zeros":
        return False
    conv, shuffle, act = model.upsample[-1]
    tail = model.tail
    if not (isinstance(shuffle, nn.PixelShuffle) and shuffle.upscale_factor == 2 and isinstance(act, nn.PReLU)
            and act.num_parameters == 1 and isinstance(tail, nn.Conv2d) and tail.groups == 1
            and tail.stride == (1, 1) and tail.padding_mode == "zeros"):
        return False
    model.upsample[-1] = nn.Sequential(conv, act)
    model.tail = nn.Sequential(conv_before_pixel_shuffle(tail), nn.PixelShuffle(2))
    return True


# ---------------------------------------------------------------- presets
# Parameter counts are for the default 3-channel network and are checked by the tests.


@register
def srresnet_x4() -> SRResNetConfig:
    """Ledig et al. 2017 SRResNet/SRGAN x4: 16 blocks, BN, PixelShuffle, 9x9 head/tail; 1,549,462 parameters."""
    return SRResNetConfig(scale=4)


@register
def srresnet_x2() -> SRResNetConfig:
    """Ledig et al. 2017 architecture at x2 (one PixelShuffle stage); 1,401,749 parameters."""
    return SRResNetConfig(scale=2)


@register
def fpt_x4() -> SRResNetConfig:
    """FPT report (Pham & Nguyen): 20 blocks, reflect ("symmetric") padding, BN momentum 0.5, nearest+conv x4; 1,624,346 parameters."""
    return SRResNetConfig(scale=4, blocks=20, padding="reflect", bn_momentum=0.5, upsampler="nearest")


@register
def keras_x4() -> SRResNetConfig:
    """Keras SRGAN slides (Cheung): 16 blocks, nearest upsampling + conv, BN momentum 0.5, trained 32->128; 1,327,894 parameters."""
    return SRResNetConfig(scale=4, bn_momentum=0.5, upsampler="nearest")


@register
def ssim_x4() -> SRResNetConfig:
    """IIIT SSIM-loss report (Shreyas et al.): 20 blocks, otherwise Ledig x4; 1,845,914 parameters."""
    return SRResNetConfig(scale=4, blocks=20)


@register
def ssim_x2() -> SRResNetConfig:
    """IIIT SSIM-loss report (Shreyas et al.): 20 blocks, otherwise Ledig x2; 1,698,201 parameters."""
    return SRResNetConfig(scale=2, blocks=20)


@register
def mit_x4() -> SRResNetConfig:
    """MIT report (Zheng, Du, Li): 16 blocks, transposed-convolution ("deconvolution") x4; 1,385,238 parameters."""
    return SRResNetConfig(scale=4, upsampler="transposed")


@register
def mit_x2() -> SRResNetConfig:
    """MIT report (Zheng, Du, Li): 16 blocks, transposed-convolution ("deconvolution") x2; 1,319,637 parameters."""
    return SRResNetConfig(scale=2, upsampler="transposed")


@register
def uos_x4() -> SRResNetConfig:
    """Osnabrueck report (ben Ahmed, Hoffmann, Zielinski): 8 blocks, conv + transposed-conv x4; 866,190 parameters."""
    return SRResNetConfig(scale=4, blocks=8, upsampler="transposed", upsample_pre_conv=True)


@register
def srresnet_nobn_x4() -> SRResNetConfig:
    """Ledig x4 without batch norm (as ESRGAN and BasicSR's MSRResNet found, BN costs PSNR and adds artefacts); 1,545,238 parameters."""
    return SRResNetConfig(scale=4, batch_norm=False)


@register
def srresnet_nobn_x2() -> SRResNetConfig:
    """Ledig x2 without batch norm; the trunk transfers from srresnet_nobn_x4 (as EDSR did); 1,397,525 parameters."""
    return SRResNetConfig(scale=2, batch_norm=False)
