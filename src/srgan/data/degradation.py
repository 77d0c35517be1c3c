"""The benchmark degradation protocol: how an HR image becomes the LR image a model is scored on,
shared by `srgan eval` and the validation during training so both report the same numbers.

HR: the file through the one reader as 8 bits (`imaging.io.read_8bit`), mod-cropped to a multiple
of the scale. LR: MATLAB's `imresize(hr, 1/scale, 'bicubic')` (antialiased) of the uint8 HR,
rounded to uint8 as MATLAB returns it for uint8 input and as the LR PNGs of the benchmarks are
(the EDSR/RCAN evaluation scripts; reproduces the VDSR/EDSR bicubic tables within 0.02 dB).
"""

from __future__ import annotations

import os

import torch

from srgan.imaging.imresize import imresize
from srgan.imaging.io import read_8bit
from srgan.imaging.quantize import to_uint8


def benchmark_hr(path: str | os.PathLike, scale: int) -> torch.Tensor:
    """The HR image of a benchmark file, uint8 (C, H, W), mod-cropped: C = 1 for gray files (scored on
    their gray channel, as the MATLAB scripts do), else 3 (see `read_8bit` for alpha and 16 bits)."""
    return mod_crop(read_8bit(path), scale)


def mod_crop(image: torch.Tensor, scale: int) -> torch.Tensor:
    """(..., H, W) cut at the bottom and right to multiples of `scale`, so LR x scale = HR exactly."""
    h, w = image.shape[-2:]
    return image[..., : h - h % scale, : w - w % scale]


def crop_border(image: torch.Tensor, pixels: int) -> torch.Tensor:
    """(..., H, W) without `pixels` rows and columns at every border, as the metrics score it."""
    return image[..., pixels:image.shape[-2] - pixels, pixels:image.shape[-1] - pixels]


def degrade(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The benchmark LR image: MATLAB bicubic (antialiased) downscale of the uint8 HR, in uint8."""
    return to_uint8(imresize(hr.to(torch.float64), 1 / scale), peak=255)

