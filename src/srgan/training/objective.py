"""The generator and discriminator objectives of a run, assembled from the config's `losses` terms
and `discriminator` through their registries.

Generator loss = the weighted sum of the terms with weight > 0, in config order, the adversarial
term last. Each term is returned as a float for the log as well, under its term name, never as a
tensor (so no graph is kept).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from srgan.training.config import Config


def build_discriminator_from_config(config: Config) -> nn.Module:
    from srgan.models.discriminators import DISCRIMINATORS

    options = dict(config.discriminator)  # checked and converted when the config was made
    return DISCRIMINATORS.get(options.pop("type"))(**options)


def _build_term(term: dict[str, Any], name: str) -> Any:
    from srgan.losses.registry import LOSSES

    options = {k: v for k, v in term.items() if k not in ("type", "weight")}  # checked when the config was made
    return LOSSES.get(term["type"], f"losses.{name}.type")(**options)


class GeneratorObjective(nn.Module):
    def __init__(self, config: Config) -> None:
        from srgan.losses.registry import is_adversarial

        super().__init__()
        self.terms: list[tuple[str, float, Any]] = []  # content losses: (name, weight, (sr, hr) -> loss)
        self.adversarial: tuple[str, float, Any] | None = None
        self.holders = nn.ModuleList()  # terms with weights or buffers (the VGG), so .to(device) moves them
        for name, term in config.losses.items():
            if term["weight"] <= 0:
                continue
            loss = _build_term(term, name)
            if isinstance(loss, nn.Module):
                self.holders.append(loss)
            if is_adversarial(term["type"]):
                self.adversarial = (name, term["weight"], loss)
            else:
                self.terms.append((name, term["weight"], loss))
        self.needs_real_logits = self.adversarial is not None and self.adversarial[2].uses_real_in_g

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, fake_logits: Any, real_logits: Any
                ) -> tuple[torch.Tensor, dict[str, float]]:
        total = sr.new_zeros(())
        stats: dict[str, float] = {}
        for name, weight, loss in self.terms:
            term = loss(sr, hr)
            total = total + weight * term
            stats[name] = float(term.detach())
        if self.adversarial is not None and fake_logits is not None:
            name, weight, loss = self.adversarial
            term = loss.g_loss(real_logits, fake_logits)
            total = total + weight * term
            stats[name] = float(term.detach())
        stats["g"] = float(total.detach())
        return total, stats


class DiscriminatorObjective:
    """Discriminator loss and the D(real)/D(fake) means that show whether D has won: probabilities
    (sigmoid of the logits) where the loss reads logits that way (BCE, RaGAN), raw outputs otherwise
    (least squares, hinge)."""

    def __init__(self, config: Config) -> None:
        from srgan.losses.registry import is_adversarial

        name, term = next((n, t) for n, t in config.losses.items() if is_adversarial(t["type"]))
        self.loss = _build_term(term, name)
        self.probability = self.loss.on_probability_scale

    def __call__(self, real_logits: Any, fake_logits: Any) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.loss.d_loss(real_logits, fake_logits)
        stats = {"d": float(loss.detach()), "D(real)": self._mean(real_logits), "D(fake)": self._mean(fake_logits)}
        return loss, stats

    def _mean(self, logits: Any) -> float:
        if isinstance(logits, (list, tuple)):
            return sum(self._mean(x) for x in logits) / len(logits)
        x = logits.detach().float()
        return float(torch.sigmoid(x).mean() if self.probability else x.mean())
