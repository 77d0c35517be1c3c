"""Which network a community weight file holds, told from its tensor names and shapes alone.

Community super-resolution models (OpenModelDB, the Real-ESRGAN and BasicSR releases) are bare state
dicts with no config: the architecture and its hyper-parameters are implied by the key names and the
tensor shapes. Each layout below is one small function that recognises its signature keys, renames
the tensors to srgan's module names (which are BasicSR's) and reads the hyper-parameters off the
shapes. Nothing depends on key order (safetensors sorts keys). A file that matches no layout is one
line naming a few of its keys and the layouts known.

Layouts (key facts from the published code of each project):
- ESRGAN, original repository (Wang et al. 2018): `model.0` conv_first, `model.1.sub.N.RDB1.conv1.0`
  blocks, `model.1.sub.<blocks>` trunk conv, then one conv every third index per x2 stage
  (`model.3`, `model.6`), conv_hr and conv_last (`model.8`, `model.10` at x4).
- BasicSR / Real-ESRGAN RRDBNet: `conv_first`, `body.N.rdb1.conv1`, `conv_body`, `conv_up1`,
  `conv_up2`, `conv_hr`, `conv_last`; x2 and x1 models unshuffle their input (12 or 48 channels in).
- BSRGAN (Zhang et al. 2021) and ESRGAN's later RRDBNet_arch: `conv_first`, `RRDB_trunk.N.RDB1.conv1`,
  `trunk_conv`, `upconv1`, `upconv2`, `HRconv`, `conv_last`.
- Real-ESRGAN SRVGGNetCompact: `body.0` conv, `body.1` PReLU, ..., the last `body.N` conv.
- BasicSR MSRResNet: `conv_first`, `body.N.conv1`, `body.N.conv2`, `upconv1`, [`upconv2`], `conv_hr`,
  `conv_last`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from srgan.errors import SrganError
from srgan.models.generator import GeneratorConfig

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Detected:
    """A recognised file: its layout's name, the network's config, and its tensors under srgan's names
    (tensors no rule renames keep their own name, so a fit check reports them as unexpected)."""

    layout: str
    config: GeneratorConfig
    state: State


Detector = Callable[[str, State], "Detected | None"]
LAYOUTS: dict[str, Callable[[State], Detected | None]] = {}
"""Layout name -> its detector, in the order they are tried."""


def register_layout(name: str) -> Callable[[Detector], Detector]:
    """Decorator: a detector `fn(name, state)` -> Detected, or None if the file is not in this layout."""

    def add(fn: Detector) -> Detector:
        LAYOUTS[name] = functools.partial(fn, name)
        return fn

    return add


def detect(state: State) -> Detected:
    """The layout, architecture and hyper-parameters of a bare state dict (containers already unwrapped)."""
    for detector in LAYOUTS.values():
        found = detector(state)
        if found is not None:
            return found
    keys = sorted(state)
    sample = ", ".join(keys[:4]) + (f", ... ({len(keys)} tensors)" if len(keys) > 4 else "")
    raise SrganError(f"unknown weight layout (found {sample or 'no tensors'}); supported: "
                     f"{', '.join(LAYOUTS)}, and srgan's own .safetensors (an srgan state dict without "
                     "its config needs preset=NAME)")


# ---------------------------------------------------------------- helpers
def _indices(state: State, pattern: str) -> list[int]:
    """The sorted distinct integers captured by `pattern` (one group) over the keys."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for key in state if (m := regex.fullmatch(key))})


def _shape(state: State, key: str, layout: str, dims: int = 4) -> tuple[int, ...]:
    tensor = state.get(key)
    if tensor is None:
        raise SrganError(f"looks like {layout} weights but has no {key}")
    if tensor.dim() != dims:
        raise SrganError(f"looks like {layout} weights but {key} has shape {tuple(tensor.shape)}")
    return tuple(tensor.shape)


def _rename(state: State, rules: list[tuple[str, str]]) -> State:
    """Each key renamed by the first rule (regex, replacement) that matches it in full, else kept."""
    compiled = [(re.compile(p), r) for p, r in rules]
    renamed = {}
    for key, tensor in state.items():
        new = next((rx.sub(r, key) for rx, r in compiled if rx.fullmatch(key)), key)
        renamed[new] = tensor
    return renamed


def _rrdbnet(layout: str, state: State) -> Detected:
    """An RRDBNet under BasicSR's names: hyper-parameters from conv_first, conv_last and block 0."""
    from srgan.models.rrdbnet import RRDBNetConfig

    width, cin = _shape(state, "conv_first.weight", layout)[:2]
    cout = _shape(state, "conv_last.weight", layout)[0]
    growth = _shape(state, "body.0.rdb1.conv1.weight", layout)[0]
    blocks = len(_indices(state, r"body\.(\d+)\.rdb1\.conv1\.weight"))
    stages = len(_indices(state, r"conv_up(\d+)\.weight"))
    unshuffle = {4 * cout: 2, 16 * cout: 4}.get(cin, 1)  # Real-ESRGAN x2 / x1: RGB folded into 12 / 48 channels
    if 2**stages < unshuffle:
        raise SrganError(f"{layout} weights with {cin} input channels and {stages} upsampling stages "
                         "are not a network srgan knows")
    config = RRDBNetConfig(scale=2**stages // unshuffle, in_channels=cin // unshuffle**2, out_channels=cout,
                           width=width, blocks=blocks, growth=growth, pixel_unshuffle=unshuffle)
    return Detected(layout, config, state)


