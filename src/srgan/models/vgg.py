"""A frozen VGG19 or VGG16 feature extractor for perceptual losses, defined here (no torchvision needed).

The module layout copies torchvision's `vgg19().features` / `vgg16().features` (Simonyan & Zisserman
2015, configurations E and D: 16 or 13 convolutions, 37 or 31 modules), so the state-dict keys are
`features.N.weight` / `features.N.bias` and torchvision's `vgg19-dcbb9e9d.pth` / `vgg16-397923af.pth`
or any file with those keys loads unchanged. Only the layers
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

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Channels of the convolutions per block, each block ending in 2x2 max pooling (configurations E, D),
# and torchvision's file of each network
BLOCKS = {"vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
          "vgg16": ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3)}
FILES = {"vgg19": "vgg19-dcbb9e9d.pth", "vgg16": "vgg16-397923af.pth"}
TORCHVISION_FILE = FILES["vgg19"]
TORCHVISION_URL = f"https://download.pytorch.org/models/{TORCHVISION_FILE}"


def layer_names(network: str = "vgg19") -> tuple[str, ...]:
    """Names of the modules of `features`, in order: conv1_1, relu1_1, ..., relu5_4 (5_3), pool5."""
    names: list[str] = []
    for b, convs in enumerate(BLOCKS[network], start=1):
        for c in range(1, len(convs) + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = layer_names("vgg19")


def _build_features(depth: int, network: str = "vgg19") -> nn.Sequential:
    """The first `depth` modules of torchvision's vgg19().features (or vgg16's; ReLUs not in-place,
    so a conv output and its ReLU can both be returned)."""
    modules: list[nn.Module] = []
    cin = 3
    for convs in BLOCKS[network]:
        for cout in convs:
            modules += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
            cin = cout
        modules.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*modules[:depth])


def _read_state_dict(path: Path, what: str = "VGG19") -> dict[str, torch.Tensor]:
    state = read_state_dict(path, what)
    return {k: v for k, v in state.items() if k.startswith("features.")}


def _deepest_available(state: dict[str, torch.Tensor], network: str = "vgg19") -> str | None:
    """The deepest ReLU a (possibly partial) state dict can compute without a gap."""
    present = {int(m.group(1)) for k in state if (m := re.match(r"features\.(\d+)\.weight$", k))}
    deepest = None
    for i, name in enumerate(layer_names(network)):
        if name.startswith("conv") and i not in present:
            break
        if name.startswith("relu"):
            deepest = name
    return deepest


def default_weights_path(network: str = "vgg19") -> Path:
    """Where torch hub caches torchvision's file: <torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth."""
    return hub_checkpoints() / FILES[network]


class VGGFeatures(nn.Module):
    """Named VGG19 (or VGG16) activations of an RGB [0, 1] batch: `forward(x) -> {layer name: tensor}`.

    `layers`: names from `layer_names(network)` (conv1_1 .. relu5_4 or relu5_3, pool1 .. pool5).
    `weights`: a `.safetensors` or `.pth` file with torchvision keys (only `features.*` are used);
    without it the torch hub cache file is used, or downloaded there when `download=True`. There is
    no random-weights fallback: a perceptual loss on an untrained VGG silently trains nonsense.
    """

    def __init__(self, layers: Iterable[str] | str, weights: str | Path | None = None,
                 download: bool = False, network: str = "vgg19") -> None:
        super().__init__()
        if network not in BLOCKS:
            raise SrganError(f"unknown VGG network {network!r} (known: {', '.join(BLOCKS)})")
        self.network, self.what = network, network.upper()
        self.names = layer_names(network)
        index = {name: i for i, name in enumerate(self.names)}
        self.layers = [layers] if isinstance(layers, str) else list(layers)
        if not self.layers:
            raise SrganError(f"{self.what} features need at least one layer name")
        unknown = [n for n in self.layers if n not in index]
        if unknown:
            raise SrganError(f"unknown {self.what} layer {unknown[0]!r} "
                             f"(known: conv1_1 .. {self.names[-2]}, pool1 .. pool5)")
        self.deepest = max(self.layers, key=index.__getitem__)
        self.features = _build_features(index[self.deepest] + 1, network)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.source = self._load(weights, download)
        self.requires_grad_(False)
        self.eval()

    def _load(self, weights: str | Path | None, download: bool) -> str:
        file = FILES[self.network]
        url = f"https://download.pytorch.org/models/{file}"
        if weights is not None:
            path = Path(weights).expanduser()
            state = _read_state_dict(path, self.what)
        else:
            path = default_weights_path(self.network)
            if path.is_file():
                state = _read_state_dict(path, self.what)
            elif download:
                log.info("downloading %s weights from %s to %s", self.what, url, path)
                loaded = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True, weights_only=True)
                state = {k: v for k, v in loaded.items() if k.startswith("features.")}
            else:
                raise SrganError(
                    f"no {self.what} weights: put torchvision's {file} ({url}) at {path}, "
                    "or give a weights file (e.g. perceptual weights_path), or allow download=True")
        depth = len(self.features)
        wanted = {k[len("features."):]: v.float() for k, v in state.items()
                  if (m := re.match(r"features\.(\d+)\.", k)) and int(m.group(1)) < depth}
        needed = set(self.features.state_dict())
        if not needed <= set(wanted):
            have = _deepest_available(state, self.network)
            raise SrganError(
                f"{path} has {self.what} weights only up to {have or 'nothing (no features.* keys)'}, "
                f"but layer {self.deepest} was requested; use layers up to {have} or a full {self.what} file "
                f"such as {file}")
        try:
            self.features.load_state_dict(wanted, strict=True)
        except RuntimeError as exc:
            raise SrganError(f"{path} does not match {self.what}: {str(exc).splitlines()[-1].strip()}") from exc
        return str(path)

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stays in eval mode: the extractor is a fixed measuring instrument, never trained."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise SrganError(f"{self.what} features need an RGB batch (N, 3, H, W), got {tuple(x.shape)}")
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        wanted = set(self.layers)
        out: dict[str, torch.Tensor] = {}
        for name, module in zip(self.names, self.features):
            h = module(h)
            if name in wanted:
                out[name] = h
        return out
