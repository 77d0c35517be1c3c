"""Render the README's before/after pictures of the colour fixes and FFT low-pass filters.

The artefacts are synthetic and labelled as such, so each fix is shown on a known defect: a smooth
colour cast (what a GAN generator's colour drift looks like) and a fine periodic pattern (what its
checkerboard artefacts look like), both on scikit-image's astronaut picture (no download).

    python docs/make_figures.py          # writes docs/images/colorfix.png and docs/images/lowpass.png
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from skimage import data

from srgan.inference.colorfix import lowfreq_color_fix, match_histograms
from srgan.inference.lowpass import apply_lowpass

OUT = Path(__file__).resolve().parent / "images"


def _to_image(tensor: torch.Tensor) -> Image.Image:
    array = tensor.clamp(0, 1).permute(1, 2, 0).numpy()
    return Image.fromarray(np.round(array * 255).astype(np.uint8))


def _strip(panels: list[tuple[str, torch.Tensor]], zoom: int) -> Image.Image:
    images = [_to_image(t).resize((t.shape[-1] * zoom, t.shape[-2] * zoom), Image.NEAREST) for _, t in panels]
    width, height = images[0].size
    strip = Image.new("RGB", (width * len(images) + 4 * (len(images) - 1), height + 16), "white")
    draw = ImageDraw.Draw(strip)
    for i, ((label, _), image) in enumerate(zip(panels, images)):
        x = i * (width + 4)
        strip.paste(image, (x, 16))
        draw.text((x + 2, 2), label, fill="black")
    return strip


def colour_figure(hr: torch.Tensor) -> Image.Image:
    """Input (LR) | output with a synthetic cast | histogram matching | low-frequency fix."""
    lr = F.interpolate(hr[None], scale_factor=0.25, mode="bicubic", antialias=True, align_corners=False)[0]
    sr = F.interpolate(lr[None], scale_factor=4, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    ramp = torch.linspace(0, 1, sr.shape[-1])[None, None, :]
    cast = sr * torch.tensor([1.10, 0.95, 0.82])[:, None, None] + torch.cat(
        [0.06 * ramp, 0.02 * ramp, -0.04 * ramp]).expand_as(sr)
    crop = (slice(None), slice(40, 200), slice(140, 300))
    lr_view = F.interpolate(lr[None], scale_factor=4, mode="nearest")[0]
    panels = [("input (LR)", lr_view), ("synthetic cast", cast), ("--color-fix hist", match_histograms(cast, lr)),
              ("--color-fix lowfreq", lowfreq_color_fix(cast, lr))]
    return _strip([(label, t[crop]) for label, t in panels], zoom=1)


def lowpass_figure(hr: torch.Tensor) -> Image.Image:
    """Fine synthetic pattern | ideal (published circular mask, rings) | gaussian | butterworth | gradient."""
    h, w = hr.shape[-2:]
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    pattern = 0.07 * torch.cos(2 * math.pi * x / 3) * torch.cos(2 * math.pi * y / 3)  # 0.67 Nyquist
    patterned = (hr + pattern).clamp(0, 1)
    crop = (slice(None), slice(90, 170), slice(200, 280))
    panels = [("pattern", patterned)] + [(spec, apply_lowpass(patterned, spec)) for spec in
                                         ("ideal:0.5", "gaussian:0.3", "butterworth:0.5,4", "gradient:0.4,0.6")]
    return _strip([(label, t[crop]) for label, t in panels], zoom=2)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    hr = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    for name, figure in (("colorfix.png", colour_figure(hr)), ("lowpass.png", lowpass_figure(hr))):
        figure.save(OUT / name, optimize=True)
        print(f"{OUT / name}: {figure.size[0]}x{figure.size[1]}, {(OUT / name).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
