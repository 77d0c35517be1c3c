"""The MIT variant's "fftGAN" discriminator, and a spatial + spectral combination of it with Ledig's.

fftGAN (MIT report, Sec. 4.3): "passing the input image through a non-trainable FFT layer, extracting
the magnitudes, and passing the result through two dense layers". Natural images share a spectrum
falling off with frequency; generators leave periodic artefacts (upsampling checkerboards) that
stand out there.

Here: the real 2-D FFT of each channel (orthonormal scaling, so the expected power of a stationary
texture at a given normalised frequency does not depend on the image size), its log magnitude
log(|F| + eps), centred along the vertical frequency (fftshift; the horizontal half-spectrum of a
real image already starts at 0). Input-size independence: the log spectrum, of shape (H, W//2 + 1),
is adaptively average-pooled onto a fixed grid of `grid` x (`grid`//2 + 1) cells, each covering
the same band of normalised frequencies (cycles per pixel) whatever the image size; averaging log
magnitudes within a band is a geometric mean of the band's magnitudes. The FFT always runs in
float32, also under autocast (bf16 FFTs are not supported and would be too coarse anyway).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.models.discriminator import VGGStyleDiscriminator
from srgan.models.discriminators import DISCRIMINATORS, register_discriminator


def log_magnitude_spectrum(x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W//2 + 1) float32 log|rfft2(x)|, zero vertical frequency at row H//2."""
    with torch.autocast(x.device.type, enabled=False):
        spectrum = torch.fft.rfft2(x.float(), norm="ortho")
        return torch.fft.fftshift(torch.log(spectrum.abs() + eps), dim=-2)


@register_discriminator("fft")
class FFTDiscriminator(nn.Module):
    """(N, C, H, W) images in [0, 1] -> (N, 1) logits, from the log-magnitude spectrum only.

    Parameters (defaults: 3 channels, grid 32 -> 3 x 32 x 17 = 1632 features, hidden 1024):
    1,673,217 (two dense layers: 1632 x 1024 + 1024, then 1024 + 1).
    """

    def __init__(self, in_channels: int = 3, grid: int = 32, hidden: int = 1024,
                 negative_slope: float = 0.2, eps: float = 1e-4) -> None:
        super().__init__()
        if grid < 2:
            raise SrganError(f"fft discriminator grid must be at least 2, got {grid}")
        self.eps = eps
        self.pool = nn.AdaptiveAvgPool2d((grid, grid // 2 + 1))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * grid * (grid // 2 + 1), hidden),
            nn.LeakyReLU(negative_slope, inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise SrganError(f"fft discriminator needs (N, C, H, W) images, got {tuple(x.shape)}")
        with torch.autocast(x.device.type, enabled=False):
            return self.classifier(self.pool(log_magnitude_spectrum(x, self.eps)))


class CombinedDiscriminator(nn.Module):
    """Spatial (Ledig VGG-style) and spectral (fftGAN) discriminators judging the same image.

    `forward` returns ONE logit per image, spatial_weight * spatial + spectral_weight * spectral,
    so it drops into every adversarial loss unchanged (for BCE, sigmoid of a sum of logits is a
    product of the two experts' odds: the image must look real in both domains). `parts(x)` returns
    the two logits separately, for logging or for a trainer that prefers a loss per discriminator.
    """

    def __init__(self, spatial: VGGStyleDiscriminator | None = None, spectral: FFTDiscriminator | None = None,
                 spatial_weight: float = 1.0, spectral_weight: float = 1.0) -> None:
        super().__init__()
        self.spatial = spatial if spatial is not None else VGGStyleDiscriminator()
        self.spectral = spectral if spectral is not None else FFTDiscriminator()
        self.spatial_weight = float(spatial_weight)
        self.spectral_weight = float(spectral_weight)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(spatial logits, spectral logits), each (N, 1)."""
        return self.spatial(x), self.spectral(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial, spectral = self.parts(x)
        return self.spatial_weight * spatial.float() + self.spectral_weight * spectral.float()


@register_discriminator("both")
def spatial_and_spectral(in_channels: int = 3, negative_slope: float = 0.2, vgg: dict[str, Any] | None = None,
                         fft: dict[str, Any] | None = None, spatial_weight: float = 1.0,
                         spectral_weight: float = 1.0) -> CombinedDiscriminator:
    """Both discriminators on one image: `in_channels` and `negative_slope` go to both parts,
    `vgg: {...}` and `fft: {...}` to one part each (their own options, checked)."""
    shared = {"in_channels": in_channels, "negative_slope": negative_slope}
    spatial = DISCRIMINATORS.build("vgg", {**shared, **(vgg or {})}, prefix="vgg.")
    spectral = DISCRIMINATORS.build("fft", {**shared, **(fft or {})}, prefix="fft.")
    return CombinedDiscriminator(spatial, spectral, spatial_weight, spectral_weight)
