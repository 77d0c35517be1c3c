"""The classic protocol: MATLAB bicubic (antialiased) downscale, as the benchmarks' LR images are made."""

from __future__ import annotations

import numpy as np
import torch

from srgan.data.degradations import register_degradation
from srgan.imaging.imresize import imresize
from srgan.imaging.quantize import round_to_8bit


class Bicubic:
    def __init__(self, quantize: bool = True) -> None:
        self.quantize = quantize

    def __call__(self, hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
        lr = imresize(hr, 1.0 / scale)
        # the evaluation protocol feeds uint8 LR images
        return round_to_8bit(lr) if self.quantize else lr.clamp_(0.0, 1.0)


@register_degradation("bicubic")
def bicubic(quantize: bool = True) -> Bicubic:
    """`quantize: false` keeps the float LR instead of rounding it to 8 bits."""
    return Bicubic(quantize)
