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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from srgan.data.degradation import benchmark_hr, degrade
from srgan.data.pairs import SizeMismatch, check_sizes, match_pairs, read_pair
from srgan.errors import SrganError
from srgan.evaluation.scoring import Scorer, parse_metrics
from srgan.hardware import resolve_device
from srgan.imaging.folders import list_images
from srgan.imaging.formats import IMAGE_SUFFIXES
from srgan.imaging.imresize import imresize
from srgan.imaging.io import LoadedImage, read_8bit
from srgan.imaging.quantize import to_uint8
from srgan.inference.cache import build_runner
from srgan.inference.options import UpscaleOptions
from srgan.inference.upscale import upscale_loaded

log = logging.getLogger(__name__)

SCALES = (2, 4, 8)
PROTOCOL = ("PSNR/SSIM on Y of BT.601 YCbCr (16-235, MATLAB rgb2ycbcr of uint8), crop = {scale} px, "
            "LR = MATLAB bicubic x1/{scale} of the mod-cropped uint8 HR, SSIM 11x11 Gaussian sigma 1.5")
PAIRED_PROTOCOL = ("PSNR/SSIM on Y of BT.601 YCbCr (16-235, MATLAB rgb2ycbcr of uint8), crop = {crop} px, "
                   "LR = the given images, paired with the HR by file name (x{scale}), SSIM 11x11 Gaussian sigma 1.5")
NO_REFERENCE_PROTOCOL = "no reference: LR = the given images (x{scale}), NIQE on Y, crop = {crop} px"
DEEP_PROTOCOL = {"lpips": "LPIPS AlexNet v0.1 on RGB", "dists": "DISTS VGG16 on RGB, not resized"}
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
    scores: dict[str, float | None]  # metric name -> value (None: the image could not get that one)
    seconds: float
    stats: dict[str, float] = field(default_factory=dict)  # no reference: the output's size, mean and std

    @property
    def psnr(self) -> float | None:
        return self.scores.get("psnr")

    @property
    def ssim(self) -> float | None:
        return self.scores.get("ssim")

    @property
    def niqe(self) -> float | None:
        return self.scores.get("niqe")


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
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim"])
    mode: str = "synthetic"  # synthetic (LR made from HR), paired (LR and HR given), no-reference (LR only)
    crop: int | None = None  # border pixels removed before scoring (None: the scale)
    images: list[ImageResult] = field(default_factory=list)
    crops: list[CropPanel] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (image, why it was not scored)

    @property
    def protocol(self) -> str:
        crop = self.scale if self.crop is None else self.crop
        text = {"synthetic": PROTOCOL.replace("crop = {scale}", f"crop = {crop}").format(scale=self.scale),
                "paired": PAIRED_PROTOCOL.format(scale=self.scale, crop=crop),
                "no-reference": NO_REFERENCE_PROTOCOL.format(scale=self.scale, crop=crop)}[self.mode]
        deep = [DEEP_PROTOCOL[m] for m in self.metrics if m in DEEP_PROTOCOL]
        return "; ".join([text, *deep])

    @property
    def columns(self) -> list[str]:
        """The metrics, then (without a reference) the output's mean and standard deviation."""
        return self.metrics + (["mean", "std"] if self.mode == "no-reference" else [])

    def summary(self, dataset: str, model: str) -> dict[str, float | int | None]:
        """Means per metric (over the images that got a value; None if none did) and per output statistic."""
        rows = [r for r in self.images if r.dataset == dataset and r.model == model]
        out: dict[str, float | int | None] = {}
        for m in self.metrics:
            values = [r.scores[m] for r in rows if r.scores.get(m) is not None]
            out[m] = float(np.mean(values)) if values else None
        for key in rows[0].stats if rows else ():
            out[key] = float(np.mean([r.stats[key] for r in rows]))
        out["seconds_per_image"] = float(np.mean([r.seconds for r in rows])) if rows else None
        out["images"] = len(rows)
        return out