# ---------------------------------------------------------------- one function per layout
@register_layout("ESRGAN (original model.N layout)")
def esrgan_old(layout: str, state: State) -> Detected | None:
    """ESRGAN's original `model.N` Sequential layout."""
    if "model.0.weight" not in state or not _indices(state, r"model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight"):
        return None
    trunk = max(_indices(state, r"model\.1\.sub\.(\d+)\.weight"), default=None)  # the conv after the blocks
    convs = [i for i in _indices(state, r"model\.(\d+)\.weight") if i >= 2]
    if len(convs) < 2:
        raise SrganError(f"looks like {layout} weights but has no conv_hr / conv_last (model.N.weight, N >= 2)")
    *ups, hr, last = convs
    rules = [(r"model\.0\.(weight|bias)", r"conv_first.\1"),
             (r"model\.1\.sub\.(\d+)\.RDB([1-3])\.conv([1-5])\.0\.(weight|bias)", r"body.\1.rdb\2.conv\3.\4"),
             (rf"model\.1\.sub\.{trunk}\.(weight|bias)", r"conv_body.\1"),  # matches nothing if None
             (rf"model\.{hr}\.(weight|bias)", r"conv_hr.\1"),
             (rf"model\.{last}\.(weight|bias)", r"conv_last.\1")]
    rules += [(rf"model\.{index}\.(weight|bias)", rf"conv_up{i}.\1") for i, index in enumerate(ups, start=1)]
    return _rrdbnet(layout, _rename(state, rules))


@register_layout("ESRGAN (BasicSR / Real-ESRGAN layout)")
def rrdbnet_basicsr(layout: str, state: State) -> Detected | None:
    """BasicSR / Real-ESRGAN RRDBNet: srgan's own names."""
    if "conv_first.weight" not in state or not _indices(state, r"body\.(\d+)\.rdb1\.conv1\.weight"):
        return None
    return _rrdbnet(layout, state)


@register_layout("ESRGAN (BSRGAN layout)")
def rrdbnet_bsrgan(layout: str, state: State) -> Detected | None:
    """BSRGAN's (and ESRGAN's later RRDBNet_arch) names."""
    if "conv_first.weight" not in state or not _indices(state, r"RRDB_trunk\.(\d+)\.RDB1\.conv1\.weight"):
        return None
    rules = [(r"RRDB_trunk\.(\d+)\.RDB([1-3])\.conv([1-5])\.(weight|bias)", r"body.\1.rdb\2.conv\3.\4"),
             (r"trunk_conv\.(weight|bias)", r"conv_body.\1"),
             (r"upconv(\d+)\.(weight|bias)", r"conv_up\1.\2"),
             (r"HRconv\.(weight|bias)", r"conv_hr.\1")]
    return _rrdbnet(layout, _rename(state, rules))


@register_layout("Real-ESRGAN Compact (SRVGGNetCompact)")
def srvgg_compact(layout: str, state: State) -> Detected | None:
    """Real-ESRGAN's SRVGGNetCompact: `body.N` alone, convs at even N and PReLUs at odd N."""
    from srgan.models.srvgg_compact import SRVGGCompactConfig

    if "body.0.weight" not in state or "conv_first.weight" in state:
        return None
    width, cin = _shape(state, "body.0.weight", layout)[:2]
    indices = _indices(state, r"body\.(\d+)\.weight")
    convs = [i for i in indices if state[f"body.{i}.weight"].dim() == 4]
    slopes = state.get("body.1.weight")
    if slopes is None or tuple(slopes.shape) != (width,):
        raise SrganError(f"{layout} weights need one PReLU slope per channel in body.1.weight "
                         "(ReLU and LeakyReLU models cannot be told apart from their files)")
    last = _shape(state, f"body.{convs[-1]}.weight", layout)[0]
    scale = math.isqrt(last // cin)
    if last % cin or scale * scale * cin != last:
        raise SrganError(f"{layout} weights end in {last} channels, not {cin} x scale^2")
    config = SRVGGCompactConfig(scale=scale, in_channels=cin, out_channels=cin, width=width, convs=len(convs) - 2)
    return Detected(layout, config, state)


@register_layout("BasicSR MSRResNet")
def msrresnet_basicsr(layout: str, state: State) -> Detected | None:
    """BasicSR's MSRResNet."""
    from srgan.models.msrresnet import MSRResNetConfig

    if "conv_first.weight" not in state or not _indices(state, r"body\.(\d+)\.conv1\.weight"):
        return None
    width, cin = _shape(state, "conv_first.weight", layout)[:2]
    up = _shape(state, "upconv1.weight", layout)[0]
    scale = 4 if "upconv2.weight" in state else math.isqrt(up // width)
    config = MSRResNetConfig(scale=scale, in_channels=cin, out_channels=_shape(state, "conv_last.weight", layout)[0],
                             width=width, blocks=len(_indices(state, r"body\.(\d+)\.conv1\.weight")))
    return Detected(layout, config, state)

