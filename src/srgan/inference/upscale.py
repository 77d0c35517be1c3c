"""`srgan.upscale(image, ...)`: super-resolve a PIL image, numpy array or tensor and return the same kind.

Data flow: image -> `LoadedImage` (float colour + optional alpha) -> model via `tiled_forward` ->
optional colour fix and low-pass -> optional resize to `outscale` -> the caller's kind.

- Alpha (Real-ESRGAN #291): colour is premultiplied by alpha before the model and divided by the
  super-resolved alpha after, so transparent (often black) pixels do not bleed a dark fringe into
  the edges. Alpha itself goes through the model as a gray image (`alpha="model"`) or is resized
  bicubically (`alpha="bicubic"`).
- Grayscale is replicated to RGB for the model and averaged back to one channel.
- `outscale`: the model's output is resized to `outscale` x the input with antialiased bicubic
  interpolation on floats, before rounding. PyTorch's (Keys cubic, antialiased when shrinking, like
  MATLAB's) rather than `srgan.imaging.imresize`, whose dense resize matrices would need hundreds of MB
  for an 8000-pixel output, and rather than PIL, which works on 8-bit data.
- Models given by name or path are loaded once and cached per (file, device, precision, backend).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from srgan.errors import SrganError
from srgan.imaging.io import LoadedImage, from_pil, to_pil
from srgan.inference.colorfix import METHODS as COLOR_FIXES
from srgan.inference.colorfix import color_fix as apply_color_fix
from srgan.inference.engine import prepare_model, resolve_device, resolve_precision
from srgan.inference.lowpass import apply_lowpass, parse_lowpass
from srgan.inference.tiling import tiled_forward
from srgan.models.weights import DEFAULT_MODEL

log = logging.getLogger(__name__)

ALPHA_MODES = ("model", "bicubic")
BACKENDS = ("torch", "onnxruntime")
_EPS = 1.0 / 1024  # alpha below this is "transparent": its colour is undefined, written as 0
_CACHE: dict[tuple, Runner] = {}
_CACHE_SIZE = 4
_ONNX_DIR: tempfile.TemporaryDirectory | None = None


@dataclass
class Runner:
    """A model ready to run: the callable `tiled_forward` drives, its scale, device and dtype."""

    model: Callable[[torch.Tensor], torch.Tensor]
    scale: int
    device: torch.device
    dtype: torch.dtype
    in_channels: int = 3

    def __call__(self, image: torch.Tensor, *, tile: int | str | None, tile_pad: int | None,
                 progress: bool = False) -> torch.Tensor:
        """(C, H, W) CPU float in [0, 1] -> (C, sH, sW) float32, unclamped."""
        return tiled_forward(self.model, image[None], scale=self.scale, tile=tile, tile_pad=tile_pad,
                             device=self.device, dtype=self.dtype, progress=progress)[0]


def get_runner(model: Any = DEFAULT_MODEL, *, device: str | torch.device = "auto", precision: str = "auto",
               backend: str = "torch") -> Runner:
    """Resolve `model` (Generator, OnnxRunner, name or path) into a `Runner`; names and paths are cached."""
    if backend not in BACKENDS:
        raise SrganError(f"backend must be torch or onnxruntime, got {backend!r}")
    if isinstance(model, Runner):
        return model
    if backend == "onnxruntime":
        return _onnx_runner(model, precision)
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    if isinstance(model, nn.Module):
        return Runner(prepare_model(model, dev, dtype), _scale_of(model), dev, dtype, _in_channels(model))
    if not isinstance(model, (str, os.PathLike)):
        raise SrganError(f"model must be a Generator, a weights file or a name, got {type(model).__name__}")
    key = (*_file_key(model), str(dev), dtype, backend)
    if key not in _CACHE:
        from srgan.models.weights import load_model

        generator = load_model(model)
        _remember(key, Runner(prepare_model(generator, dev, dtype), generator.config.scale, dev, dtype,
                              generator.config.in_channels))
    return _CACHE[key]


def upscale(image: Any, model: Any = DEFAULT_MODEL, *, outscale: float | None = None,
            tile: int | str | None = "auto", tile_pad: int | None = None, device: str = "auto",
            precision: str = "auto", color_fix: str = "none", lowpass: str = "none", alpha: str = "model",
            backend: str = "torch", progress: bool = False) -> Any:
    """Super-resolve `image` and return the same kind of object.

    image: a PIL image (any mode; P becomes RGB/RGBA, CMYK becomes RGB, I;16 stays 16-bit), a numpy
        array HxW or HxWxC (C = 1-4; uint8, uint16 or float in [0, 1]) or a tensor (C, H, W) or
        (N, C, H, W) float in [0, 1]. The result has the same type, dtype and layout, clipped to [0, 1].
    model: a `Generator`, a weights file, the name of shipped weights (default `DEFAULT_MODEL`), or
        for `backend="onnxruntime"` also an `.onnx` file.
    outscale: final size as a factor of the input (default: the model's scale).
    tile, tile_pad, device, precision: see `tiled_forward` and `engine`; `tile="auto"` fits memory.
    color_fix: none | hist | lowfreq.  lowpass: none | ideal:R | gaussian:S | butterworth:C,N |
        gradient:R0,R1 (see `srgan.inference.lowpass`).  alpha: model | bicubic.
    """
    runner = get_runner(model, device=device, precision=precision, backend=backend)
    options = {"outscale": outscale, "tile": tile, "tile_pad": tile_pad, "color_fix": color_fix, "lowpass": lowpass,
                   "alpha": alpha, "progress": progress}
    if isinstance(image, Image.Image):
        loaded = from_pil(image)
        result = to_pil(upscale_loaded(loaded, runner, **options))
        if loaded.icc_profile:
            result.info["icc_profile"] = loaded.icc_profile
        if loaded.exif:
            result.info["exif"] = loaded.exif
        return result
    if isinstance(image, np.ndarray):
        return _upscale_array(image, runner, options)
    if isinstance(image, torch.Tensor):
        return _upscale_tensor(image, runner, options)
    raise SrganError(f"upscale takes a PIL image, a numpy array or a tensor, got {type(image).__name__}")


def upscale_loaded(image: LoadedImage, runner: Runner, *, outscale: float | None = None,
                   tile: int | str | None = "auto", tile_pad: int | None = None, color_fix: str = "none",
                   lowpass: str = "none", alpha: str = "model", progress: bool = False) -> LoadedImage:
    """The core: a `LoadedImage` in, the super-resolved `LoadedImage` (same metadata) out."""
    if alpha not in ALPHA_MODES:
        raise SrganError(f"alpha must be model or bicubic, got {alpha!r}")
    if color_fix not in COLOR_FIXES:
        raise SrganError(f"unknown colour fix {color_fix!r}: choose none, hist or lowfreq")
    lowpass_spec = parse_lowpass(lowpass)
    if outscale is not None and not (0 < outscale <= 16):
        raise SrganError(f"outscale must be between 0 and 16, got {outscale}")
    if runner.in_channels != 3:
        raise SrganError(f"only RGB models (3 input channels) can upscale images, this one has {runner.in_channels}")
    tile = parse_tile(tile)
    colour = image.pixels.float()
    rgb = colour.expand(3, -1, -1) if image.gray else colour
    run = lambda x: runner(x.contiguous(), tile=tile, tile_pad=tile_pad, progress=progress)
    sr_alpha = None
    if image.alpha is None:
        sr = run(rgb)
    else:
        a = image.alpha.float().clamp(0, 1)
        if alpha == "model":
            sr_alpha = run(a.expand(3, -1, -1)).mean(0, keepdim=True).clamp(0, 1)
        else:
            sr_alpha = _resize(a, size=(a.shape[-2] * runner.scale, a.shape[-1] * runner.scale)).clamp(0, 1)
        premultiplied = run(rgb * a)
        sr = torch.where(sr_alpha > _EPS, premultiplied / sr_alpha.clamp_min(_EPS), torch.zeros_like(premultiplied))
    sr = apply_color_fix(sr, rgb, color_fix)
    if lowpass_spec is not None:
        sr = apply_lowpass(sr, lowpass_spec)
    if outscale is not None and outscale != runner.scale:
        size = (max(1, round(image.height * outscale)), max(1, round(image.width * outscale)))
        sr = _resize(sr, size=size)
        sr_alpha = None if sr_alpha is None else _resize(sr_alpha, size=size)
    if image.gray:
        sr = sr.mean(0, keepdim=True)
    return image.replace(pixels=sr.clamp(0, 1), alpha=None if sr_alpha is None else sr_alpha.clamp(0, 1))


def parse_tile(tile: int | str | None) -> int | str | None:
    """'auto', None/'none'/0 (whole image) or a positive integer (also as a string)."""
    if tile is None or tile == "auto":
        return tile
    if isinstance(tile, str):
        text = tile.strip().lower()
        if text in ("auto", "none"):
            return None if text == "none" else "auto"
        if not text.isdigit():
            raise SrganError(f"tile must be auto or a number of pixels, got {tile!r}")
        tile = int(text)
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 0:
        raise SrganError(f"tile must be auto or a number of pixels, got {tile!r}")
    return tile or None


# ---------------------------------------------------------------- input kinds
def _upscale_array(array: np.ndarray, runner: Runner, options: dict) -> np.ndarray:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise SrganError(f"numpy images are HxW or HxWxC with C = 1-4, got shape {array.shape}")
    if array.dtype == np.uint8:
        scale = 255.0
    elif array.dtype == np.uint16:
        scale = 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        scale = 1.0
    else:
        raise SrganError(f"numpy images must be uint8, uint16 or float, got {array.dtype}")
    data = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32) / scale)
    data = data[None] if array.ndim == 2 else data.permute(2, 0, 1)
    out = _run_channels(data, runner, options, bit_depth=16 if scale == 65535.0 else 8)
    result = out.permute(1, 2, 0).numpy()
    if array.ndim == 2:
        result = result[..., 0]
    if scale == 1.0:
        return result.astype(array.dtype, copy=False)
    return np.round(result * scale).astype(array.dtype)


def _upscale_tensor(tensor: torch.Tensor, runner: Runner, options: dict) -> torch.Tensor:
    if tensor.dim() == 4:
        return torch.stack([_upscale_tensor(t, runner, options) for t in tensor])
    if tensor.dim() != 3 or tensor.shape[0] not in (1, 2, 3, 4) or not tensor.is_floating_point():
        raise SrganError(f"tensors must be float (C, H, W) or (N, C, H, W) with C = 1-4, got "
                         f"{tensor.dtype} {tuple(tensor.shape)}")
    out = _run_channels(tensor.detach().to("cpu", torch.float32), runner, options, bit_depth=8)
    return out.to(device=tensor.device, dtype=tensor.dtype)


def _run_channels(data: torch.Tensor, runner: Runner, options: dict, bit_depth: int) -> torch.Tensor:
    """(C, H, W) with C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA -> the same channels super-resolved."""
    has_alpha = data.shape[0] in (2, 4)
    colour, alpha = (data[:-1], data[-1:]) if has_alpha else (data, None)
    loaded = LoadedImage(pixels=colour, alpha=alpha, mode="array", bit_depth=bit_depth)
    out = upscale_loaded(loaded, runner, **options)
    return out.pixels if out.alpha is None else torch.cat([out.pixels, out.alpha])


# ---------------------------------------------------------------- helpers
def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) float -> (C, *size), antialiased bicubic (antialiasing only matters when shrinking)."""
    return F.interpolate(image[None].float(), size=size, mode="bicubic", align_corners=False, antialias=True)[0]


def _scale_of(model: Any) -> int:
    config = getattr(model, "config", None)
    scale = getattr(config, "scale", None) or getattr(model, "scale", None)
    if not isinstance(scale, int):
        raise SrganError("cannot tell the model's scale: give it a `.config.scale` or `.scale`")
    return scale


def _in_channels(model: Any) -> int:
    return int(getattr(getattr(model, "config", None), "in_channels", 3))


def _file_key(model: str | os.PathLike) -> tuple:
    path = Path(model)
    if path.is_file():
        stat = path.stat()
        return str(path.resolve()), stat.st_mtime_ns, stat.st_size
    return (str(model),)


def _remember(key: tuple, runner: Runner) -> None:
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = runner


def _onnx_runner(model: Any, precision: str) -> Runner:
    """ONNX Runtime runs fp32 on the CPU (or CUDA provider if installed); an `.onnx` file is used as
    is, a Generator / weights file is exported once to a temporary `.onnx`."""
    from srgan.inference.onnx_backend import OnnxRunner, export_onnx

    if precision not in ("auto", "fp32"):
        raise SrganError(f"the onnxruntime backend runs fp32 models; got precision {precision!r}")
    if isinstance(model, OnnxRunner):
        return Runner(model, model.scale or _scale_of(model), torch.device("cpu"), torch.float32)
    if isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".onnx"):
        key = (*_file_key(model), "onnx")
        if key not in _CACHE:
            runner = OnnxRunner(model)
            if runner.scale is None:
                raise SrganError(f"{model}: ONNX file without srgan metadata (export it with `srgan export`)")
            _remember(key, Runner(runner, runner.scale, torch.device("cpu"), torch.float32,
                                  runner.config.in_channels))
        return _CACHE[key]
    global _ONNX_DIR
    if isinstance(model, nn.Module):
        generator, key = model, None
    else:
        key = (*_file_key(model), "onnx-export")
        if key in _CACHE:
            return _CACHE[key]
        from srgan.models.weights import load_model

        generator = load_model(model)
    if _ONNX_DIR is None:
        _ONNX_DIR = tempfile.TemporaryDirectory(prefix="srgan-onnx-")
    onnx_path = Path(_ONNX_DIR.name) / f"model-{len(os.listdir(_ONNX_DIR.name))}.onnx"
    export_onnx(generator, onnx_path)
    runner = OnnxRunner(onnx_path)
    result = Runner(runner, generator.config.scale, torch.device("cpu"), torch.float32, generator.config.in_channels)
    if key is not None:
        _remember(key, result)
    return result
