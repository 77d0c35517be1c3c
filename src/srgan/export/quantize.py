"""int8 post-training quantisation of an exported model (`srgan export --int8`), checked before it
is written.

Static quantisation with ONNX Runtime's `quantize_static` (QDQ format, int8 weights per output
channel, uint8 activations calibrated by min/max on crops of the user's training images). Only the
inputs of convolutions are quantised; their outputs, the residual sums and the activations stay
float. Why, measured on the shipped srresnet_x4 (Set5 x4 PSNR-Y, 40 calibration crops of T91,
three crop draws): quantising every tensor ORT can (its default) loses 0.07-0.15 dB, because the
residual stream of 16 blocks is rounded to 8 bits at every block; convolution inputs only lose
0.05-0.07 dB; percentile calibration of the default graph 0.08-0.09 dB at 5x the calibration time;
NNCF's defaults (OpenVINO's quantiser, symmetric or mixed preset) 0.27-0.43 dB. Weights alone
(per-channel int8) cost 0.002 dB. OpenVINO runs such a file with int8 convolutions, 3-4x its fp32
speed on the 2-core AVX-512 CPU; ONNX Runtime runs it correctly but unfused (slower than fp32), so
`backend="auto"` picks OpenVINO for `.onnx` files where it is installed.

Before anything is written the int8 model is scored against the fp32 export on HR images under the
benchmark protocol (`srgan eval`'s: MATLAB bicubic LR, PSNR on Y); a loss above `max_loss` dB
(published 8-bit post-training quantisation of EDSR/SRResNet stays within about 0.1 dB) refuses
the export. The check images are `check` (e.g. Set5), or else every fifth calibration image, held
out of the calibration.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from srgan.data.degradation import benchmark_hr, degrade
from srgan.errors import SrganError, one_line
from srgan.files import atomic_write
from srgan.imaging.folders import list_images
from srgan.imaging.io import read_8bit
from srgan.inference.onnx_backend import PRECISION_KEY, export_onnx
from srgan.metrics.psnr_ssim import psnr_y, y_channel
from srgan.models.generator import Generator

log = logging.getLogger(__name__)

DEFAULT_MAX_LOSS = 0.1
DEFAULT_CROPS = 40
CROP = 64
HOLD_OUT_EVERY = 5
MAX_CROPS = 10_000
MIN_CHECK_LR = 4
_FLUSH_EVERY = 8  # calibration crops whose activations ORT keeps in memory at once (~115 MB each)


@dataclass(frozen=True)
class QuantizationReport:
    path: Path
    crops: int
    check_images: int
    check_source: str  # the folder, or "held-out calibration images"
    psnr_fp32: float
    psnr_int8: float
    seconds: float

    @property
    def loss(self) -> float:
        return self.psnr_fp32 - self.psnr_int8

    def line(self) -> str:
        return (f"wrote {self.path} (int8, dynamic shape; {self.crops} calibration crops; PSNR-Y on "
                f"{self.check_images} {self.check_source} {self.psnr_fp32:.2f} dB fp32 -> {self.psnr_int8:.2f} "
                f"dB int8, loss {self.loss:.3f} dB; {self.seconds:.0f} s)")


def quantize_generator(model: Generator, path: str | os.PathLike, calibrate: str | os.PathLike, *,
                       check: str | os.PathLike | None = None, max_loss: float = DEFAULT_MAX_LOSS,
                       crops: int = DEFAULT_CROPS, seed: int = 0, backend: str = "auto",
                       overwrite: bool = False) -> QuantizationReport:
    """Export `model` to ONNX, quantise it to int8 calibrated on `crops` crops of the images in
    `calibrate`, score both on the `check` images, and write the int8 model to `path` (atomically)
    only if it loses at most `max_loss` dB PSNR-Y (an existing file is replaced only with `overwrite`)."""
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise SrganError("int8 export needs ONNX Runtime: `pip install srgan[onnx]`") from exc
    import onnx

    if not math.isfinite(max_loss) or max_loss < 0:
        raise SrganError(f"max loss must be a finite number of dB, 0 or more, got {max_loss}")
    if not 1 <= crops <= MAX_CROPS:
        raise SrganError(f"calibration crops must be from 1 to {MAX_CROPS}, got {crops}")
    start = time.perf_counter()
    calibration, check_files, check_source = _split(calibrate, check)
    _check_sizes(calibration, model.input_multiple(), "calibration")
    _check_sizes(check_files, MIN_CHECK_LR * model.scale, "check")
    samples = calibration_crops(calibration, crops, seed=seed, channels=model.in_channels)
    with tempfile.TemporaryDirectory(prefix="srgan-int8-") as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", dynamic=True)
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        int8 = Path(tmp) / "int8.onnx"
        flush = next(k for k in range(_FLUSH_EVERY, 0, -1) if len(samples) % k or k == 1)  # ORT collects
        try:  # nothing if the crop count is a multiple of the flush size (onnxruntime 1.2x)
            quantize_static(str(prepared), str(int8), _Reader(samples), quant_format=QuantFormat.QDQ,
                            per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                            op_types_to_quantize=["Conv"], calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"OpTypesToExcludeOutputQuantization": ["Conv"],
                                           "CalibMaxIntermediateOutputs": flush})
        except Exception as exc:
            raise SrganError(f"ONNX Runtime could not quantise the model: {one_line(exc)}") from exc
        graph = onnx.load(str(int8))
        metadata = {p.key: p.value for p in onnx.load(str(fp32), load_external_data=False).metadata_props}
        del graph.metadata_props[:]
        for key, value in {**metadata, PRECISION_KEY: "int8"}.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(int8))
        psnr_fp32 = mean_psnr(fp32, check_files, model.scale, backend)
        psnr_int8 = mean_psnr(int8, check_files, model.scale, backend)
        loss = psnr_fp32 - psnr_int8
        if loss > max_loss:
            raise SrganError(f"the int8 model loses {loss:.3f} dB PSNR-Y on {len(check_files)} {check_source} "
                             f"({psnr_fp32:.2f} -> {psnr_int8:.2f} dB), more than the allowed {max_loss:g} dB "
                             "(--max-loss): nothing written")
        target = atomic_write(path, lambda out: onnx.save(graph, out), overwrite=overwrite)
    return QuantizationReport(target, len(samples), len(check_files), check_source, psnr_fp32, psnr_int8,
                              time.perf_counter() - start)


def _check_sizes(paths: list[Path], least: int, what: str) -> None:
    """Refuse, before any work, an image that cannot be read or is smaller than `least` pixels on a
    side (from its header): a check image needs `MIN_CHECK_LR` LR pixels a side (PSNR leaves out a
    border of `scale`), a calibration crop the model's input grid."""
    from PIL import Image

    for path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise SrganError(f"{what} image {path}: cannot be read ({one_line(exc)[:200]})") from exc
        if min(width, height) < least:
            raise SrganError(f"{what} image {path} is {width}x{height}: the int8 {what} needs images of at least "
                             f"{least}x{least} pixels (remove it, or give another folder)")


