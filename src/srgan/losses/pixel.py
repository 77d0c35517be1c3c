"""Pixel losses between an SR batch and its HR target: MSE (Ledig's SRResNet), L1, Charbonnier.

Computed in float32 even under autocast: these are means of tiny squared differences, where bf16's
8-bit mantissa would round away the signal the generator is learning from.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from srgan.losses.registry import register_loss

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

CHARBONNIER_EPS = 1e-3  # Lai et al., LapSRN (CVPR 2017), Eq. 3: epsilon = 1e-3


def mse_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(sr.float(), hr.float())


def l1_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(sr.float(), hr.float())


def charbonnier_loss(sr: torch.Tensor, hr: torch.Tensor, *, eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """mean(sqrt((sr - hr)^2 + eps^2)): L1 that is smooth at zero (its minimum is eps, not 0), robust
    to outliers like L1 but with a defined gradient for identical pixels."""
    diff = sr.float() - hr.float()
    return torch.sqrt(diff * diff + eps * eps).mean()


@register_loss("mse")
def mse() -> LossFn:
    """Mean squared error: Ledig's SRResNet-MSE."""
    return mse_loss


@register_loss("l1")
def l1() -> LossFn:
    """Mean absolute error (EDSR: converges better than MSE)."""
    return l1_loss


@register_loss("charbonnier")
def charbonnier(eps: float = CHARBONNIER_EPS) -> LossFn:
    """Charbonnier with epsilon `eps`."""
    return partial(charbonnier_loss, eps=eps)
