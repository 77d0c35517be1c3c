"""SSIM content loss, 1 - SSIM, of the IIIT variant (SSIM instead of MSE as the content loss).

It is the evaluation metric itself (`srgan.metrics.ssim.ssim`, MATLAB's 11x11 Gaussian window,
sigma 1.5), so what training optimises is exactly what evaluation reports. Always computed in
float32: SSIM's constants C1 = 1e-4 and C2 = 9e-4 are below bf16's resolution near 1.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from srgan.losses.registry import register_loss
from srgan.metrics.ssim import ssim


def ssim_loss(sr: torch.Tensor, hr: torch.Tensor, *, on_y: bool = False, data_range: float = 1.0) -> torch.Tensor:
    """1 - mean SSIM of two (N, C, H, W) batches in [0, data_range] (at least 11x11 pixels).

    `on_y=True` compares the BT.601 luma of RGB images only, as the evaluation protocol does.
    """
    with torch.autocast(sr.device.type, enabled=False):
        x, y = sr.float(), hr.float()
        if on_y:
            from srgan.imaging.color import rgb_to_y

            x, y = rgb_to_y(x / data_range) * data_range, rgb_to_y(y / data_range) * data_range
        return 1.0 - ssim(x, y, data_range=data_range).mean()


@register_loss("ssim")
def ssim_term(on_y: bool = False) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """1 - SSIM of RGB images, or of their luma with `on_y: true`."""
    return partial(ssim_loss, on_y=True) if on_y else ssim_loss
