"""A frozen VGG19 feature extractor for perceptual losses, defined here (no torchvision needed).

The module layout copies torchvision's `vgg19().features` (Simonyan & Zisserman 2015, configuration
E: 16 convolutions, 37 modules), so its state-dict keys are `features.N.weight` / `features.N.bias`
and torchvision's `vgg19-dcbb9e9d.pth` or any file with those keys loads unchanged. Only the layers
up to the deepest requested one are built, which is what lets a partial file (conv1_1..conv3_4) be
used for a relu3_4 loss.

Input is RGB in [0, 1]; the ImageNet mean/std normalisation that both torchvision's weights and the
shared Caffe-derived file expect happens inside. The network is always frozen and in eval mode.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.models.pretrained import hub_checkpoints, read_state_dict

log = logging.getLogger(__name__)

TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
TORCHVISION_URL = f"https://download.pytorch.org/models/{TORCHVISION_FILE}"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Channels of the convolutions per block; "M" is 2x2 max pooling (VGG configuration E).
_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))


def _layer_names() -> list[str]:
    """Names of the 37 modules of `features`, in order: conv1_1, relu1_1, ..., relu5_4, pool5."""
    names: list[str] = []
    for b, convs in enumerate(_BLOCKS, start=1):
        for c in range(1, len(convs) + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return names


LAYER_NAMES: tuple[str, ...] = tuple(_layer_names())
LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(LAYER_NAMES)}


def _build_features(depth: int) -> nn.Sequential:
    """The first `depth` modules of torchvision's vgg19().features (ReLUs not in-place, so a conv
    output and its ReLU can both be returned)."""
    modules: list[nn.Module] = []
    cin = 3
    for convs in _BLOCKS:
        for cout in convs:
            modules += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
            cin = cout
        modules.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*modules[:depth])


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    state = read_state_dict(path, "VGG19")
    return {k: v for k, v in state.items() if k.startswith("features.")}


def _deepest_available(state: dict[str, torch.Tensor]) -> str | None:
    """The deepest ReLU a (possibly partial) state dict can compute without a gap."""
    present = {int(m.group(1)) for k in state if (m := re.match(r"features\.(\d+)\.weight$", k))}
    deepest = None
    for i, name in enumerate(LAYER_NAMES):
        if name.startswith("conv") and i not in present:
            break
        if name.startswith("relu"):
            deepest = name
    return deepest


def default_weights_path() -> Path:
    """Where torch hub caches torchvision's VGG19: <torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth."""
    return hub_checkpoints() / TORCHVISION_FILE


class VGG19Features(nn.Module):
    """Named VGG19 activations of an RGB [0, 1] batch: `forward(x) -> {layer name: tensor}`.

    `layers`: names from `LAYER_NAMES` (conv1_1 .. relu5_4, pool1 .. pool5). `weights`: a
    `.safetensors` or `.pth` file with torchvision keys (only `features.*` are used); without it
    the torch hub cache file is used, or downloaded there when `download=True`. There is no
    random-weights fallback: a perceptual loss on an untrained VGG silently trains nonsense.
    """

    def __init__(self, layers: Iterable[str] | str, weights: str | Path | None = None,
                 download: bool = False) -> None:
        super().__init__()
        self.layers = [layers] if isinstance(layers, str) else list(layers)
        if not self.layers:
            raise SrganError("VGG19Features needs at least one layer name")
        unknown = [n for n in self.layers if n not in LAYER_INDEX]
        if unknown:
            raise SrganError(f"unknown VGG19 layer {unknown[0]!r} (known: conv1_1 .. relu5_4, pool1 .. pool5)")
        self.deepest = max(self.layers, key=LAYER_INDEX.__getitem__)
        self.features = _build_features(LAYER_INDEX[self.deepest] + 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.source = self._load(weights, download)
        self.requires_grad_(False)
        self.eval()

    def _load(self, weights: str | Path | None, download: bool) -> str:
        if weights is not None:
            path = Path(weights).expanduser()
            state = _read_state_dict(path)
        else:
            path = default_weights_path()
            if path.is_file():
                state = _read_state_dict(path)
            elif download:
                log.info("downloading VGG19 weights from %s to %s", TORCHVISION_URL, path)
                loaded = torch.hub.load_state_dict_from_url(TORCHVISION_URL, map_location="cpu", progress=True,
                                                            weights_only=True)
                state = {k: v for k, v in loaded.items() if k.startswith("features.")}
            else:
                raise SrganError(
                    f"no VGG19 weights: put torchvision's {TORCHVISION_FILE} ({TORCHVISION_URL}) at {path}, "
                    "or give a weights file (e.g. perceptual weights_path), or allow download=True")
        depth = len(self.features)
        wanted = {k[len("features."):]: v.float() for k, v in state.items()
                  if (m := re.match(r"features\.(\d+)\.", k)) and int(m.group(1)) < depth}
        needed = set(self.features.state_dict())
        if not needed <= set(wanted):
            have = _deepest_available(state)
            raise SrganError(
                f"{path} has VGG19 weights only up to {have or 'nothing (no features.* keys)'}, "
                f"but layer {self.deepest} was requested; use layers up to {have} or a full VGG19 file "
                f"such as {TORCHVISION_FILE}")
        try:
            self.features.load_state_dict(wanted, strict=True)
        except RuntimeError as exc:
            raise SrganError(f"{path} does not match VGG19: {str(exc).splitlines()[-1].strip()}") from exc
        return str(path)

    def train(self, mode: bool = True) -> VGG19Features:
        """Stays in eval mode: the extractor is a fixed measuring instrument, never trained."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise SrganError(f"VGG19Features needs an RGB batch (N, 3, H, W), got {tuple(x.shape)}")
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        wanted = set(self.layers)
        out: dict[str, torch.Tensor] = {}
        for name, module in zip(LAYER_NAMES, self.features):
            h = module(h)
            if name in wanted:
                out[name] = h
        return out
