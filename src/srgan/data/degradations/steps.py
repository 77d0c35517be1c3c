"""The steps degradation models are composed of, on float32 (3, H, W) tensors in [0, 1].

Blur is a 2-D convolution with reflected borders; resizing uses PyTorch's area / bilinear / bicubic
(no antialiasing, as Real-ESRGAN resizes its batches, and as OpenCV's INTER_LINEAR / INTER_CUBIC that
BSRGAN calls do); JPEG is Pillow's encoder at an integer quality, on the 8-bit image, as a file would
be saved. Noise is drawn from the sample's numpy generator, never from torch's global one.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from srgan.imaging.quantize import to_uint8

RESIZE_MODES = ("area", "bilinear", "bicubic")


def blur(image: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """`image` convolved with `kernel` (odd sizes) per channel, borders reflected (not repeated)."""
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    x = image.unsqueeze(0)
    mode = "reflect" if image.shape[-2] > ph and image.shape[-1] > pw else "replicate"  # reflect needs pad < size
    x = F.pad(x, (pw, pw, ph, ph), mode=mode)
    weight = torch.from_numpy(kernel[::-1, ::-1].copy()).to(image.dtype)
    weight = weight.expand(image.shape[0], 1, kh, kw)
    return F.conv2d(x, weight, groups=image.shape[0]).squeeze(0)


def separable_blur(image: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """`blur` by the kernel outer(taps, taps), as two 1-D passes (a 51-tap window costs 102, not 2,601)."""
    return blur(blur(image, taps[None, :]), taps[:, None])


def resize(image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """`image` resized to `size` (h, w) with one of `RESIZE_MODES` (no antialiasing)."""
    size = (max(1, int(size[0])), max(1, int(size[1])))
    corners = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(image.unsqueeze(0), size=size, mode=mode, **corners).squeeze(0)


def gaussian_noise(image: torch.Tensor, sigma: float, gray: bool, rng: np.random.Generator) -> torch.Tensor:
    """Additive white Gaussian noise of standard deviation `sigma` (on the 0..1 scale); `gray` draws
    one field for all channels (luminance-like noise), otherwise each channel has its own."""
    shape = (1, *image.shape[1:]) if gray else tuple(image.shape)
    noise = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32)) * sigma
    return (image + noise).clamp_(0.0, 1.0)


def poisson_noise(image: torch.Tensor, scale: float, gray: bool, rng: np.random.Generator) -> torch.Tensor:
    """Shot noise as Real-ESRGAN models it: the image read as photon counts on 2^ceil(log2(#distinct
    values)) levels, Poisson-sampled, and the difference from the image added `scale` times; `gray`
    draws it from the luminance (ITU-R BT.601 weights) and adds it to every channel."""
    source = image
    if gray:
        source = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]).unsqueeze(0)
    values = source.numpy().astype(np.float64)
    levels = 2 ** np.ceil(np.log2(max(2, len(np.unique(values)))))
    noisy = rng.poisson(np.clip(values, 0.0, None) * levels) / levels
    noise = torch.from_numpy((noisy - values).astype(np.float32))
    return (image + noise * scale).clamp_(0.0, 1.0)


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """The image saved as a baseline JPEG of `quality` by Pillow (4:2:0 chroma, Pillow's default) and
    decoded again, as a 8-bit RGB file would be."""
    array = to_uint8(image).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array, "RGB").save(buffer, format="JPEG", quality=int(quality))
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).float().div_(255.0)


def unsharp_mask(image: torch.Tensor, weight: float = 0.5, radius: int = 50, threshold: float = 10) -> torch.Tensor:
    """Real-ESRGAN's sharpened ground truth (section 4.1): image + weight x (image - Gaussian blur),
    applied through a soft mask of where the detail exceeds `threshold` grey levels, so flat areas
    keep their noise-free values. The blur is OpenCV's GaussianBlur with an odd `radius`-wide window
    and its default sigma for that width, 0.3 ((radius - 1) / 2 - 1) + 0.8."""
    radius += 1 - radius % 2
    sigma = 0.3 * ((radius - 1) / 2 - 1) + 0.8
    ax = np.arange(radius, dtype=np.float64) - (radius - 1) / 2
    g = np.exp(-ax ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    residual = image - separable_blur(image, g)
    mask = ((residual.abs() * 255) > threshold).to(image.dtype)
    soft = separable_blur(mask, g)
    sharpened = (image + weight * residual).clamp_(0.0, 1.0)
    return soft * sharpened + (1 - soft) * image
