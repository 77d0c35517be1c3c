"""Ledig et al. 2017's VGG-style discriminator (Fig. 4), with raw logits out and any input size.

Eight 3x3 convolutions 64, 64, 128, 128, 256, 256, 512, 512 with strides 1, 2, 1, 2, ... (so /16
spatially), batch norm after all but the first, LeakyReLU (slope 0.2; the fpt variant used 0.3),
then dense 1024, LeakyReLU, dense 1. No sigmoid: the losses in `srgan.losses.adversarial` take
logits, which keeps BCE finite for confident discriminators.

Any input size: the last feature map is adaptively average-pooled to 6x6 before the dense layers.
At Ledig's 96x96 training crops that map is already 6x6, so the pooling is an identity and the
network (and its parameter count) is exactly Ledig's; 128x128 crops (8x8 maps) or full images are
pooled onto the same 6x6 grid. Inputs must be at least 16x16.

Parameters (3 input channels, defaults): 23,563,649 (convs before BN carry no bias, which BN would
cancel; dense layers 18432 -> 1024 -> 1 hold 18.9M of them).
"""

from __future__ import annotations

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.models.discriminators import register_discriminator

CHANNELS = (64, 64, 128, 128, 256, 256, 512, 512)


@register_discriminator("vgg")
class VGGStyleDiscriminator(nn.Module):
    """(N, C, H, W) images in [0, 1] -> (N, 1) logits (real > 0). Images are mapped to [-1, 1]
    inside, the range Ledig et al. fed the discriminator."""

    def __init__(self, in_channels: int = 3, negative_slope: float = 0.2, width: int = 64,
                 dense: int = 1024, pool_size: int = 6) -> None:
        super().__init__()
        if not 0 <= negative_slope < 1:
            raise SrganError(f"LeakyReLU negative_slope must be in [0, 1), got {negative_slope}")
        layers: list[nn.Module] = []
        cin = in_channels
        for i, c in enumerate(CHANNELS):
            cout = c * width // 64
            stride = 1 if i % 2 == 0 else 2
            layers.append(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(negative_slope, inplace=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * pool_size * pool_size, dense),
            nn.LeakyReLU(negative_slope, inplace=True),
            nn.Linear(dense, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] < 16 or x.shape[-2] < 16:
            raise SrganError(f"discriminator needs (N, C, H, W) images of at least 16x16, got {tuple(x.shape)}")
        return self.classifier(self.pool(self.features(x * 2 - 1)))
