"""Benchmark evaluation under the published protocol: the Python API behind `srgan eval`.

The protocol is the one of the MATLAB evaluation scripts of EDSR/RCAN, which reproduces the
published bicubic baselines (VDSR/EDSR tables) on Set5/Set14/BSD100 within 0.02 dB:
HR and LR as `srgan.data.degradation` makes them (the file through the one reader as 8 bits,
mod-cropped; MATLAB bicubic `imresize(hr, 1/s)` of the uint8 HR, rounded to uint8); SR rounded to
uint8; scored on the Y channel of MATLAB's `rgb2ycbcr` of the uint8 images (BT.601, 16..235, uint8)
with `scale` pixels cropped per border; SSIM with an 11x11 Gaussian window, sigma 1.5. Gray files
stay one channel and are scored on it, as the MATLAB scripts do (models see them as in `srgan
upscale`: replicated to RGB, the output averaged back to gray).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from srgan.data.degradation import benchmark_hr, degrade
from srgan.errors import SrganError
from srgan.imaging.folders import list_images
from srgan.imaging.formats import IMAGE_SUFFIXES
from srgan.imaging.imresize import imresize
from srgan.imaging.io import LoadedImage
from srgan.imaging.quantize import to_uint8
from srgan.inference.cache import build_runner
from srgan.inference.options import UpscaleOptions
from srgan.inference.upscale import upscale_loaded
from srgan.metrics.niqe import NiqeModel
from srgan.metrics.psnr_ssim import psnr_y, ssim_y, y_channel

log = logging.getLogger(__name__)

SCALES = (2, 4, 8)
PROTOCOL = ("PSNR/SSIM on Y of BT.601 YCbCr (16-235, MATLAB rgb2ycbcr of uint8), crop = {scale} px, "
            "LR = MATLAB bicubic x1/{scale} of the mod-cropped uint8 HR, SSIM 11x11 Gaussian sigma 1.5")
CROP_SIZE = 64  # HR pixels of the report's zoomed window (a multiple of every scale)

Upscaler = Callable[[torch.Tensor], torch.Tensor]  # uint8 (C, h, w) -> uint8 (C, sh, sw)


# ---------------------------------------------------------------- upscalers
def bicubic_upscaler(scale: int) -> Upscaler:
    return lambda lr: to_uint8(imresize(lr.to(torch.float64), scale), peak=255)


def lanczos_upscaler(scale: int) -> Upscaler:
    def run(lr: torch.Tensor) -> torch.Tensor:
        arr = lr.permute(1, 2, 0).numpy()
        im = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
        out = np.asarray(im.resize((im.width * scale, im.height * scale), Image.Resampling.LANCZOS))
        t = torch.from_numpy(out.copy())
        return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()

    return run


def model_upscaler(name_or_path: Any, scale: int, *, device: str = "auto", precision: str = "fp32",
                   tile: int | str | None = "auto", options: UpscaleOptions | None = None) -> Upscaler:
    """A generator (name, weights or `.onnx` file, or a built `Runner`) run by the inference engine
    exactly as `srgan upscale` runs it (`build_runner`: batch norm folded, device and precision;
    `upscale_loaded`: tiles, gray images replicated to RGB and averaged back to one channel), its
    output rounded to uint8. `options` (made once for many models) replaces device, precision and tile."""
    options = options or UpscaleOptions(tile=tile, device=device, precision=precision)
    runner = build_runner(name_or_path, device=options.device, precision=options.precision)
    if runner.scale != scale:
        raise SrganError(f"model {name_or_path!r} upscales x{runner.scale}, but --scale is {scale}")

    def run(lr: torch.Tensor) -> torch.Tensor:
        image = LoadedImage(pixels=lr.float().div(255), mode="L" if lr.shape[0] == 1 else "RGB")
        return to_uint8(upscale_loaded(image, runner, options).pixels)

    return run


def make_upscaler(spec: str, scale: int, **engine: Any) -> Upscaler:
    """'bicubic', 'lanczos', or a model run with the inference `engine` options (device, precision, tile)."""
    if spec == "bicubic":
        return bicubic_upscaler(scale)
    if spec == "lanczos":
        return lanczos_upscaler(scale)
    return model_upscaler(spec, scale, **engine)


# ---------------------------------------------------------------- results
@dataclass
class ImageResult:
    dataset: str
    model: str
    image: str
    psnr: float
    ssim: float
    seconds: float
    niqe: float | None = None


@dataclass
class CropPanel:
    """Zoomed windows of one image: label -> uint8 (C, h, w) at native resolution."""
    dataset: str
    image: str
    box: tuple[int, int, int, int]  # top, left, height, width in HR pixels
    tiles: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class EvalResults:
    scale: int
    models: list[str]
    datasets: list[str]
    images: list[ImageResult] = field(default_factory=list)
    crops: list[CropPanel] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (image, why it was not scored)

    @property
    def protocol(self) -> str:
        return PROTOCOL.format(scale=self.scale)

    def summary(self, dataset: str, model: str) -> dict[str, float | int | None]:
        rows = [r for r in self.images if r.dataset == dataset and r.model == model]
        niqe = [r.niqe for r in rows if r.niqe is not None]
        return {"psnr": float(np.mean([r.psnr for r in rows])), "ssim": float(np.mean([r.ssim for r in rows])),
                "niqe": float(np.mean(niqe)) if niqe else None,
                "seconds_per_image": float(np.mean([r.seconds for r in rows])), "images": len(rows)}


# ---------------------------------------------------------------- evaluation
def _dataset_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The images of a dataset folder (not its subfolders) sorted by name, and its other files
    (named in a warning and ignored, as `srgan upscale` ignores them in a folder)."""
    images = list_images(folder, recursive=False)
    others = sorted(str(p) for p in folder.iterdir()
                    if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in IMAGE_SUFFIXES)
    return images, others


