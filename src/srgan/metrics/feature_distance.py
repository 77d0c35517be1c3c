"""What LPIPS and DISTS share: a frozen network compares deep features of two RGB images.

Both take RGB in [0, 1] (uint8 images are divided by 255, gray ones replicated to three channels)
and return one distance per image pair, 0 for identical images. `features(x)` and `compare(fx, fy)`
are separate so that an evaluation scoring several models against one HR image computes the HR
features once. Everything runs on the device the module is on, in float32 (the networks' own
precision; bf16 is many times slower on CPUs without it and moves the scores)."""

from __future__ import annotations

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.registry import Registry

METRICS: Registry = Registry("metric", "srgan.metrics")  # full-reference deep-feature metrics by name


def build_metric(name: str, weights: str | None = None) -> FeatureDistance:
    """The metric registered as `name` ("lpips", "dists"), its weights found as `srgan.models.pretrained` says."""
    return METRICS.build(name, {"weights": weights})


class FeatureDistance(nn.Module):
    """Frozen, always in eval mode; subclasses define `features` and `compare`."""

    name = ""

    def freeze(self) -> None:
        """No gradients for the weights, eval mode, channels-last layout (about 20% faster convolutions on CPU)."""
        self.requires_grad_(False)
        self.to(memory_format=torch.channels_last)
        self.eval()

    def train(self, mode: bool = True) -> FeatureDistance:
        return super().train(False)  # a measuring instrument, never trained

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        """(C, H, W) or (N, C, H, W), uint8 or float in [0, 1], C = 1 or 3 -> float32 (N, 3, H, W) on the device."""
        x = image.unsqueeze(0) if image.dim() == 3 else image
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise SrganError(f"{self.name.upper()} needs RGB or gray images (N, C, H, W), got {tuple(image.shape)}")
        x = x.to(self.device)
        x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        return x.contiguous(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def compare(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    @torch.inference_mode()
    def reference(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Features of the reference image(s), to compare several outputs with."""
        return self.features(self.prepare(image))

    @torch.inference_mode()
    def score(self, image: torch.Tensor, reference: list[torch.Tensor]) -> torch.Tensor:
        """Distances (N,) float64 on the CPU of `image` to the reference features."""
        return self.compare(self.features(self.prepare(image)), reference).double().cpu()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Distances (N,) between two batches of one shape (differentiable for float input)."""
        if x.shape != y.shape:
            raise SrganError(f"{self.name.upper()} compares images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        return self.compare(self.features(self.prepare(x)), self.features(self.prepare(y)))
