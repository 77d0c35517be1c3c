"""Render MODELS.md's and the README's zoomed crops: LR, bicubic, each model, HR, on test images.

Each window is chosen by hand where texture and edges show what a model does (a butterfly's wing,
a baboon's fur, a zebra's stripes); the LR image is the evaluation protocol's (MATLAB bicubic of the
mod-cropped HR), every model runs through the inference engine as `srgan eval` runs it (fp32, CPU),
and each label carries the whole image's PSNR-Y, so the picture and the tables can be read together.

    python docs/model_crops.py                                  # shipped models that exist
    python docs/model_crops.py --models srresnet_x4 runs/x/generator.safetensors --out /tmp/crops.png
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from srgan.data.degradation import benchmark_hr, degrade
from srgan.evaluation.runner import bicubic_upscaler, model_upscaler
from srgan.metrics.psnr_ssim import psnr_y
from srgan.models.weights import SHIPPED_DIR

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SRGAN_SHARED", HERE.parents[1] / "shared"))
SCALE = 4
# (dataset, image, top, left) in HR pixels; windows are 64x64 HR pixels, on the LR grid.
WINDOWS = [("Set5", "butterfly", 96, 128), ("Set14", "baboon", 300, 352), ("BSD100", "253027", 128, 64)]
SIZE, ZOOM = 64, 3


def _tile(image: torch.Tensor, top: int, left: int, label: str) -> Image.Image:
    crop = image[:, top:top + SIZE, left:left + SIZE]
    array = crop.permute(1, 2, 0).numpy().astype(np.uint8)
    picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).convert("RGB")
    return labelled(picture.resize((SIZE * ZOOM, SIZE * ZOOM), Image.NEAREST), label)


def labelled(picture: Image.Image, label: str) -> Image.Image:
    """`picture` under a 14-pixel strip carrying `label`."""
    framed = Image.new("RGB", (picture.width, picture.height + 14), "white")
    framed.paste(picture, (0, 14))
    ImageDraw.Draw(framed).text((2, 1), label, fill="black")
    return framed


def grid(rows: list[list[Image.Image]]) -> Image.Image:
    """Equal-sized tiles in rows and columns, 4 white pixels apart."""
    width, height = rows[0][0].size
    sheet = Image.new("RGB", ((width + 4) * len(rows[0]) - 4, (height + 4) * len(rows) - 4), "white")
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (c * (width + 4), r * (height + 4)))
    return sheet


def save(sheet: Image.Image, out: Path) -> None:
    sheet.save(out, optimize=True)
    print(f"{out}: {sheet.size[0]}x{sheet.size[1]}, {out.stat().st_size // 1024} KB")


def render(models: list[str]) -> Image.Image:
    upscalers = [("bicubic", bicubic_upscaler(SCALE))]
    upscalers += [(Path(m).stem, model_upscaler(m, SCALE, device="cpu", precision="fp32", tile=None)) for m in models]
    rows = []
    for dataset, name, top, left in WINDOWS:
        hr = benchmark_hr(next((SHARED / "datasets" / dataset).glob(f"{name}.*")), SCALE)
        lr = degrade(hr, SCALE)
        lr_view = lr.repeat_interleave(SCALE, -1).repeat_interleave(SCALE, -2)
        tiles = [_tile(lr_view, top, left, f"{name}: LR (nearest)")]
        for label, upscale in upscalers:
            sr = upscale(lr)
            tiles.append(_tile(sr, top, left, f"{label} {psnr_y(sr, hr, SCALE):.2f} dB"))
        tiles.append(_tile(hr, top, left, "HR"))
        rows.append(tiles)
    return grid(rows)


def crops_cli(doc: str, render: Callable[[list[str]], Image.Image], candidates: tuple[str, ...], out: str) -> None:
    """The command line of the crop pictures: `--models` (default: those of `candidates` that ship)
    and `--out` (default docs/images/`out`)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    shipped = [n for n in candidates if (SHIPPED_DIR / f"{n}.safetensors").exists()]
    parser.add_argument("--models", nargs="+", default=shipped, help="names or weight files (x4)")
    parser.add_argument("--out", type=Path, default=HERE / "images" / out)
    args = parser.parse_args()
    save(render(args.models), args.out)


def main() -> None:
    crops_cli(__doc__, render, ("srresnet_x4", "srgan_x4"), "models_x4.png")


if __name__ == "__main__":
    main()
