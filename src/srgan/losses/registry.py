"""Losses by `type:` name, for the terms of a training config's `losses:` section (`srgan.registry`).

A loss is one file in srgan/losses/ that registers a factory with `@register_loss("name")`; the
factory's keyword parameters are the options a term may set next to its `type` and `weight`. A
content loss factory returns a callable (sr, hr) -> scalar tensor (an `nn.Module` when it holds
weights, like the VGG of the perceptual loss); an adversarial loss is registered as an
`AdversarialLoss` subclass, whose instances score discriminator logits for both players.
"""

from __future__ import annotations

import inspect
from typing import Any

from srgan.registry import Registry

LOSSES: Registry = Registry("loss", "srgan.losses")
register_loss = LOSSES.register


def build_loss(name: str, **options: Any) -> Any:
    """The loss registered as `name`, made with `options` (checked: unknown keys and wrong types refused)."""
    return LOSSES.build(name, options)


def is_adversarial(name: str) -> bool:
    """Whether `name` is an adversarial loss (needs a discriminator) rather than a content loss."""
    factory = LOSSES.get(name)
    return inspect.isclass(factory) and getattr(factory, "adversarial", False) is True
