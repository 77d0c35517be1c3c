"""Scoring the generator during training exactly as `srgan eval` scores it: the same images (the
folder's files, not its subfolders), HR and LR from `srgan.data.degradation`, gray files run as RGB
and averaged back to one channel (as `srgan upscale` does) and scored on that channel, SR rounded
to uint8, PSNR/SSIM on Y with `scale` border pixels cropped (srgan.metrics.psnr_ssim). A GAN run is
judged by how real its output looks, which PSNR does not measure: the validator can add LPIPS
against the HR, and `NiqeProbe` tracks NIQE (no reference; lower is better) of the output on a
second folder, as `srgan eval` scores them. A real-world run validates on given LR images paired
with the HR (`lr_folder`), as `srgan eval --lr DIR --data DIR` scores them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from srgan.data.degradation import benchmark_hr, crop_border, degrade
from srgan.data.pairs import check_sizes, match_pairs, read_pair
from srgan.errors import SrganError
from srgan.imaging.folders import list_images
from srgan.imaging.io import read_8bit
from srgan.imaging.quantize import to_uint8
from srgan.metrics.lpips import LPIPS
from srgan.metrics.niqe import NiqeModel
from srgan.metrics.psnr_ssim import psnr_y, ssim_y


class Validator:
    """PSNR / SSIM on Y (and LPIPS with `lpips`) of the output against the HR images of `folder`: the
    LR made from each HR by the classic protocol, or with `lr_folder` the LR images given there,
    paired by name (a real-world run validated on a fixed degraded copy of a test set). `crop`
    border pixels are removed first (default: the scale; 0 with `lr_folder`, as `srgan eval --lr`)."""

    def __init__(self, folder: str | Path, scale: int, max_images: int = 0, *, lr_folder: str | Path | None = None,
                 crop: int | None = None, lpips: bool = False, lpips_weights: str | Path | None = None) -> None:
        self.scale = scale
        self.crop = crop if crop is not None else (0 if lr_folder else scale)
        self.items: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        if lr_folder:
            pairs = match_pairs(lr_folder, folder)[:max_images or None]
            check_sizes(pairs, scale)
            self.items = [(hr.stem, *read_pair(lr, hr, scale)) for lr, hr in pairs]
        else:
            paths = list_images(folder, recursive=False)
            if not paths:
                raise SrganError(f"no validation images found in {folder}")
            for path in paths[:max_images] if max_images else paths:
                hr = benchmark_hr(path, scale)
                self.items.append((path.stem, degrade(hr, scale), hr))
        self.lpips = LPIPS(None if lpips_weights is None else str(lpips_weights)) if lpips else None

    @torch.no_grad()
    def run(self, upscale: Callable[[torch.Tensor], torch.Tensor], device: torch.device
            ) -> tuple[list[tuple[str, float, float, float | None]], list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
        """Rows (name, PSNR-Y, SSIM-Y, LPIPS or None) and (LR, SR, HR) uint8 triples for image grids."""
        rows, samples = [], []
        lpips = self.lpips.to(device) if self.lpips is not None else None
        for name, lr, hr in self.items:
            sr = _super_resolve(upscale, lr, device)
            distance = None
            if lpips is not None:
                distance = float(lpips.score(crop_border(sr, self.crop), lpips.reference(crop_border(hr, self.crop)))[0])
            rows.append((name, float(psnr_y(sr, hr, self.crop)), float(ssim_y(sr, hr, self.crop)), distance))
            samples.append((lr, sr, hr))
        return rows, samples


class NiqeProbe:
    """Mean NIQE (Y channel) of the output on the images of `folder`: the no-reference score a GAN's
    learning curve is drawn with. The images are HR (MATLAB-bicubic LR of each, `scale` border pixels
    cropped, as `srgan eval --data`) or, with `given_lr`, the model's inputs themselves, real photos
    without HR (no crop, as `srgan eval --lr`)."""

    def __init__(self, folder: str | Path, scale: int, model_path: str | Path | None = None, *,
                 given_lr: bool = False) -> None:
        self.name, self.niqe = Path(folder).name, NiqeModel.load(model_path)
        paths = list_images(folder, recursive=False)
        if not paths:
            raise SrganError(f"no NIQE images found in {folder}")
        self.crop = 0 if given_lr else scale
        self.lrs = [read_8bit(path) if given_lr else degrade(benchmark_hr(path, scale), scale) for path in paths]

    @torch.no_grad()
    def run(self, upscale: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> float:
        """The mean over the images NIQE can score (two 96x96 patches with texture); NaN if none can,
        rather than ending a long run at its validation."""
        scores = []
        for lr in self.lrs:
            try:
                scores.append(self.niqe.score_image(_super_resolve(upscale, lr, device), crop=self.crop))
            except SrganError:
                continue
        return sum(scores) / len(scores) if scores else float("nan")


def _super_resolve(upscale: Callable[[torch.Tensor], torch.Tensor], lr: torch.Tensor, device: torch.device
                   ) -> torch.Tensor:
    """uint8 LR (C, h, w) -> uint8 SR, a gray image run as RGB and averaged back to one channel."""
    x = (lr.float() / 255.0).expand(3, -1, -1).unsqueeze(0).to(device)
    sr = upscale(x).float().cpu()[0]
    return to_uint8(sr.mean(0, keepdim=True) if lr.shape[0] == 1 else sr)


def sample_grid(samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], scale: int, limit: int = 3,
                size: int = 192) -> torch.Tensor:
    """Rows of [nearest-upscaled LR | SR | HR] centre crops, float (3, H, W) for TensorBoard."""
    rows = []
    for lr, sr, hr in samples[:limit]:
        up = lr.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
        h, w = hr.shape[-2:]
        s = min(size, h, w)
        top, left = (h - s) // 2, (w - s) // 2
        crops = [t[:, top:top + s, left:left + s].expand(3, -1, -1) for t in (up, sr, hr)]  # gray as RGB
        rows.append(torch.cat(crops, dim=-1))
    width = min(r.shape[-1] for r in rows)
    return torch.cat([r[..., :width] for r in rows], dim=-2).float() / 255.0
