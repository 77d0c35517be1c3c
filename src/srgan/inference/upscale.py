"""Super-resolve one image of any kind: the core behind `srgan.api.upscale` and `upscale_files`.

Data flow: image -> `LoadedImage` (float colour + optional alpha) -> model via the `Runner`'s
`tiled_forward` -> optional colour fix and low-pass -> optional resize to `outscale` -> the
caller's kind.

- Alpha (Real-ESRGAN #291): colour is premultiplied by alpha before the model and divided by the
  super-resolved alpha after, so transparent (often black) pixels do not bleed a dark fringe into
  the edges. Alpha itself goes through the model as a gray image (`alpha="model"`) or is resized
  bicubically (`alpha="bicubic"`).
- Grayscale is replicated to RGB for the model and averaged back to one channel.
- `outscale`: the model's output is resized to `outscale` x the input with antialiased bicubic
  interpolation on floats, before rounding. PyTorch's (Keys cubic, antialiased when shrinking, like
  MATLAB's) rather than `srgan.imaging.imresize`, whose dense resize matrices would need hundreds of MB
  for an 8000-pixel output, and rather than PIL, which works on 8-bit data.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from srgan.errors import SrganError
from srgan.imaging.io import LoadedImage, from_pil, to_pil
from srgan.inference.cache import Runner
from srgan.inference.colorfix import color_fix as apply_color_fix
from srgan.inference.lowpass import apply_lowpass
from srgan.inference.options import UpscaleOptions

log = logging.getLogger(__name__)

_EPS = 1.0 / 1024  # alpha below this is "transparent": its colour is undefined, written as 0
OVERSHOOT = 0.5  # float values this far outside [0, 1] are accepted; beyond, the data is not in [0, 1]


def upscale_image(image: Any, runner: Runner, options: UpscaleOptions, *, progress: bool = False) -> Any:
    """A PIL image, numpy array, tensor or `LoadedImage` in, the same kind out (see `srgan.api.upscale`)."""
    if isinstance(image, LoadedImage):
        return upscale_loaded(image, runner, options, progress=progress)
    if isinstance(image, Image.Image):
        loaded = from_pil(image)
        result = to_pil(upscale_loaded(loaded, runner, options, progress=progress))
        if loaded.icc_profile and not options.strip_metadata:
            result.info["icc_profile"] = loaded.icc_profile
        if loaded.exif and not options.strip_metadata:
            result.info["exif"] = loaded.exif
        return result
    if isinstance(image, np.ndarray):
        return _upscale_array(image, runner, options, progress)
    if isinstance(image, torch.Tensor):
        if image.is_meta or image.layout != torch.strided:
            raise SrganError(f"upscale takes a tensor holding its pixels, got a {'meta' if image.is_meta else 'sparse'} "
                             "tensor (call .to_dense() or load the data first)")
        return _upscale_tensor(image, runner, options, progress)
    raise SrganError(f"upscale takes a PIL image, a numpy array, a tensor or a LoadedImage, got {type(image).__name__}")


def upscale_loaded(image: LoadedImage, runner: Runner, options: UpscaleOptions, *,
                   progress: bool = False) -> LoadedImage:
    """The core: a `LoadedImage` in, the super-resolved `LoadedImage` (same metadata) out."""
    if runner.in_channels != 3:
        raise SrganError(f"only RGB models (3 input channels) can upscale images, this one has {runner.in_channels}")
    check_pixels(image)
    colour = image.pixels.float()
    rgb = colour.expand(3, -1, -1) if image.gray else colour

    def run(x: torch.Tensor) -> torch.Tensor:
        try:
            return runner(x.contiguous(), tile=options.tile, tile_pad=options.tile_pad, progress=progress)
        except RuntimeError as exc:
            if "Padding size should be less than" not in str(exc):
                raise
            raise SrganError(f"{image.width}x{image.height} pixels is too small for this model, which mirrors "
                             "the image at its borders by more than that") from exc

    sr_alpha = None
    if image.alpha is None:
        sr = run(rgb)
    else:
        a = image.alpha.float().clamp(0, 1)
        if options.alpha == "model":
            sr_alpha = run(a.expand(3, -1, -1)).mean(0, keepdim=True).clamp(0, 1)
        else:
            sr_alpha = _resize(a, size=(a.shape[-2] * runner.scale, a.shape[-1] * runner.scale)).clamp(0, 1)
        premultiplied = run(rgb * a)
        sr = torch.where(sr_alpha > _EPS, premultiplied / sr_alpha.clamp_min(_EPS), torch.zeros_like(premultiplied))
    sr = apply_color_fix(sr, rgb, options.color_fix)
    if options.lowpass is not None:
        sr = apply_lowpass(sr, options.lowpass)
    if options.outscale is not None and options.outscale != runner.scale:
        width, height = output_size(image.width, image.height, runner.scale, options.outscale)
        size = (height, width)
        sr = _resize(sr, size=size)
        sr_alpha = None if sr_alpha is None else _resize(sr_alpha, size=size)
    if image.gray:
        sr = sr.mean(0, keepdim=True)
    return image.replace(pixels=sr.clamp(0, 1), alpha=None if sr_alpha is None else sr_alpha.clamp(0, 1))


def output_size(width: int, height: int, scale: int, outscale: float | None) -> tuple[int, int]:
    """The (width, height) an image comes out at: x `outscale` when given (rounded, at least 1), else
    x the model's `scale`."""
    if outscale is None:
        return width * scale, height * scale
    return max(1, round(width * outscale)), max(1, round(height * outscale))


