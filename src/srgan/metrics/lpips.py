"""LPIPS, the Learned Perceptual Image Patch Similarity (Zhang, Isola, Efros, Shechtman, Wang, "The
Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018), AlexNet variant
with the v0.1 linear layers: the one real-world SR papers (Real-ESRGAN, BSRGAN, StableSR) report.

Input in [0, 1] is mapped to [-1, 1] and shifted and scaled per channel (the paper's scaling layer);
AlexNet's five ReLU outputs are each unit-normalised over channels, their squared difference
weighted per channel by the non-negative `lin` layers (1x1, no bias), averaged over space and summed
over the layers. Lower is closer; identical images give 0.

Weights: AlexNet `features` under torchvision keys (`features.0` .. `features.10`) and `lin0..lin4`,
e.g. one file `lpips_alex.safetensors`, or torchvision's `alexnet-owt-7be5be79.pth` with the authors'
`alex.pth` (richzhang/PerceptualSimilarity, lpips/weights/v0.1/; keys `linK.model.1.weight`), found
as `srgan.models.pretrained` describes.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.metrics.feature_distance import METRICS, FeatureDistance
from srgan.models.pretrained import WeightsPart, find_part

TRUNK = WeightsPart("LPIPS AlexNet", ("features.",), ("lpips_alex.safetensors", "alexnet-owt-7be5be79.pth"))
LINEAR = WeightsPart("LPIPS v0.1 linear layers", ("lin",), ("lpips_alex.safetensors", "alex.pth"))
SHIFT = (-0.030, -0.088, -0.188)  # the scaling layer of the LPIPS release, on [-1, 1] input
SCALE = (0.458, 0.448, 0.450)
CHANNELS = (64, 192, 384, 256, 256)
TAPS = (1, 4, 7, 9, 11)  # relu1 .. relu5 in `features`


def alexnet_features() -> nn.Sequential:
    """torchvision's `alexnet().features` without the last max pool (ReLUs not in place)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())


def unit_normalize(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Each pixel's feature vector divided by its length (+ eps), as the paper's eq. 1."""
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


@METRICS.register("lpips")
class LPIPS(FeatureDistance):
    """`LPIPS(weights=None)(x, y)` -> (N,) distances; `weights` a file or folder (see the module docstring)."""

    name = "lpips"

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        self.net = alexnet_features()
        self.lin = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        trunk_path, trunk = find_part(TRUNK, weights)
        lin_path, lin = find_part(LINEAR, weights)
        lin = {re.sub(r"^lin(\d)\.(model\.1\.)?", r"\1.", k): v for k, v in lin.items()}
        try:
            self.net.load_state_dict({k.removeprefix("features."): v.float() for k, v in trunk.items()})
            self.lin.load_state_dict({k: v.float() for k, v in lin.items()})
        except RuntimeError as exc:
            raise SrganError(f"{trunk_path} / {lin_path} do not hold LPIPS AlexNet weights: "
                             f"{str(exc).splitlines()[-1].strip()}") from exc
        self.sources = (trunk_path, lin_path)
        self.freeze()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x * 2 - 1 - self.shift) / self.scale
        out = []
        for i, module in enumerate(self.net):
            h = module(h)
            if i in TAPS:
                out.append(unit_normalize(h))
        return out

    def compare(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        return sum(lin((a - b) ** 2).mean(dim=(1, 2, 3)) for lin, a, b in zip(self.lin, fx, fy, strict=True))
