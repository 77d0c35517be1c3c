"""What every generator architecture provides, so that weight files, tiling, ONNX export and the
trainer work with any registered architecture instead of one class.

An architecture is one file in `srgan/models/` (srresnet.py is the model to copy): a frozen config
dataclass deriving from `GeneratorConfig`, a network deriving from `Generator` and registered with
`@register_architecture(name, Config)`, and its presets (`@register`, srgan.models.registry).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from torch import nn

from srgan.errors import SrganError
from srgan.options import from_dict

MAX_SCALE = 8  # upscaling factor
MAX_CHANNELS = 64  # image channels in and out
MAX_WIDTH = 1024  # feature channels (published generators use 32 to 256)
MAX_DEPTH = 256  # blocks or layers (published generators use 16 to 32; building 256 on the meta device takes 0.5 s)


class GeneratorConfig:
    """Base of an architecture's frozen config dataclass, which must have the fields `scale`,
    `in_channels` and `out_channels` (checked when the architecture is registered)."""

    scale: int
    in_channels: int
    out_channels: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        """The config from `to_dict()`'s output (a weights file's metadata); keys and types are checked."""
        return from_dict(cls, values, what="generator setting")

    def replace(self, **overrides: Any) -> Any:
        """A copy with `overrides` applied, checked like `from_dict`."""
        return self.from_dict({**self.to_dict(), **overrides}) if overrides else self

    def check_positive(self, *fields: str, most: int | None = None) -> None:
        """For `__post_init__`: one line naming the first of `fields` that is not a positive integer,
        or is above `most`. Every size deserves a bound (`MAX_*`): a weights file's header names the
        network to build, and one asking for ten million blocks must be refused, not built."""
        for name in fields:
            value = int(getattr(self, name))
            if value < 1 or (most is not None and value > most):
                bound = f" up to {most}" if most is not None else ""
                raise SrganError(f"{name} must be a positive integer{bound}, got {getattr(self, name)}")

    def folds_into(self, other: GeneratorConfig) -> bool:
        """Whether this network, once its batch norms are folded into its convolutions
        (`srgan.models.fuse.fold_batch_norms`, exact), is the network of `other`: then `model.init`
        may start an `other` run from these weights. Architectures with a batch-norm switch say so."""
        return False


class Generator(nn.Module):
    """LR images in [0, 1] (N, in_channels, h, w) -> SR images (N, out_channels, scale*h, scale*w),
    unclamped. `architecture` and `config_class` are set by `register_architecture`."""

    architecture: ClassVar[str] = ""
    config_class: ClassVar[type[GeneratorConfig]]

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    @property
    def out_channels(self) -> int:
        return self.config.out_channels

    def context(self) -> int | None:
        """How far, in LR pixels, one output pixel looks into the input. Tiles carrying this much real
        image around them give exactly the whole-image result (`srgan.inference.tiling`); None means
        unbounded (global pooling, attention over the image), and tiles are blended instead."""
        raise NotImplementedError(f"{type(self).__name__} must say how far it looks: define context()")

    def input_multiple(self) -> int:
        """Tiles start, and away from the image's end stop, on multiples of this many input pixels, as
        the whole image does: more than 1 for networks that fold blocks of pixels into channels (pixel
        unshuffle), whose result depends on where the blocks fall. 1 by default."""
        return 1

    def basicsr_class(self) -> str | None:
        """The BasicSR / Real-ESRGAN class whose state-dict keys and computation this network matches
        exactly, so its state dict is a file those tools read (`srgan export --layout basicsr`); None
        if there is none."""
        return None

    def rewrite_for_inference(self) -> None:
        """Exact rewrites of this architecture for speed, applied to an eval-mode copy after its batch
        norms are folded (`srgan.inference.engine.prepare_model`). None by default."""


_POINTWISE = (nn.BatchNorm2d, nn.SyncBatchNorm, nn.Identity, nn.Dropout, nn.Dropout2d)


def chain_context(*stages: nn.Module) -> int:
    """The exact LR context of `stages` run one after another, each a layer or a container whose
    layers run in registration order (a residual skip adds no reach).

    Walking back from the output, the reach grows by a convolution's padding-centred half kernel at
    the resolution it runs at, and an x f upsampling (PixelShuffle, nearest `Upsample`, transposed
    convolution) maps it to the input as the f outputs of each input pixel see it: ceil(reach / f),
    plus the transposed kernel's own reach. Element-wise layers add nothing; any other layer is an
    error, so a new kind of layer cannot silently make tiling inexact.
    """
    layers = [m for stage in stages for m in stage.modules() if next(m.children(), None) is None]
    reach = 0  # in pixels at the resolution of the layer being walked, from the output back
    for layer in reversed(layers):
        if isinstance(layer, nn.Conv2d) and layer.stride == (1, 1) and not isinstance(layer.padding, str):
            reach += max(max(p, d * (k - 1) - p) for k, d, p in zip(layer.kernel_size, layer.dilation, layer.padding))
        elif isinstance(layer, nn.ConvTranspose2d) and layer.dilation == (1, 1) and len(set(layer.stride)) == 1:
            s = layer.stride[0]
            reach = max(max((reach + k - 1 - p) // s, (reach + s - 1 + p) // s)
                        for k, p in zip(layer.kernel_size, layer.padding))
        elif isinstance(layer, nn.PixelShuffle):
            reach = -(-reach // layer.upscale_factor)
        elif isinstance(layer, nn.Upsample) and layer.mode == "nearest" and (f := _integer_factor(layer.scale_factor)):
            reach = -(-reach // f)
        elif not (isinstance(layer, _POINTWISE) or _is_activation(layer)):
            raise SrganError(f"chain_context cannot tell how far {layer} looks: compute context() by hand")
    return reach


def _integer_factor(factor: Any) -> int | None:
    if factor is None:
        return None
    values = set(factor) if isinstance(factor, tuple) else {factor}
    if len(values) == 1 and float(value := values.pop()).is_integer():
        return int(value)
    return None


def _is_activation(layer: nn.Module) -> bool:
    """Element-wise (per pixel) activations: everything in torch.nn.modules.activation but attention."""
    return type(layer).__module__ == "torch.nn.modules.activation" and not isinstance(layer, nn.MultiheadAttention)


def scaled_msra_init(convs: list[nn.Conv2d], scale: float) -> None:
    """He (MSRA) normal initialisation scaled down by `scale`, biases zero: the "smaller
    initialisation" ESRGAN uses for its deep residual-in-residual trunk (Wang et al. 2018, Sec. 3.1),
    with which a very deep network without batch norm starts close to the identity and trains stably."""
    for conv in convs:
        if conv.weight.is_meta:  # shapes only (counting parameters): nothing to draw, and drawing is slow there
            continue
        nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
        conv.weight.data.mul_(scale)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