def _crop_box(hr: torch.Tensor, scale: int) -> tuple[int, int, int, int]:
    """The most detailed window (highest local variance of the HR), aligned to the LR grid."""
    h, w = hr.shape[-2:]
    size = min(CROP_SIZE, h - h % scale, w - w % scale)
    g = hr.float().mean(dim=0, keepdim=True).unsqueeze(0)
    stride = scale * max(1, size // (4 * scale))
    mean = F.avg_pool2d(g, size, stride)
    var = F.avg_pool2d(g * g, size, stride) - mean**2
    idx = int(var.flatten().argmax())
    top, left = divmod(idx, var.shape[-1])
    return top * stride, left * stride, size, size


def _pick_crop_indices(n_images: int, n_crops: int) -> set[int]:
    if n_crops <= 0 or n_images == 0:
        return set()
    return {round(i * (n_images - 1) / max(1, n_crops - 1)) for i in range(min(n_crops, n_images))}


def _niqe_or_none(model: NiqeModel, y: torch.Tensor, path: Path) -> float | None:
    """NIQE needs at least two 96x96 patches; smaller images get no score rather than ending the run."""
    try:
        return model.score(y.numpy())
    except SrganError as exc:
        log.warning("%s: no NIQE (%s)", path, exc)
        return None


def evaluate(models: Sequence[str], datasets: Sequence[str | Path], scale: int, *,
             niqe_model: str | Path | None = None, crops: int = 0, progress: bool | None = None,
             device: str = "auto", precision: str = "fp32", tile: int | str | None = "auto") -> EvalResults:
    """Score each model ('bicubic', 'lanczos', a preset with shipped weights, or a weights file) on
    each dataset folder. `crops` images per dataset also get zoomed side-by-side windows.

    Models run through the inference engine of `srgan upscale` with its `device`, `precision` and
    `tile` options. Precision defaults to fp32 (not upscale's `auto`, which is bf16 on CUDA) so that
    scores do not depend on the machine; `tile="auto"` runs benchmark-sized images whole and tiles
    large ones, with the exact context, so the score is the same either way."""
    folders = _checked_inputs(models, datasets, scale)
    options = UpscaleOptions(device=device, precision=precision, tile=tile)  # refused here, before any model loads
    niqe_fn = NiqeModel.load(niqe_model) if niqe_model is not None else None
    listed = [(folder, *_dataset_files(folder)) for folder in folders]  # fail fast on a missing folder
    upscalers = {spec: make_upscaler(spec, scale, options=options) for spec in models}
    results = EvalResults(scale=scale, models=list(models), datasets=[f.name for f in folders])
    for folder, paths, others in listed:
        for other in others:
            log.warning("%s: not an image, ignored", other)
        crop_at = _pick_crop_indices(len(paths), crops)
        scored = 0
        bar = tqdm(paths, desc=f"{folder.name} x{scale}", unit="img", disable=None if progress is None else not progress)
        for i, path in enumerate(bar):
            hr = _benchmark_image(path, scale, results)
            if hr is not None:
                _score_image(hr, path, folder.name, upscalers, results, niqe_fn, crop=i in crop_at)
                scored += 1
        if scored < len(paths):
            log.warning("%s: skipped %d of %d image(s)", folder, len(paths) - scored, len(paths))
        if not paths:
            raise SrganError(f"no readable images in {folder}")
        if scored == 0:
            reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in results.skipped[-3:])
            raise SrganError(f"no image in {folder} could be scored ({reasons})")
    return results


