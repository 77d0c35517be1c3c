"""Degradations: how an HR training crop becomes its LR input, by `type:` name (`data.degradation`).

A degradation is one file here that registers a factory with `@register_degradation("name")`; the
factory's keyword parameters are the options a config may set beside `type`. The factory returns a
callable `(hr, scale, rng) -> lr`: `hr` a float32 (3, H, W) tensor in [0, 1] with H and W multiples
of `scale`, `lr` float32 (3, H / scale, W / scale) in [0, 1] on the 8-bit grid, and every random
choice drawn from `rng` (a numpy Generator seeded per sample), so a sample is a pure function of
(seed, sample id) in any worker (see `srgan.data.dataset`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from srgan.registry import Registry

Degradation = Callable[[torch.Tensor, int, np.random.Generator], torch.Tensor]

DEGRADATIONS: Registry = Registry("degradation", "srgan.data.degradations")
register_degradation = DEGRADATIONS.register


def build_degradation(spec: Mapping[str, Any] | None, prefix: str = "data.degradation.") -> Degradation:
    """The degradation a config's `{type: name, options...}` names (None: the bicubic protocol)."""
    options = dict(spec or {"type": "bicubic"})
    return DEGRADATIONS.build(options.pop("type", "bicubic"), options, prefix=prefix)
