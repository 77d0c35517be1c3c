"""How far (in low-resolution pixels) one output pixel of a generator looks into its input.

Tiles padded with at least this much real image context give exactly the whole-image result,
because no value computed from the model's own padding at a tile edge survives the crop.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from srgan.models.generator import GeneratorConfig


def receptive_field_radius(model_or_config: Any) -> int:
    """Radius in LR pixels for a `Generator`, its `GeneratorConfig`, or anything with `.config`.

    Each k x k conv adds k//2 pixels at the resolution it runs at; a conv at 2**i x the input
    resolution adds (k//2) / 2**i LR pixels. A 4x4 stride-2 transposed conv (padding 1) reads
    one input pixel either side.
    """
    cfg = model_or_config if isinstance(model_or_config, GeneratorConfig) else model_or_config.config
    radius = Fraction(cfg.head_kernel // 2) + 2 * cfg.blocks + 1  # head, 2 convs per block, body_tail
    res = 1  # current resolution relative to the LR input
    for _ in range(int(math.log2(cfg.scale))):
        if cfg.upsampler == "pixelshuffle":
            radius += Fraction(1, res)  # 3x3 conv before the shuffle
        elif cfg.upsampler == "nearest":
            radius += Fraction(1, 2 * res)  # 3x3 conv after the x2 resize
        else:
            if cfg.upsample_pre_conv:
                radius += Fraction(1, res)
            radius += Fraction(1, res)  # transposed conv reads +-1 input pixel
        res *= 2
    radius += Fraction(cfg.tail_kernel // 2, res)
    return math.ceil(radius)