# ---------------------------------------------------------------- evaluation
def _dataset_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The images of a dataset folder (not its subfolders) sorted by name, and its other files
    (named in a warning and ignored, as `srgan upscale` ignores them in a folder)."""
    images = list_images(folder, recursive=False)
    others = sorted(str(p) for p in folder.iterdir()
                    if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in IMAGE_SUFFIXES)
    return images, others


def _crop_box(image: torch.Tensor, align: int, size: int) -> tuple[int, int, int, int]:
    """The most detailed `size` window (highest local variance) of `image`, aligned to `align` pixels."""
    h, w = image.shape[-2:]
    size = min(size, h - h % align, w - w % align)
    g = image.float().mean(dim=0, keepdim=True).unsqueeze(0)
    stride = align * max(1, size // (4 * align))
    mean = F.avg_pool2d(g, size, stride)
    var = F.avg_pool2d(g * g, size, stride) - mean**2
    idx = int(var.flatten().argmax())
    top, left = divmod(idx, var.shape[-1])
    return top * stride, left * stride, size, size


def _pick_crop_indices(n_images: int, n_crops: int) -> set[int]:
    if n_crops <= 0 or n_images == 0:
        return set()
    return {round(i * (n_images - 1) / max(1, n_crops - 1)) for i in range(min(n_crops, n_images))}


@dataclass
class _Item:
    """One image to score: its name, the model input, and the reference (None without one)."""
    path: Path
    lr: torch.Tensor
    hr: torch.Tensor | None


def _items(paths: Sequence[Path | tuple[Path, Path]], mode: str, scale: int, crop: int, metrics: list[str],
           skipped: list[tuple[str, str]]) -> Iterator[tuple[int, _Item]]:
    """Read each image (or pair), with its index; unreadable or too small ones are skipped with their reason."""
    needs = 2 * crop + (11 if "ssim" in metrics else 1)
    for index, entry in enumerate(paths):
        path = entry[1] if isinstance(entry, tuple) else entry
        try:
            if mode == "synthetic":
                hr = benchmark_hr(path, scale)
                item = _Item(path, degrade(hr, scale), hr)
            elif mode == "paired":
                item = _Item(path, *read_pair(entry[0], entry[1], scale))
            else:
                item = _Item(path, read_8bit(path), None)
        except SizeMismatch:
            raise  # the wrong folders or scale, not one bad file
        except SrganError as exc:
            reason = str(exc).removeprefix(f"{path}: ")
            log.warning("skipped %s: %s", path, reason)
            skipped.append((str(path), reason))
            continue
        side = min(item.lr.shape[-2:]) * scale
        if side < needs:
            reason = (f"{item.lr.shape[-1] * scale}x{item.lr.shape[-2] * scale} is too small for x{scale} evaluation "
                      f"(needs {needs} pixels a side after the {crop}-pixel border crop"
                      + (" and the 11x11 SSIM window)" if "ssim" in metrics else ")"))
            log.warning("skipped %s: %s", path, reason)
            skipped.append((str(path), reason))
            continue
        yield index, item


def _panel(dataset: str, item: _Item, scale: int, bicubic: Upscaler | None) -> CropPanel:
    """The zoomed window of an image: chosen on the HR, or without one on the LR."""
    if item.hr is not None:
        box = _crop_box(item.hr, scale, CROP_SIZE)
    else:
        t, l_, h, w = _crop_box(item.lr, 1, CROP_SIZE // scale)
        box = (t * scale, l_ * scale, h * scale, w * scale)
    panel = CropPanel(dataset, item.path.name, box)
    t, l_, h, w = box
    panel.tiles["LR (nearest)"] = item.lr[:, t // scale:(t + h) // scale, l_ // scale:(l_ + w) // scale]
    if bicubic is not None:
        panel.tiles["bicubic"] = bicubic(item.lr)[:, t:t + h, l_:l_ + w]
    return panel


def _output_stats(sr: torch.Tensor) -> dict[str, float]:
    x = sr.double()
    return {"width": float(sr.shape[-1]), "height": float(sr.shape[-2]), "mean": float(x.mean()),
            "std": float(x.std(correction=0))}


def _score_item(item: _Item, dataset: str, upscalers: dict[str, Upscaler], scorer: Scorer, scale: int,
                panel: CropPanel | None) -> list[ImageResult]:
    ref = scorer.reference(item.hr)
    rows = []
    for spec, upscale in upscalers.items():
        start = time.perf_counter()
        sr = upscale(item.lr)
        seconds = time.perf_counter() - start
        want = (item.lr.shape[0], item.lr.shape[-2] * scale, item.lr.shape[-1] * scale)
        if sr.shape != (item.hr.shape if item.hr is not None else want):
            raise SrganError(f"{spec} returned {tuple(sr.shape)} for {item.path.name}, expected {want}")
        stats = _output_stats(sr) if item.hr is None else {}
        rows.append(ImageResult(dataset, spec, item.path.name, scorer.score(sr, ref, item.path), seconds, stats))
        if panel is not None:
            t, l_, h, w = panel.box
            panel.tiles[spec] = sr[:, t:t + h, l_:l_ + w]
    if panel is not None and item.hr is not None:
        t, l_, h, w = panel.box
        panel.tiles["HR"] = item.hr[:, t:t + h, l_:l_ + w]
    return rows


def _inputs(datasets: Sequence[str | Path], lr_folders: Sequence[str | Path] | None, scale: int
            ) -> tuple[str, list[tuple[str, list]]]:
    """The mode and, per dataset, its name and images (paths, or (LR, HR) pairs checked for size)."""
    hr, lr = [Path(d) for d in datasets], [Path(d) for d in lr_folders or ()]
    if not hr and not lr:
        raise SrganError("no dataset folder given")
    if lr and hr and len(lr) != len(hr):
        raise SrganError(f"--lr and --data pair folders in order: got {len(lr)} LR and {len(hr)} HR folder(s)")
    names = [f.name for f in (hr or lr)]
    if len(set(names)) != len(names):
        raise SrganError(f"dataset folders must have distinct names (they label the tables): {', '.join(names)}")
    if not lr:
        listed = []
        for folder in hr:
            paths, others = _dataset_files(folder)
            for other in others:
                log.warning("%s: not an image, ignored", other)
            if not paths:
                raise SrganError(f"no readable images in {folder}")
            listed.append((folder.name, paths))
        return "synthetic", listed
    if not hr:
        listed = [(folder.name, _dataset_files(folder)[0]) for folder in lr]
        empty = next((f for f, (_, p) in zip(lr, listed, strict=True) if not p), None)
        if empty is not None:
            raise SrganError(f"no readable images in {empty}")
        return "no-reference", listed
    listed = [(h.name, match_pairs(l_, h)) for l_, h in zip(lr, hr, strict=True)]
    for _, pairs in listed:
        check_sizes(pairs, scale)
    return "paired", listed


def evaluate(models: Sequence[str], datasets: Sequence[str | Path], scale: int, *,
             lr_folders: Sequence[str | Path] | None = None, metrics: str | Sequence[str] | None = None,
             crop: int | None = None, niqe_model: str | Path | None = None, metric_weights: str | Path | None = None,
             crops: int = 0, progress: bool | None = None, device: str = "auto", precision: str = "fp32",
             tile: int | str | None = "auto") -> EvalResults:
    """Score each model ('bicubic', 'lanczos', a preset with shipped weights, or a weights file).

    Three modes: `datasets` alone are HR folders and the LR is made from each HR by the classic
    protocol (MATLAB bicubic); with `lr_folders` (one per dataset, in order) the LR images are given,
    matched to the HR by file name (real LR/HR pairs); `lr_folders` without `datasets` is the
    no-reference mode (NIQE and output statistics). `metrics`: names from psnr, ssim, lpips, dists,
    niqe (default: all that apply whose weights are found; `metric_weights` is a folder or file for
    LPIPS / DISTS, see `srgan.models.pretrained`; `niqe_model` overrides the shipped NIQE parameters).
    `crop`: border pixels removed before scoring (default: the scale for the classic protocol, else
    0, as the real-world papers do). `crops` images per dataset also get zoomed side-by-side windows.

    Models run through the inference engine of `srgan upscale` with its `device`, `precision` and
    `tile` options. Precision defaults to fp32 (not upscale's `auto`, which is bf16 on CUDA) so that
    scores do not depend on the machine; `tile="auto"` runs benchmark-sized images whole and tiles
    large ones, with the exact context, so the score is the same either way."""
    if scale not in SCALES:
        raise SrganError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    if not models:
        raise SrganError("no model given")
    if len(set(models)) != len(models):
        raise SrganError(f"a model is given twice: {', '.join(models)}")
    if crop is not None and crop < 0:
        raise SrganError(f"crop must be >= 0, got {crop}")
    chosen = parse_metrics(metrics)
    if niqe_model is not None and chosen is not None and "niqe" not in chosen:
        chosen.append("niqe")
    options = UpscaleOptions(device=device, precision=precision, tile=tile)  # refused here, before any model loads
    mode, listed = _inputs(datasets, lr_folders, scale)  # fail fast on a missing folder or pair
    border = crop if crop is not None else (scale if mode == "synthetic" else 0)
    scorer = Scorer(chosen, reference=mode != "no-reference", crop=border, device=resolve_device(device),
                    niqe_model=niqe_model, weights=metric_weights)
    upscalers = {spec: make_upscaler(spec, scale, options=options) for spec in models}
    results = EvalResults(scale=scale, models=list(models), datasets=[name for name, _ in listed],
                          metrics=scorer.metrics, mode=mode, crop=border)
    for name, paths in listed:
        _evaluate_dataset(results, name, paths, upscalers, scorer, crops, progress)
    return results


def _evaluate_dataset(results: EvalResults, name: str, paths: list, upscalers: dict[str, Upscaler], scorer: Scorer,
                      crops: int, progress: bool | None) -> None:
    scale = results.scale
    crop_at = _pick_crop_indices(len(paths), crops)
    bicubic = None if "bicubic" in upscalers else bicubic_upscaler(scale)
    skipped_before = len(results.skipped)
    bar = tqdm(paths, desc=f"{name} x{scale}", unit="img", disable=None if progress is None else not progress)
    scored = 0
    for index, item in _items(bar, results.mode, scale, scorer.crop, scorer.metrics, results.skipped):
        panel = _panel(name, item, scale, bicubic) if index in crop_at else None
        results.images += _score_item(item, name, upscalers, scorer, scale, panel)
        if panel is not None:
            results.crops.append(panel)
        scored += 1
    if scored < len(paths):
        log.warning("%s: skipped %d of %d image(s)", name, len(paths) - scored, len(paths))
    if scored == 0:
        reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in results.skipped[skipped_before:][-3:])
        raise SrganError(f"no image in {name} could be scored ({reasons})")


COLUMNS = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "dists": "DISTS", "niqe": "NIQE", "mean": "mean",
           "std": "std"}  # table heads; mean / std: the output's pixel values (0-255) without a reference


def format_value(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if math.isfinite(value) else "inf"


def format_table(results: EvalResults, dataset: str) -> str:
    """One dataset's table, headed by the protocol line."""
    columns = results.columns
    width = max(8, *(len(m) for m in results.models))
    head = f"{'model':<{width}}" + "".join(f"  {COLUMNS[c]:>8}" for c in columns) + "   s/image"
    lines = [f"{dataset} x{results.scale}  [{results.protocol}]", head, "-" * len(head)]
    for model in results.models:
        s = results.summary(dataset, model)
        if s["images"]:
            values = "".join(f"  {format_value(s[c]):>8}" for c in columns)
            lines.append(f"{model:<{width}}{values}  {s['seconds_per_image']:8.4f}")
    return "\n".join(lines)
