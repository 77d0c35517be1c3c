"""DISTS, Deep Image Structure and Texture Similarity (Ding, Ma, Wang, Simoncelli, "Image Quality
Assessment: Unifying Structure and Texture Similarity", TPAMI 2020).

Six feature maps per image: the RGB input itself and VGG16's relu1_2, relu2_2, relu3_3, relu4_3 and
relu5_3, with every max pool replaced by L2 pooling (square, 3x3 Hann filter [1 2 1]x[1 2 1]/16,
stride 2, zero padding 1, square root), which the authors chose because it does not alias. Per
channel, from spatial means, variances and covariance: texture term S1 = (2 mx my + c1) / (mx^2 +
my^2 + c1), structure term S2 = (2 sxy + c2) / (sx^2 + sy^2 + c2), c1 = c2 = 1e-6; DISTS = 1 -
sum(alpha S1 + beta S2) over all 1475 channels, with the learned alpha and beta normalised to sum to
1. The moments are taken around the mean (the float32 E[xy] - E[x]E[y] of the original loses ~3e-4
on flat images), the ratios in float64. No resizing, as pyiqa and the OSEDiff tables compute it.

Weights: VGG16 `features` under torchvision keys (`vgg16_features_imagenet.safetensors` or
torchvision's `vgg16-397923af.pth`) and the authors' `alpha` / `beta` (`dists_weights.pt`, which is
`DISTS_pytorch/weights.pt` of dingkeyan93/DISTS), found as `srgan.models.pretrained` describes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srgan.errors import SrganError
from srgan.metrics.feature_distance import METRICS, FeatureDistance
from srgan.models.pretrained import WeightsPart, find_part

TRUNK = WeightsPart("DISTS VGG16", ("features.",), ("vgg16_features_imagenet.safetensors", "vgg16-397923af.pth"))
ALPHA_BETA = WeightsPart("DISTS alpha/beta", ("alpha", "beta"),
                         ("dists_weights.pt", "weights.pt", "DISTS_weights-f5e65c96.pth"))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHANNELS = (3, 64, 128, 256, 512, 512)
_VGG16 = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
C1 = C2 = 1e-6


class L2Pool(nn.Module):
    """sqrt(hann3x3 * x^2), stride 2, per channel."""

    def __init__(self) -> None:
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (torch.outer(a, a) / 16).view(1, 1, 3, 3), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel.expand(x.shape[1], 1, 3, 3)
        return (F.conv2d(x * x, k, stride=2, padding=1, groups=x.shape[1]) + 1e-12).sqrt()


def vgg16_l2pool_features() -> tuple[nn.Sequential, tuple[int, ...]]:
    """torchvision's `vgg16().features` up to relu5_3 with L2 pooling (same module indices, so its
    state-dict keys load unchanged), and the indices of relu1_2 .. relu5_3."""
    modules: list[nn.Module] = []
    taps = []
    cin = 3
    for block, convs in enumerate(_VGG16):
        if block:
            modules.append(L2Pool())
        for cout in convs:
            modules += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
            cin = cout
        taps.append(len(modules) - 1)
    return nn.Sequential(*modules), tuple(taps)


@METRICS.register("dists")
class DISTS(FeatureDistance):
    """`DISTS(weights=None)(x, y)` -> (N,) distances; `weights` a file or folder (see the module docstring)."""

    name = "dists"

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        self.net, self.taps = vgg16_l2pool_features()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        trunk_path, trunk = find_part(TRUNK, weights)
        ab_path, ab = find_part(ALPHA_BETA, weights)
        try:
            self.net.load_state_dict({k.removeprefix("features."): v.float() for k, v in trunk.items()})
        except RuntimeError as exc:
            raise SrganError(f"{trunk_path} does not hold VGG16 features: {str(exc).splitlines()[-1].strip()}") from exc
        alpha, beta = ab.get("alpha"), ab.get("beta")
        if alpha is None or beta is None or alpha.numel() != sum(CHANNELS) or beta.numel() != sum(CHANNELS):
            raise SrganError(f"{ab_path} does not hold DISTS alpha and beta of {sum(CHANNELS)} channels each")
        total = alpha.double().sum() + beta.double().sum()
        self.register_buffer("alpha", (alpha.double().flatten() / total).float(), persistent=False)
        self.register_buffer("beta", (beta.double().flatten() / total).float(), persistent=False)
        self.sources = (trunk_path, ab_path)
        self.freeze()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.mean) / self.std
        out = [x]
        for i, module in enumerate(self.net):
            h = module(h)
            if i in self.taps:
                out.append(h)
        return out

    def compare(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        total = torch.zeros(fx[0].shape[0], dtype=torch.float64, device=fx[0].device)
        weights = zip(torch.split(self.alpha.double(), CHANNELS), torch.split(self.beta.double(), CHANNELS), strict=True)
        for a, b, (alpha, beta) in zip(fx, fy, weights, strict=True):
            a, b = a.flatten(2), b.flatten(2)
            vx, mx = torch.var_mean(a, dim=-1, correction=0)
            vy, my = torch.var_mean(b, dim=-1, correction=0)
            cov = ((a - mx.unsqueeze(-1)) * (b - my.unsqueeze(-1))).mean(-1)  # centred: no cancellation
            mx, my, vx, vy, cov = (t.double() for t in (mx, my, vx, vy, cov))
            s1 = (2 * mx * my + C1) / (mx**2 + my**2 + C1)
            s2 = (2 * cov + C2) / (vx + vy + C2)
            total = total + (s1 * alpha).sum(-1) + (s2 * beta).sum(-1)
        return (1 - total).clamp_min(0)  # identical images: 0, not a rounding error below it