def _split(calibrate: str | os.PathLike, check: str | os.PathLike | None) -> tuple[list[Path], list[Path], str]:
    """(calibration images, check images, how to name the check images)."""
    images = list_images(calibrate, recursive=True)
    if not images:
        raise SrganError(f"no images in the calibration folder {calibrate}")
    if check is not None:
        checks = list_images(check, recursive=True)
        if not checks:
            raise SrganError(f"no images in the check folder {check}")
        return images, checks, f"images of {Path(check).name}"
    if len(images) < 2:
        raise SrganError(f"{calibrate} has one image: the check needs images held out of the calibration "
                         "(add images, or give a check folder)")
    held_out = images[::HOLD_OUT_EVERY]
    return [p for p in images if p not in held_out], held_out, "held-out calibration images"


def calibration_crops(paths: list[Path], count: int, *, seed: int = 0, channels: int = 3) -> list[np.ndarray]:
    """`count` random CROP x CROP crops (smaller images whole), taken in turn from the images in a
    seeded random order, as float32 (1, C, h, w) arrays in [0, 1]: what the model sees at run time."""
    rng = np.random.default_rng(seed)
    order = [paths[i] for i in rng.permutation(len(paths))]
    images: dict[Path, torch.Tensor] = {}
    crops = []
    for k in range(count):
        path = order[k % len(order)]
        if path not in images:
            try:
                images[path] = read_8bit(path).float().div(255).expand(channels, -1, -1)
            except SrganError as exc:
                raise SrganError(f"calibration image {path}: {exc}") from exc
        image = images[path]
        height, width = image.shape[-2:]
        h, w = min(CROP, height), min(CROP, width)
        top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        crops.append(np.ascontiguousarray(image[None, :, top:top + h, left:left + w].numpy()))
    return crops


def mean_psnr(model_path: Path, images: list[Path], scale: int, backend: str = "auto") -> float:
    """Mean PSNR-Y of an exported model (fp32 compute for the float layers) under the benchmark
    protocol of `srgan eval`, on the given HR images."""
    from srgan.evaluation.runner import model_upscaler
    from srgan.inference.cache import build_runner

    upscale = model_upscaler(build_runner(model_path, device="cpu", precision="fp32", backend=backend), scale,
                             device="cpu", precision="fp32")
    scores = []
    for path in images:
        hr = benchmark_hr(path, scale)
        scores.append(float(psnr_y(y_channel(upscale(degrade(hr, scale))), y_channel(hr), scale)))
    return float(np.mean(scores))


class _Reader:
    """ONNX Runtime's calibration data reader over a list of inputs."""

    def __init__(self, samples: list[np.ndarray]) -> None:
        self.samples = samples
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:
        self._items: Iterator[dict[str, np.ndarray]] = iter({"lr": s} for s in self.samples)

