"""Real-ESRGAN's U-Net discriminator with spectral normalisation (Wang et al. 2021, section 3.3, Fig. 6).

A VGG-style discriminator gives one logit per image; the degradations of real photos call for a
judgement per pixel, so that the generator gets a detailed gradient where its textures look wrong.
A U-Net gives that: three stride-2 convolutions down, three bilinear x2 + convolution stages up with
skip connections, then two convolutions and a 1-channel head, so the output is one logit per input
pixel, (N, 1, H, W), read by the same adversarial losses (they average over every element).
Spectral normalisation (Miyato et al. 2018) on every convolution but the first and the last holds
each layer's largest singular value at 1, which the paper found necessary to keep the more powerful
discriminator and the complex degradations stable (and which lets it train without batch norm).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from srgan.models.discriminators import register_discriminator


def _sn_conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, kernel, stride, padding=1, bias=False))


class UNetDiscriminatorSN(nn.Module):
    def __init__(self, width: int = 64, skip: bool = True, in_channels: int = 3) -> None:
        super().__init__()
        w = width
        self.skip = skip
        self.conv0 = nn.Conv2d(in_channels, w, 3, 1, 1)
        self.down = nn.ModuleList([_sn_conv(w, 2 * w, 4, 2), _sn_conv(2 * w, 4 * w, 4, 2), _sn_conv(4 * w, 8 * w, 4, 2)])
        self.up = nn.ModuleList([_sn_conv(8 * w, 4 * w, 3, 1), _sn_conv(4 * w, 2 * w, 3, 1), _sn_conv(2 * w, w, 3, 1)])
        self.extra = nn.ModuleList([_sn_conv(w, w, 3, 1), _sn_conv(w, w, 3, 1)])
        self.head = nn.Conv2d(w, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = lambda t: F.leaky_relu(t, 0.2)
        features = [act(self.conv0(x))]
        for conv in self.down:
            features.append(act(conv(features[-1])))
        out = features.pop()
        for conv in self.up:  # back up to the input size, adding the features of the same size
            skip = features.pop()
            out = act(conv(F.interpolate(out, size=skip.shape[-2:], mode="bilinear", align_corners=False)))
            out = out + skip if self.skip else out
        for conv in self.extra:
            out = act(conv(out))
        return self.head(out)


@register_discriminator("unet")
def unet(width: int = 64, skip: bool = True) -> UNetDiscriminatorSN:
    """Real-ESRGAN's discriminator: per-pixel logits, spectral norm; `width` 64 as published."""
    return UNetDiscriminatorSN(width, skip)