def _checked_inputs(models: Sequence[str], datasets: Sequence[str | Path], scale: int) -> list[Path]:
    """The dataset folders, once the scale, models and folders of a run are known to make sense."""
    if scale not in SCALES:
        raise SrganError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    if not models:
        raise SrganError("no model given")
    if len(set(models)) != len(models):
        raise SrganError(f"a model is given twice: {', '.join(models)}")
    folders = [Path(d) for d in datasets]
    if not folders:
        raise SrganError("no dataset folder given")
    if len({f.name for f in folders}) != len(folders):
        raise SrganError(f"dataset folders must have distinct names (they label the tables): {', '.join(map(str, folders))}")
    return folders


def _benchmark_image(path: Path, scale: int, results: EvalResults) -> torch.Tensor | None:
    """The mod-cropped HR image, or None (recorded in `results.skipped`) when it cannot be scored."""
    try:
        hr = benchmark_hr(path, scale)
    except SrganError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        log.warning("skipped %s: %s", path, reason)
        results.skipped.append((str(path), reason))
        return None
    if min(hr.shape[-2:]) < 2 * scale + 11:
        reason = (f"{hr.shape[-1]}x{hr.shape[-2]} is too small for x{scale} evaluation (needs "
                  f"{2 * scale + 11} pixels a side after the {scale}-pixel border crop and the 11x11 SSIM window)")
        log.warning("skipped %s: %s", path, reason)
        results.skipped.append((str(path), reason))
        return None
    return hr


def _score_image(hr: torch.Tensor, path: Path, dataset: str, upscalers: dict[str, Upscaler], results: EvalResults,
                 niqe_fn: Any, *, crop: bool) -> None:
    """Every model's scores on one HR image (and its crop panel when `crop`), added to `results`."""
    scale = results.scale
    lr = degrade(hr, scale)
    hr_y = y_channel(hr)
    panel = None
    if crop:
        box = _crop_box(hr, scale)
        panel = CropPanel(dataset, path.name, box)
        t, l_, h, w = box
        panel.tiles["LR (nearest)"] = lr[:, t // scale:(t + h) // scale, l_ // scale:(l_ + w) // scale]
        if "bicubic" not in upscalers:
            panel.tiles["bicubic"] = bicubic_upscaler(scale)(lr)[:, t:t + h, l_:l_ + w]
    for spec, upscale in upscalers.items():
        start = time.perf_counter()
        sr = upscale(lr)
        seconds = time.perf_counter() - start
        if sr.shape != hr.shape:
            raise SrganError(f"{spec} returned {tuple(sr.shape)} for {path.name}, expected {tuple(hr.shape)}")
        sr_y = y_channel(sr)
        niqe = _niqe_or_none(niqe_fn, sr_y[0, 0, scale:-scale, scale:-scale], path) if niqe_fn is not None else None
        results.images.append(ImageResult(dataset, spec, path.name, float(psnr_y(sr_y, hr_y, scale)),
                                          float(ssim_y(sr_y, hr_y, scale)), seconds, niqe))
        if panel is not None:
            t, l_, h, w = panel.box
            panel.tiles[spec] = sr[:, t:t + h, l_:l_ + w]
    if panel is not None:
        t, l_, h, w = panel.box
        panel.tiles["HR"] = hr[:, t:t + h, l_:l_ + w]
        results.crops.append(panel)


def format_table(results: EvalResults, dataset: str) -> str:
    """One dataset's table, headed by the protocol line."""
    with_niqe = any(r.niqe is not None for r in results.images)
    width = max(8, *(len(m) for m in results.models))
    head = f"{'model':<{width}}  {'PSNR':>8}  {'SSIM':>7}" + (f"  {'NIQE':>7}" if with_niqe else "") + "  s/image"
    lines = [f"{dataset} x{results.scale}  [{results.protocol}]", head, "-" * len(head)]
    for model in results.models:
        s = results.summary(dataset, model)
        if not s["images"]:
            continue
        niqe = s["niqe"]
        niqe_txt = f"  {niqe:7.4f}" if with_niqe and niqe is not None else ("  " + " " * 7 if with_niqe else "")
        psnr = s["psnr"]
        psnr_txt = f"{psnr:8.4f}" if math.isfinite(psnr) else f"{'inf':>8}"
        lines.append(f"{model:<{width}}  {psnr_txt}  {s['ssim']:7.4f}{niqe_txt}  {s['seconds_per_image']:7.4f}")
    return "\n".join(lines)
