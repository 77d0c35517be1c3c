"""Measure the two-pixel checkerboard a GAN generator leaves in flat areas, and why the VGG loss
does not remove it (MODELS.md, srgan_x4).

1. What the configured VGG19 feature loss charges for a +-4-level checkerboard added to an HR image,
   against +-4 levels of random noise of the same energy: the ImageNet VGG19 is nearly blind to it.
2. For each model (shipped name, weights file, or a training checkpoint: its EMA), the checkerboard's
   local amplitude in 8-bit levels: the error (SR - HR) times (-1)^(x+y), averaged over 8x8 blocks,
   absolute value, mean over Set5 butterfly and the first six BSD100 images (MATLAB-bicubic LR);
   with `--lowpass SPEC`, also after that FFT low-pass of the output (`srgan upscale --lowpass`,
   report 000's cure for the GAN's patterns: STUDY.md), rounded to 8 bits as a saved file is.

    python docs/checkerboard.py srresnet_x4 srgan_x4 ../runs/srgan_x4/checkpoints/ckpt_000002000.pt
    python docs/checkerboard.py srgan_x4 --lowpass ideal:0.75 ideal:0.5
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from srgan.data.degradation import benchmark_hr, degrade
from srgan.evaluation.runner import model_upscaler
from srgan.imaging.quantize import to_uint8
from srgan.inference.lowpass import apply_lowpass
from srgan.losses.perceptual import PerceptualLoss
from srgan.training.config import load_config

SHARED = Path(os.environ.get("SRGAN_SHARED", Path(__file__).resolve().parents[2] / "shared"))
VGG = SHARED / "weights" / "vgg19_features_conv1_1-conv3_4_imagenet.safetensors"
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "srgan_nobn_x4.yaml"  # srgan_x4's run


def _checker(height: int, width: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return (-1.0) ** (yy + xx)


def vgg_blindness() -> None:
    hr = benchmark_hr(SHARED / "datasets" / "Set5" / "butterfly.png", 4).float().unsqueeze(0) / 255
    level = 4 / 255
    torch.manual_seed(0)
    patterns = {"checkerboard": level * _checker(*hr.shape[-2:]), "random +-4": level * torch.randn(hr.shape[-2:]).sign()}
    spec = load_config(CONFIG).losses["perceptual"]
    for layer, weight in spec["layers"].items():
        loss = PerceptualLoss({layer: weight}, criterion=spec["criterion"], feature_scale=spec["feature_scale"], weights=VGG)
        costs = {name: loss(hr + pattern, hr).item() for name, pattern in patterns.items()}
        print(f"{layer} x{weight}: " + ", ".join(f"{k} {v:.4f}" for k, v in costs.items())
              + f" ({costs['random +-4'] / costs['checkerboard']:.0f}x)")


@torch.no_grad()
def amplitudes(model: str, images: list[Path], lowpass: list[str]) -> dict[str | None, float]:
    """The amplitude of the model's output, and of each low-passed copy of it."""
    upscale, total = model_upscaler(model, 4), dict.fromkeys([None, *lowpass], 0.0)
    for path in images:
        hr = benchmark_hr(path, 4)
        sr = upscale(degrade(hr, 4))
        for spec in total:
            out = sr if spec is None else to_uint8(apply_lowpass(sr.float() / 255, spec))
            error = (out.float() - hr.float())[:, 4:-4, 4:-4]
            total[spec] += F.avg_pool2d((error * _checker(*error.shape[-2:])).unsqueeze(0), 8).abs().mean().item()
    return {spec: value / len(images) for spec, value in total.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="shipped names, weight files or training checkpoints (x4)")
    parser.add_argument("--lowpass", nargs="+", default=[], metavar="SPEC", help="also after these low-passes")
    args = parser.parse_args()
    vgg_blindness()
    images = [SHARED / "datasets" / "Set5" / "butterfly.png", *sorted((SHARED / "datasets" / "BSD100").iterdir())[:6]]
    for model in args.models:
        for spec, value in amplitudes(model, images, args.lowpass).items():
            print(f"{model}{f' + low-pass {spec}' if spec else ''}: checkerboard amplitude {value:.2f} levels")


if __name__ == "__main__":
    main()