def check_pixels(image: LoadedImage) -> None:
    """Refuse what would come out wrong without a word: an empty image, NaN or infinite values (the
    output would be NaN), and values far outside [0, 1], such as 0-255 data in a float array (it
    would be clipped to white). Overshoot within `OVERSHOOT` (the ringing of a resampled image) is
    run as it is, and the result clipped to [0, 1] as always."""
    if image.height == 0 or image.width == 0:
        raise SrganError(f"empty image ({image.width}x{image.height} pixels)")
    for name, values in (("pixel", image.pixels), ("alpha", image.alpha)):
        if values is None or not values.is_floating_point():
            continue
        low, high = torch.aminmax(values.float())
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise SrganError(f"the image holds NaN or infinite {name} values")
        if low < -OVERSHOOT or high > 1 + OVERSHOOT:
            raise SrganError(f"float {name} values must be in [0, 1], found {low:g} to {high:g}: divide 8-bit data "
                             "by 255 and 16-bit data by 65535 (or pass the uint8 / uint16 array itself)")


# ---------------------------------------------------------------- input kinds
def _upscale_array(array: np.ndarray, runner: Runner, options: UpscaleOptions, progress: bool) -> np.ndarray:
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
    out = _run_channels(data, runner, options, progress, bit_depth=16 if scale == 65535.0 else 8)
    result = out.permute(1, 2, 0).numpy()
    if array.ndim == 2:
        result = result[..., 0]
    if scale == 1.0:
        return result.astype(array.dtype, copy=False)
    return np.round(result * scale).astype(array.dtype)


def _upscale_tensor(tensor: torch.Tensor, runner: Runner, options: UpscaleOptions, progress: bool) -> torch.Tensor:
    if tensor.dim() == 4:
        return torch.stack([_upscale_tensor(t, runner, options, progress) for t in tensor])
    if tensor.dim() != 3 or tensor.shape[0] not in (1, 2, 3, 4) or not tensor.is_floating_point():
        raise SrganError(f"tensors must be float (C, H, W) or (N, C, H, W) with C = 1-4, got "
                         f"{tensor.dtype} {tuple(tensor.shape)}")
    out = _run_channels(tensor.detach().to("cpu", torch.float32), runner, options, progress, bit_depth=8)
    return out.to(device=tensor.device, dtype=tensor.dtype)


def _run_channels(data: torch.Tensor, runner: Runner, options: UpscaleOptions, progress: bool,
                  bit_depth: int) -> torch.Tensor:
    """(C, H, W) with C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA -> the same channels super-resolved."""
    has_alpha = data.shape[0] in (2, 4)
    colour, alpha = (data[:-1], data[-1:]) if has_alpha else (data, None)
    loaded = LoadedImage(pixels=colour, alpha=alpha, mode="array", bit_depth=bit_depth)
    out = upscale_loaded(loaded, runner, options, progress=progress)
    return out.pixels if out.alpha is None else torch.cat([out.pixels, out.alpha])


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) float -> (C, *size), antialiased bicubic (antialiasing only matters when shrinking)."""
    return F.interpolate(image[None].float(), size=size, mode="bicubic", align_corners=False, antialias=True)[0]
