"""Training objectives: pixel, SSIM, VGG19 perceptual and adversarial losses."""

from srgan.losses.adversarial import (
    ADVERSARIAL_LOSSES,
    AdversarialLoss,
    BCELoss,
    HingeLoss,
    LeastSquaresLoss,
    RelativisticAverageLoss,
    adversarial_loss,
)
from srgan.losses.perceptual import LEDIG_FEATURE_SCALE, PerceptualLoss
from srgan.losses.pixel import CHARBONNIER_EPS, charbonnier_loss, l1_loss, mse_loss, pixel_loss
from srgan.losses.ssim_loss import ssim_loss

__all__ = [
    "ADVERSARIAL_LOSSES",
    "CHARBONNIER_EPS",
    "LEDIG_FEATURE_SCALE",
    "AdversarialLoss",
    "BCELoss",
    "HingeLoss",
    "LeastSquaresLoss",
    "PerceptualLoss",
    "RelativisticAverageLoss",
    "adversarial_loss",
    "charbonnier_loss",
    "l1_loss",
    "mse_loss",
    "pixel_loss",
    "ssim_loss",
]
