"""PSNR and SSIM as super-resolution papers report them (the MATLAB protocol of SRCNN/VDSR/EDSR).

Both images are 8-bit (SR output rounded to uint8 first); luma is MATLAB's `rgb2ycbcr` Y (BT.601,
16..235) of the uint8 image, which MATLAB returns as uint8, i.e. rounded (`round_y=False` keeps it in
double, as BasicSR's Python port does: up to +0.03 dB on Set5 x2); `crop` pixels (= the scale) are removed at every
border; SSIM is the 11x11 Gaussian (sigma 1.5) index on the 0..255 scale in float64. A
single-channel (grayscale) image is scored on that channel itself, as the MATLAB scripts do for
Set14's bridge. The `_rgb` variants score all three channels (PSNR over the joint MSE, SSIM
averaged over channels).

Images: torch tensors (C, H, W) or (N, C, H, W), or numpy arrays (H, W) or (H, W, C); C is 1 or 3.
Values must be on the 0..255 scale: uint8, or floats that hold uint8 values.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy.ndimage import correlate1d

from srgan.imaging.color import rgb_to_y
from srgan.metrics.ssim import gaussian_window

ImageLike = torch.Tensor | np.ndarray


def _as_batch(img: ImageLike) -> torch.Tensor:
    """-> float64 (N, C, H, W) on the 0..255 scale."""
    if isinstance(img, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(img))
        t = t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)
    else:
        t = img
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[1] not in (1, 3):
        raise ValueError(f"expected an image with 1 or 3 channels, got shape {tuple(img.shape)}")
    return t.to(torch.float64)


def _pair(sr: ImageLike, hr: ImageLike, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _as_batch(sr), _as_batch(hr)
    if a.shape != b.shape:
        raise ValueError(f"SR and HR differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if crop < 0 or 2 * crop >= min(a.shape[-2:]):
        raise ValueError(f"crop {crop} leaves nothing of a {a.shape[-2]}x{a.shape[-1]} image")
    if crop:
        a, b = a[..., crop:-crop, crop:-crop], b[..., crop:-crop, crop:-crop]
    return a, b


def _luma(x: torch.Tensor, round_y: bool) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    y = rgb_to_y(x / 255) * 255
    return y.round() if round_y else y


def y_channel(img: ImageLike, round_y: bool = True) -> torch.Tensor:
    """float64 (N, 1, H, W) luma on the 0..255 scale (a gray image is its own luma). Passing it to
    the `_y` metrics instead of the RGB image saves recomputing it for every model and metric."""
    return _luma(_as_batch(img), round_y)


def _out(values: torch.Tensor, single: bool) -> float | torch.Tensor:
    return float(values[0]) if single else values


def _single(img: ImageLike) -> bool:
    return isinstance(img, np.ndarray) or img.dim() == 3


@lru_cache(maxsize=4)
def _gaussian_taps(window: int = 11, sigma: float = 1.5) -> tuple[float, ...]:
    return tuple(gaussian_window(window, sigma, torch.float64).sum(dim=1).tolist())  # 2-D window = outer(g, g)


def _valid_blur(t: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering (scipy's 1-D correlation, then the border cut off)."""
    g, r = np.asarray(taps), len(taps) // 2
    a = correlate1d(correlate1d(t.numpy(), g, axis=-2, mode="constant"), g, axis=-1, mode="constant")
    return torch.from_numpy(a[..., r:a.shape[-2] - r, r:a.shape[-1] - r])


def ssim_float64(x: torch.Tensor, y: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """`srgan.metrics.ssim.ssim` for evaluation: same formula and window (tests check they agree to
    1e-12), with the separable Gaussian applied as two 1-D correlations, since float64 conv2d on CPU is about
    20x slower and evaluation scores hundreds of full-size images."""
    taps = _gaussian_taps()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y, xx, yy, xy = _valid_blur(torch.stack([x, y, x * x, y * y, x * y]), taps).unbind(0)
    sigma_x, sigma_y, sigma_xy = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sigma_x + sigma_y + c2))
    return ssim_map.mean(dim=(1, 2, 3))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = (a - b).pow(2).mean(dim=(1, 2, 3))
    return torch.where(mse == 0, torch.full_like(mse, math.inf), 10 * torch.log10(255.0**2 / mse))


def psnr_y(sr: ImageLike, hr: ImageLike, crop: int, round_y: bool = True) -> float | torch.Tensor:
    """PSNR (dB) on the BT.601 Y channel after cropping `crop` pixels per border."""
    a, b = _pair(sr, hr, crop)
    return _out(_psnr(_luma(a, round_y), _luma(b, round_y)), _single(sr))


def ssim_y(sr: ImageLike, hr: ImageLike, crop: int, round_y: bool = True) -> float | torch.Tensor:
    """SSIM on the BT.601 Y channel (0..255 scale) after cropping `crop` pixels per border."""
    a, b = _pair(sr, hr, crop)
    return _out(ssim_float64(_luma(a, round_y), _luma(b, round_y)), _single(sr))


def psnr_rgb(sr: ImageLike, hr: ImageLike, crop: int) -> float | torch.Tensor:
    """PSNR (dB) over all channels after cropping `crop` pixels per border."""
    a, b = _pair(sr, hr, crop)
    return _out(_psnr(a, b), _single(sr))


def ssim_rgb(sr: ImageLike, hr: ImageLike, crop: int) -> float | torch.Tensor:
    """SSIM averaged over channels after cropping `crop` pixels per border."""
    a, b = _pair(sr, hr, crop)
    return _out(ssim_float64(a, b), _single(sr))
