"""Network interpolation, the strength control of the GAN models (Wang et al. 2018, ESRGAN section 4.4):
the weights of a PSNR-oriented model and of the GAN model fine-tuned from it, blended parameter by
parameter, theta = (1 - s) theta_PSNR + s theta_GAN, move the output continuously from the smooth
PSNR result (s = 0) to the GAN's textures (s = 1) at one network's cost, without the ringing and
noise of blending the two output images. It is exact arithmetic for any two networks of one
architecture, but meaningful only where one was trained from the other (the blend of unrelated
weights is not between them), so it is offered for the shipped pairs alone.
"""

from __future__ import annotations

import torch

from srgan.errors import SrganError
from srgan.models.generator import Generator

# GAN model -> the PSNR model it was fine-tuned from (same preset, same trunk)
STRENGTH_PAIRS = {"srgan_x4": "srresnet_x4", "srgan_real_x4": "srresnet_real_x4"}


def strength_partner(model: object) -> str:
    """The PSNR partner of a shipped GAN model name; one line saying which models take a strength otherwise."""
    from srgan.models.weights import shipped_weights

    shipped = set(shipped_weights())
    pairs = [gan for gan, psnr in STRENGTH_PAIRS.items() if {gan, psnr} <= shipped]
    if not isinstance(model, str) or model not in pairs:
        raise SrganError(f"--strength blends a shipped GAN model with the PSNR model it was trained from: it applies "
                         f"to {', '.join(pairs) or 'none'}, not to {model!r}")
    return STRENGTH_PAIRS[model]


def blend_weights(psnr: Generator, gan: Generator, strength: float) -> Generator:
    """`gan` with every floating tensor replaced by (1 - strength) psnr + strength gan, in place."""
    theirs = psnr.state_dict()
    mine = gan.state_dict()
    if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
        raise SrganError("the two networks of a strength blend must have the same architecture")
    with torch.no_grad():
        for key, tensor in mine.items():
            if tensor.is_floating_point():
                tensor.copy_(torch.lerp(theirs[key].to(tensor.dtype), tensor, strength))
    return gan


def blended_model(name: str, strength: float) -> Generator:
    """The shipped GAN model `name` at `strength` in [0, 1] (1: the GAN model itself, 0: its PSNR partner)."""
    from srgan.models.weights import load_model

    partner = strength_partner(name)
    return blend_weights(load_model(partner), load_model(name), float(strength))
