"""VGG19 perceptual (content) loss of Ledig et al. 2017 and its variants (VGG16 too).

    loss = sum over layers l of  w_l * criterion(s * phi_l(sr), s * phi_l(hr))

Variants: Ledig "VGG54" = {relu5_4: 1}; the fpt variant = {relu2_2: 1, relu3_2: 1, relu3_4: 1}
(Gatys' content layers); the Keras variant = {relu3_4: 1}; Real-ESRGAN's five pre-activation layers
{conv1_2: 0.1, conv2_2: 0.1, conv3_4: 1, conv4_4: 1, conv5_4: 1} with L1 on torchvision-scale features,
or their VGG16 counterparts (`network: vgg16`, conv3_3 / conv4_3 / conv5_3) where only VGG16 is whole.

Feature scale s. The shared VGG19 file (and the original Oxford/Caffe weights) produce activations on
Caffe's 0..255 input scale: relu3_4 means are in the hundreds, so an unscaled MSE is ~1e4 and swamps
a pixel MSE of ~1e-3. Ledig et al. (Sec. 2.2.1) rescaled the VGG feature maps "by a factor of 1/12.75"
to get VGG losses comparable to the MSE loss, for exactly these Caffe-scale weights; that is the
default here (`LEDIG_FEATURE_SCALE`). torchvision's retrained `vgg19-dcbb9e9d.pth` has much smaller
activations (its input is normalised, not 0..255); with it, set `feature_scale=1.0` and tune the
loss weight. With MSE the loss scales with s^2, with L1 with s.

Ledig's scale makes relu5_4 comparable to the pixel MSE, not the shallow layers the shared file
holds. Measured here (shared file, s = 1/12.75, MSE, centre 96x96 crops of Set5, bicubic x4 vs HR,
mean of 5): pixel MSE 0.0024, relu2_2 146, relu3_2 215, relu3_4 1615. So with relu2_2..relu3_4 the
perceptual term is ~1e5 x larger than in Ledig's balance against a 1e-3 adversarial term: to keep
that balance, give it a weight of ~1e-5 in the config (or divide `feature_scale` by ~300).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from srgan.errors import SrganError
from srgan.losses.registry import register_loss
from srgan.models.vgg import VGGFeatures

LEDIG_FEATURE_SCALE = 1.0 / 12.75
Criterion = Literal["mse", "l1"]


class PerceptualLoss(nn.Module):
    """Weighted VGG19 feature distance between SR and HR batches (RGB in [0, 1]); a scalar.

    `layers`: a name, a list of names (weight 1 each) or {name: weight}. `criterion`: mse or l1.
    `weights`/`download`: where the VGG19 weights come from (see `VGGFeatures`); or pass an
    existing `vgg` to share one extractor between losses. Gradients reach `sr`, never the VGG.
    """

    def __init__(self, layers: str | Sequence[str] | Mapping[str, float] = "relu5_4", *,
                 criterion: str = "mse", feature_scale: float = LEDIG_FEATURE_SCALE,
                 weights: str | Path | None = None, download: bool = False,
                 vgg: VGGFeatures | None = None, network: str = "vgg19") -> None:
        super().__init__()
        if isinstance(layers, str):
            layers = {layers: 1.0}
        elif not isinstance(layers, Mapping):
            layers = {name: 1.0 for name in layers}
        self.layer_weights = {str(k): float(v) for k, v in layers.items()}
        if not self.layer_weights:
            raise SrganError("perceptual loss needs at least one VGG layer")
        if criterion not in typing.get_args(Criterion):
            raise SrganError(f"perceptual loss criterion must be mse or l1, got {criterion!r}")
        self.criterion = F.mse_loss if criterion == "mse" else F.l1_loss
        self.feature_scale = float(feature_scale)
        if vgg is None:
            vgg = VGGFeatures(list(self.layer_weights), weights=weights, download=download, network=network)
        missing = [n for n in self.layer_weights if n not in vgg.layers]
        if missing:
            raise SrganError(f"the given VGGFeatures does not return layer {missing[0]!r}")
        self.vgg = vgg

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if sr.shape != hr.shape:
            raise SrganError(f"perceptual loss needs SR and HR of one shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
        fake = self.vgg(sr)
        with torch.no_grad():
            real = self.vgg(hr)
        s = self.feature_scale
        total = sr.new_zeros((), dtype=torch.float32)
        for name, weight in self.layer_weights.items():
            if weight:
                total = total + weight * self.criterion(fake[name].float() * s, real[name].float() * s)
        return total


@register_loss("perceptual")
def perceptual(layers: dict[str, float] | None = None, criterion: Criterion = "mse",
               feature_scale: float = LEDIG_FEATURE_SCALE, weights_path: str | None = None,
               network: Literal["vgg19", "vgg16"] = "vgg19") -> PerceptualLoss:
    """`layers` {VGG layer: weight} (default Ledig's {relu5_4: 1}); `weights_path` a VGG19 (or, with
    `network: vgg16`, VGG16) file (default: torchvision's file in the torch hub cache); the shared
    partial VGG19 file reaches relu3_4, the shared VGG16 file is whole."""
    return PerceptualLoss(layers or {"relu5_4": 1.0}, criterion=criterion, feature_scale=feature_scale,
                          weights=weights_path, network=network)
