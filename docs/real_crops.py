"""Render the zoomed RealSRSet crops of MODELS.md and the README: real low-resolution photos (an old
scan with grain, a phone photo with sensor noise, a JPEG with blocks, a gray portrait), no HR.

Columns: the input (nearest-neighbour x4, to see its noise and blocks), bicubic x4, then each model
through the inference engine as `srgan upscale` runs it (fp32, CPU). Each window is 56x56 input
pixels, chosen by hand where grain, noise or blocks meet faces, letters and edges.

    python docs/real_crops.py                          # srgan_x4, then srresnet_real_x4 / srgan_real_x4 where shipped
    python docs/real_crops.py --models srgan_x4 runs/x/generator.safetensors --out /tmp/real.png

MODELS.md's picture adds Real-ESRGAN's published x4plus as a reference column, converted by
tools/ncnn_rrdbnet.py (its docstring says from where) and run through the same engine:

    python docs/real_crops.py --models srgan_x4 srresnet_real_x4 srgan_real_x4 realesrgan_x4plus.safetensors
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from model_crops import crops_cli, grid, labelled  # docs/, beside this script
from PIL import Image

from srgan.evaluation.runner import bicubic_upscaler, model_upscaler
from srgan.imaging.io import read_8bit

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SRGAN_SHARED", HERE.parents[1] / "shared"))
SCALE, SIZE = 4, 56
# (image, top, left) in input pixels
WINDOWS = [("oldphoto2", 50, 50), ("dped_crop00061", 52, 0), ("building", 20, 20), ("Lincoln", 50, 48)]


def _tile(image: torch.Tensor, top: int, left: int, label: str) -> Image.Image:
    crop = image[:, top * SCALE:(top + SIZE) * SCALE, left * SCALE:(left + SIZE) * SCALE]
    return labelled(Image.fromarray(crop.permute(1, 2, 0).numpy().astype(np.uint8)), label)


def render(models: list[str]) -> Image.Image:
    upscalers = [("bicubic", bicubic_upscaler(SCALE))]
    upscalers += [(Path(m).stem if m.endswith(".safetensors") else m,
                   model_upscaler(m, SCALE, device="cpu", precision="fp32", tile=None)) for m in models]
    rows = []
    for name, top, left in WINDOWS:
        lr = read_8bit(SHARED / "datasets" / "RealSRSet" / f"{name}.png").expand(3, -1, -1).contiguous()
        nearest = lr.repeat_interleave(SCALE, -1).repeat_interleave(SCALE, -2)
        rows.append([_tile(nearest, top, left, f"{name}: input")]
                    + [_tile(upscale(lr), top, left, label) for label, upscale in upscalers])
    return grid(rows)


def main() -> None:
    crops_cli(__doc__, render, ("srgan_x4", "srresnet_real_x4", "srgan_real_x4"), "real_x4.png")


if __name__ == "__main__":
    main()
