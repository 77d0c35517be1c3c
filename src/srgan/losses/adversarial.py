"""Adversarial losses on raw discriminator logits, for both players.

Every loss is an object with `d_loss(real_logits, fake_logits)` (the discriminator minimises it;
pass fake logits of detached SR images) and `g_loss(real_logits, fake_logits)` (the generator
minimises it). `uses_real_in_g` says whether `g_loss` needs the real logits at all (only the
relativistic loss does); the others accept `real_logits=None` there. `on_probability_scale` says
whether sigmoid(logit) is what the discriminator estimates (BCE, RaGAN), which decides how the
trainer reports D(real) and D(fake). All arithmetic is float32,
also under autocast, and BCE always goes through `binary_cross_entropy_with_logits` (log-sum-exp),
never sigmoid + log, so logits of +-100 stay finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from srgan.errors import SrganError
from srgan.losses.registry import register_loss


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class AdversarialLoss:
    adversarial = True  # what `registry.is_adversarial` asks, so the registry needs no import of this file
    uses_real_in_g = False
    on_probability_scale = False

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@register_loss("bce")
class BCELoss(AdversarialLoss):
    """Goodfellow et al. 2014 / Ledig et al. 2017 with the non-saturating generator loss -log D(G(z)).

    D: BCE(real, 1) + BCE(fake, 0) (a sum: 2 ln 2 = 1.386 at chance). `real_label` < 1 is one-sided
    label smoothing (Salimans et al. 2016), e.g. 0.9.
    """

    on_probability_scale = True

    def __init__(self, real_label: float = 1.0) -> None:
        self.real_label = float(real_label)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return _bce(real_logits, self.real_label) + _bce(fake_logits, 0.0)

    def g_loss(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        return _bce(fake_logits, 1.0)


@register_loss("lsgan")
class LeastSquaresLoss(AdversarialLoss):
    """LSGAN (Mao et al. 2017) with a=0, b=c=1: D: (mean((D(x)-1)^2) + mean(D(G(z))^2)) / 2,
    G: mean((D(G(z))-1)^2) / 2."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_logits.float() - 1) ** 2).mean() + 0.5 * (fake_logits.float() ** 2).mean()

    def g_loss(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake_logits.float() - 1) ** 2).mean()


@register_loss("hinge")
class HingeLoss(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): D: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))),
    G: -mean(D(G(z)))."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()

    def g_loss(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.float().mean()


@register_loss("ragan")
class RelativisticAverageLoss(AdversarialLoss):
    """RaSGAN (Jolicoeur-Martineau 2018, Eqs. for the relativistic average standard GAN; used by ESRGAN):
    with Dr = C(x_r) - mean C(x_f) and Df = C(x_f) - mean C(x_r),
    D: BCE(Dr, 1) + BCE(Df, 0);  G: BCE(Df, 1) + BCE(Dr, 0).
    In `g_loss` the real logits are detached: they do not depend on the generator."""

    uses_real_in_g = True
    on_probability_scale = True

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real, fake = real_logits.float(), fake_logits.float()
        return _bce(real - fake.mean(), 1.0) + _bce(fake - real.mean(), 0.0)

    def g_loss(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        if real_logits is None:
            raise SrganError("the relativistic (ragan) generator loss needs the real logits")
        real, fake = real_logits.detach().float(), fake_logits.float()
        return _bce(fake - real.mean(), 1.0) + _bce(real - fake.mean(), 0.0)

