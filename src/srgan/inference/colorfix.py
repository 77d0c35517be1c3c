"""Colour fixes that pull a super-resolved image's colours back to its input's.

A GAN generator can shift colours slightly in a way the discriminator barely punishes but the eye
sees at once (FPT SRGAN report, seed 000, section III.4; Real-ESRGAN #285). Two remedies:

- `match_histograms`: the report's fix, per-channel histogram matching of the output to the input
  (`skimage.exposure.match_histograms`, after Shapira et al., ICIP 2013). Global: exact channel
  distributions, but it cannot fix a cast that varies across the image.
- `lowfreq_color_fix`: the output is downscaled to the input size, its difference from the input
  is blurred (a Gaussian of `sigma` input pixels keeps only slowly varying colour errors, not the
  detail the model added), upsampled and added back. Local casts are removed, detail is untouched.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from srgan.errors import SrganError

METHODS = ("none", "hist", "lowfreq")
DEFAULT_SIGMA = 3.0


def match_histograms(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-channel histogram matching of `output` (C, H', W') to `reference` (C, H, W), floats."""
    from skimage.exposure import match_histograms as skimage_match

    out = output.detach().float().cpu().numpy()
    ref = reference.detach().float().cpu().numpy()
    matched = skimage_match(np.moveaxis(out, 0, -1), np.moveaxis(ref, 0, -1), channel_axis=-1)
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(matched, -1, 0), dtype=np.float32))


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect borders (truncated at 3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(taps ** 2) / (2 * sigma ** 2))
    kernel = (kernel / kernel.sum()).to(image.dtype)
    channels = image.shape[1]
    height, width = image.shape[-2:]
    pad_h, pad_w = min(radius, height - 1), min(radius, width - 1)
    x = F.pad(image, (0, 0, pad_h, pad_h), mode="reflect") if pad_h else image
    x = F.conv2d(x, kernel[radius - pad_h:radius + pad_h + 1].view(1, 1, -1, 1).repeat(channels, 1, 1, 1),
                 groups=channels)
    x = F.pad(x, (pad_w, pad_w, 0, 0), mode="reflect") if pad_w else x
    return F.conv2d(x, kernel[radius - pad_w:radius + pad_w + 1].view(1, 1, 1, -1).repeat(channels, 1, 1, 1),
                    groups=channels)


def lowfreq_color_fix(output: torch.Tensor, reference: torch.Tensor, sigma: float = DEFAULT_SIGMA) -> torch.Tensor:
    """Remove slowly varying colour errors of `output` (C, sH, sW) against its input `reference`
    (C, H, W). `sigma` is the blur in input pixels."""
    if sigma <= 0:
        raise SrganError(f"colour-fix blur sigma must be positive, got {sigma}")
    out = output.float()[None]
    ref = reference.float()[None]
    down = F.interpolate(out, size=ref.shape[-2:], mode="bicubic", align_corners=False, antialias=True)
    error = gaussian_blur(ref - down, sigma)
    correction = F.interpolate(error, size=out.shape[-2:], mode="bilinear", align_corners=False)
    return (out + correction)[0]


def color_fix(output: torch.Tensor, reference: torch.Tensor, method: str) -> torch.Tensor:
    """Apply `method` ('none', 'hist' or 'lowfreq') to the colour channels of `output`."""
    method = (method or "none").lower()
    if method == "none":
        return output
    if method == "hist":
        return match_histograms(output, reference)
    if method == "lowfreq":
        return lowfreq_color_fix(output, reference)
    raise SrganError(f"unknown colour fix {method!r}: choose none, hist or lowfreq")
