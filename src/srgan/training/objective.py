"""The generator and discriminator objectives of a run, assembled from the config's `losses` section.

Generator loss = sum of the enabled terms (weight > 0): pixel, SSIM, VGG perceptual, adversarial.
Each term is returned as a float for the log as well, never as a tensor (so no graph is kept).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from srgan.training.config import Config


def build_discriminator_from_config(config: Config) -> nn.Module:
    from srgan.models.discriminators import build_discriminator

    return build_discriminator(config.discriminator.kind, **config.discriminator.options)


class GeneratorObjective(nn.Module):
    def __init__(self, config: Config) -> None:
        super().__init__()
        losses = config.losses
        self.pixel_weight = losses.pixel.weight
        self.ssim_weight = losses.ssim.weight
        self.perceptual_weight = losses.perceptual.weight
        self.adversarial_weight = losses.adversarial.weight if config.gan else 0.0
        self.pixel = None
        if self.pixel_weight > 0:
            from srgan.losses.pixel import pixel_loss

            self.pixel = pixel_loss(losses.pixel.kind, losses.pixel.eps)
        self.perceptual: nn.Module | None = None
        if self.perceptual_weight > 0:
            from srgan.losses.perceptual import PerceptualLoss

            p = losses.perceptual
            self.perceptual = PerceptualLoss(p.layers, weights=p.weights_path, criterion=p.criterion,
                                             feature_scale=p.feature_scale)
        self.adversarial: Any = None
        if self.adversarial_weight > 0:
            from srgan.losses.adversarial import adversarial_loss

            self.adversarial = adversarial_loss(losses.adversarial.kind)
        self.needs_real_logits = self.adversarial is not None and self.adversarial.uses_real_in_g

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, fake_logits: Any, real_logits: Any
                ) -> tuple[torch.Tensor, dict[str, float]]:
        total = sr.new_zeros(())
        stats: dict[str, float] = {}
        if self.pixel is not None:
            term = self.pixel(sr, hr)
            total = total + self.pixel_weight * term
            stats["pix"] = float(term.detach())
        if self.ssim_weight > 0:
            from srgan.losses.ssim_loss import ssim_loss

            term = ssim_loss(sr, hr)
            total = total + self.ssim_weight * term
            stats["ssim"] = float(term.detach())
        if self.perceptual is not None:
            term = self.perceptual(sr, hr)
            total = total + self.perceptual_weight * term
            stats["vgg"] = float(term.detach())
        if self.adversarial is not None and fake_logits is not None:
            term = self.adversarial.g_loss(real_logits, fake_logits)
            total = total + self.adversarial_weight * term
            stats["adv"] = float(term.detach())
        stats["g"] = float(total.detach())
        return total, stats


class DiscriminatorObjective:
    """Discriminator loss and the D(real)/D(fake) means that show whether D has won: probabilities
    (sigmoid of the logits) for BCE and RaGAN, raw outputs for least squares and hinge."""

    def __init__(self, config: Config) -> None:
        from srgan.losses.adversarial import adversarial_loss

        self.loss = adversarial_loss(config.losses.adversarial.kind)
        self.probability = config.losses.adversarial.kind in ("bce", "ragan")

    def __call__(self, real_logits: Any, fake_logits: Any) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.loss.d_loss(real_logits, fake_logits)
        stats = {"d": float(loss.detach()), "D(real)": self._mean(real_logits), "D(fake)": self._mean(fake_logits)}
        return loss, stats

    def _mean(self, logits: Any) -> float:
        if isinstance(logits, (list, tuple)):
            return sum(self._mean(x) for x in logits) / len(logits)
        x = logits.detach().float()
        return float(torch.sigmoid(x).mean() if self.probability else x.mean())
