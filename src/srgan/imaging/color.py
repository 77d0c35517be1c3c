"""BT.601 studio-range YCbCr exactly as MATLAB's `rgb2ycbcr` / `ycbcr2rgb` compute it on doubles.

Published PSNR/SSIM numbers are measured on this Y channel (16..235), so the coefficients below are
MATLAB's (ITU-R BT.601 scaled to 8-bit studio range), not JPEG's full-range YCbCr.
Images are torch tensors (..., 3, H, W) with values in [0, 1].
"""

from __future__ import annotations

import torch

# rows: Y, Cb, Cr; columns: R, G, B (in 0..255 units per unit of [0, 1] input)
_RGB_TO_YCBCR = ((65.481, 128.553, 24.966),
                 (-37.797, -74.203, 112.0),
                 (112.0, -93.786, -18.214))
_OFFSET = (16.0, 128.0, 128.0)


def _matrix(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(_RGB_TO_YCBCR, dtype=torch.float64).div(255).to(device, dtype)


def _offset(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(_OFFSET, dtype=torch.float64).div(255).to(device, dtype).view(3, 1, 1)


def _check(img: torch.Tensor, name: str) -> None:
    if img.dim() < 3 or img.shape[-3] != 3 or not torch.is_floating_point(img):
        raise ValueError(f"{name}: need a float tensor (..., 3, H, W), got {img.dtype} {tuple(img.shape)}")


def rgb_to_ycbcr(img: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> YCbCr with Y in [16/255, 235/255], Cb/Cr in [16/255, 240/255]."""
    _check(img, "rgb_to_ycbcr")
    m = _matrix(img.dtype, img.device)
    return torch.einsum("ij,...jhw->...ihw", m, img) + _offset(img.dtype, img.device)


def ycbcr_to_rgb(img: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_ycbcr` (MATLAB `ycbcr2rgb`); no clamping."""
    _check(img, "ycbcr_to_rgb")
    inv = torch.linalg.inv(_matrix(torch.float64, img.device)).to(img.dtype)
    return torch.einsum("ij,...jhw->...ihw", inv, img - _offset(img.dtype, img.device))


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """Luma only, (..., 1, H, W): the channel PSNR/SSIM are reported on."""
    _check(img, "rgb_to_y")
    r, g, b = img.unbind(-3)
    c = [v / 255 for v in _RGB_TO_YCBCR[0]]
    return (c[0] * r + c[1] * g + c[2] * b + _OFFSET[0] / 255).unsqueeze(-3)
