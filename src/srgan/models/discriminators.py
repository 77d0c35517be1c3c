"""Discriminators by `type:` name (`srgan.registry`): a training config's `discriminator:` section
names one (`type: vgg`, its options beside it), and `build_discriminator(type, **options)` makes it.

Each discriminator is registered where it is defined (discriminator.py: vgg; spectral_discriminator.py:
fft, both); its constructor's keyword parameters are its options, so a typo in YAML is refused with
the known ones. Every one returns (N, 1) raw logits.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from srgan.registry import Registry

DISCRIMINATORS: Registry = Registry("discriminator", "srgan.models")
register_discriminator = DISCRIMINATORS.register


def build_discriminator(name: str, **options: Any) -> nn.Module:
    """A fresh discriminator of type `name` with `options` (checked against its parameters)."""
    return DISCRIMINATORS.build(name, options)
