"""Float images to 8 or 16 bits, the one rounding rule of srgan.

Values are clamped to the range, scaled to 0..255 (or 0..65535) and rounded half to even
(`torch.round`), as an image is saved. Every 8-bit value in the package goes through `to_uint8`:
written files, evaluation LR and SR images (as MATLAB returns uint8 from imresize), the training LR
crops, and 16-bit files reduced to 8 bits for training and evaluation (v16 -> round(v16 / 257)).
"""

from __future__ import annotations

import torch


def to_uint8(image: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """A float image with values in [0, `peak`] as uint8: clamp, scale to 0..255, round half to even.
    `peak=255` takes images already on the 0..255 scale (e.g. `imresize` of a uint8 image) unscaled."""
    image = image.clamp(0, peak)
    if peak != 255:
        image = image * (255.0 / peak)
    return image.round().to(torch.uint8)


def to_uint16(image: torch.Tensor) -> torch.Tensor:
    """A float image in [0, 1] on the 16-bit grid (0..65535, as int32: torch's uint16 has few ops)."""
    return image.clamp(0, 1).mul(65535.0).round().to(torch.int32)


def round_to_8bit(image: torch.Tensor) -> torch.Tensor:
    """A float image in [0, 1] moved to the nearest of the 256 values a uint8 image holds, same dtype:
    what saving and re-reading it as 8 bits would give (training LR crops, as evaluation's)."""
    return to_uint8(image).to(image.dtype).div_(255.0)
