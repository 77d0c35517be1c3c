"""int8 post-training quantisation of an exported model (`srgan export --int8`), checked before it
is written.

Static quantisation with ONNX Runtime's `quantize_static`: QDQ format, weights per output channel
in 7 bits (`reduce_range`), uint8 convolution inputs calibrated by min/max on crops of the user's
training images, the first three convolutions (the head and the first residual block) left
float. Only the inputs of convolutions are quantised; their outputs, the residual sums and the
activations stay float (quantising every tensor, ORT's default, rounds the residual stream at
every block: 0.07-0.15 dB on Set5).

Why, measured on the shipped srresnet_x4 (60k iterations) with OpenVINO on a 2-core AMD EPYC Zen 3
(AVX2, no VNNI), 40 crops of T91, loss in dB PSNR-Y on the 19 held-out T91 images (the default
check) / Set5:

| recipe | held-out T91 | Set5 |
|---|---|---|
| before: 8-bit weights, every conv (ONNX Runtime, exact QDQ arithmetic) | 0.120 | 0.076 |
| before, run by OpenVINO on an AVX2 CPU | 0.880 | 1.437 |
| 7-bit weights | 0.128 | 0.099 |
| 7-bit weights, first conv float | 0.106 | 0.093 |
| 7-bit weights, first two convs float | 0.088 | 0.044 |
| the same and the tail conv float | 0.090 | 0.045 |
| 7-bit weights, first three convs and the tail float | 0.073 | 0.057 |
| 7-bit weights, first three convs float (this recipe; `srgan export`, `srgan eval`) | 0.069 | 0.058 |
| first conv float, 160 crops instead of 40 | 0.132 | 0.086 |
| first conv float, half the crops from bicubic-downscaled images | 0.111 | 0.100 |

7-bit weights because without VNNI (AVX2) int8 convolutions sum pairs of uint8 x int8 products in
16 bits, which saturate with full-range weights (ONNX Runtime's reason for `reduce_range`): the
file must be right on every CPU it is copied to. The first three convolutions because a torch
simulation of the recipe, one layer quantised at a time, puts 50% (srresnet_x4) and 55%
(srgan_x4) of the output's quantisation noise in them, for 3% of the FLOPs (the tail, which the
simulation also blamed, made no difference in the real runtime). Wider ranges (more
crops, downscaled crops) make every step coarser and lose more. Percentile calibration was 5x
slower and no better in the earlier measurement (0.08-0.09 dB). OpenVINO runs such a file with
int8 convolutions; ONNX Runtime runs it correctly but cannot fuse convolutions whose outputs stay
float (slower than fp32), so `backend="auto"` picks OpenVINO for `.onnx` files where installed.

Before anything is written the int8 model is scored against the fp32 export on HR images under the
benchmark protocol (`srgan eval`'s: MATLAB bicubic LR, `scale` pixels shaved, its own `Scorer`) by
what the model is for: PSNR-Y for a PSNR-oriented model (loss at most 0.1 dB by default; published
8-bit post-training quantisation of EDSR/SRResNet stays within about 0.1 dB), LPIPS for a GAN
(increase at most 0.01 by default), as the weights file's training record says. The check images
are `check` (e.g. Set5), or else every fifth calibration image, held out of the calibration.
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
from typing import Any

import numpy as np
import torch

from srgan.data.degradation import benchmark_hr, degrade
from srgan.errors import SrganError, one_line
from srgan.files import atomic_write
from srgan.imaging.folders import list_images
from srgan.imaging.io import read_8bit
from srgan.inference.onnx_backend import PRECISION_KEY, export_onnx
from srgan.models.generator import Generator

log = logging.getLogger(__name__)

DEFAULT_CROPS = 40
CROP = 64
HOLD_OUT_EVERY = 5
MAX_CROPS = 10_000
MIN_CHECK_LR = 4
FLOAT_CONVS = (0, 1, 2)  # graph-order indices of the convolutions that stay float (module docstring)
_FLUSH_EVERY = 8  # calibration crops whose activations ORT keeps in memory at once (~115 MB each)


@dataclass(frozen=True)
class Gate:
    """What the int8 model must keep: a score of its output against the HR image, the direction in
    which that score is better, and the largest change (the loss) accepted by default."""

    metric: str  # as `srgan eval --metrics` names it
    name: str
    unit: str
    higher_is_better: bool
    default_max_loss: float

    def loss(self, fp32: float, int8: float) -> float:
        return fp32 - int8 if self.higher_is_better else int8 - fp32


GATES = {  # by the model's training objective (`srgan.models.weights.training_objective`)
    "psnr": Gate("psnr", "PSNR-Y", " dB", True, 0.1),  # published 8-bit PTQ of EDSR/SRResNet: within about 0.1 dB
    "perceptual": Gate("lpips", "LPIPS", "", False, 0.01),  # a GAN is judged by how it looks, not by PSNR
}
DEFAULT_MAX_LOSS = GATES["psnr"].default_max_loss


@dataclass(frozen=True)
class QuantizationReport:
    path: Path
    crops: int
    check_images: int
    check_source: str  # the folder, or "held-out calibration images"
    gate: Gate
    score_fp32: float
    score_int8: float
    seconds: float

    @property
    def loss(self) -> float:
        return self.gate.loss(self.score_fp32, self.score_int8)

    def line(self) -> str:
        g = self.gate
        return (f"wrote {self.path} (int8, dynamic shape; {self.crops} calibration crops; {g.name} on "
                f"{self.check_images} {self.check_source} {self.score_fp32:.{_digits(g)}f}{g.unit} fp32 -> "
                f"{self.score_int8:.{_digits(g)}f}{g.unit} int8, {'loss' if g.higher_is_better else 'change'} "
                f"{self.loss:.{_digits(g) + 1}f}{g.unit}; {self.seconds:.0f} s)")


def _digits(gate: Gate) -> int:
    return 2 if gate.higher_is_better else 4


def quantize_generator(model: Generator, path: str | os.PathLike, calibrate: str | os.PathLike, *,
                       objective: str = "psnr", check: str | os.PathLike | None = None,
                       max_loss: float | None = None, crops: int = DEFAULT_CROPS, seed: int = 0,
                       backend: str = "auto", metric_weights: str | None = None,
                       overwrite: bool = False) -> QuantizationReport:
    """Export `model` to ONNX, quantise it to int8 calibrated on `crops` crops of the images in
    `calibrate`, score both on the `check` images with the gate of the model's `objective` ("psnr":
    PSNR-Y; "perceptual": LPIPS, its weights found from `metric_weights`), and write the int8 model
    to `path` (atomically) only if it loses at most `max_loss` (default: the gate's); an existing
    file is replaced only with `overwrite`."""
    import onnx

    if objective not in GATES:
        raise SrganError(f"unknown objective {objective!r}: one of {', '.join(GATES)}")
    gate = GATES[objective]
    max_loss = gate.default_max_loss if max_loss is None else max_loss
    if not math.isfinite(max_loss) or max_loss < 0:
        raise SrganError(f"max loss must be a finite number, 0 or more, got {max_loss}")
    if not 1 <= crops <= MAX_CROPS:
        raise SrganError(f"calibration crops must be from 1 to {MAX_CROPS}, got {crops}")
    start = time.perf_counter()
    calibration, check_files, check_source = _split(calibrate, check)
    _check_sizes(calibration, model.input_multiple(), "calibration")
    _check_sizes(check_files, MIN_CHECK_LR * model.scale, "check")
    scorer = gate_scorer(gate, model.scale, metric_weights)  # before the slow part: a missing LPIPS file fails now
    samples = calibration_crops(calibration, crops, seed=seed, channels=model.in_channels)
    with tempfile.TemporaryDirectory(prefix="srgan-int8-") as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", dynamic=True)
        int8 = Path(tmp) / "int8.onnx"
        graph = quantize_onnx(fp32, int8, samples)
        onnx.save(graph, str(int8))  # with its metadata, which the runner reads
        score_fp32, score_int8 = (mean_score(m, check_files, model.scale, scorer, backend) for m in (fp32, int8))
        loss = gate.loss(score_fp32, score_int8)
        if loss > max_loss:
            d = _digits(gate)
            raise SrganError(f"the int8 model {'loses' if gate.higher_is_better else 'changes'} {gate.name} by "
                             f"{loss:.{d + 1}f}{gate.unit} on {len(check_files)} {check_source} ({score_fp32:.{d}f} -> "
                             f"{score_int8:.{d}f}{gate.unit}), more than the allowed {max_loss:g}{gate.unit} "
                             "(--max-loss): nothing written")
        target = atomic_write(path, lambda out: onnx.save(graph, out), overwrite=overwrite)
    return QuantizationReport(target, len(samples), len(check_files), check_source, gate, score_fp32, score_int8,
                              time.perf_counter() - start)


def quantize_onnx(fp32: Path, int8: Path, samples: list[np.ndarray]) -> Any:
    """The int8 graph (an `onnx.ModelProto`, fp32's metadata kept, precision "int8") of the exported
    model `fp32`, by the recipe of the module docstring, calibrated on `samples`."""
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise SrganError("int8 export needs ONNX Runtime: `pip install srgan[onnx]`") from exc
    import onnx

    prepared = int8.with_name("prepared.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    convs = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv"]
    kept_float = sorted({convs[i] for i in FLOAT_CONVS if -len(convs) <= i < len(convs)})
    flush = next(k for k in range(_FLUSH_EVERY, 0, -1) if len(samples) % k or k == 1)  # ORT collects nothing
    try:  # if the crop count is a multiple of the flush size (onnxruntime 1.2x)
        quantize_static(str(prepared), str(int8), _Reader(samples), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=kept_float, calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"OpTypesToExcludeOutputQuantization": ["Conv"],
                                       "CalibMaxIntermediateOutputs": flush})
    except Exception as exc:
        raise SrganError(f"ONNX Runtime could not quantise the model: {one_line(exc)}") from exc
    graph = onnx.load(str(int8))
    metadata = {p.key: p.value for p in onnx.load(str(fp32), load_external_data=False).metadata_props}
    del graph.metadata_props[:]
    for key, value in {**metadata, PRECISION_KEY: "int8"}.items():
        graph.metadata_props.add(key=key, value=value)
    return graph


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


def gate_scorer(gate: Gate, scale: int, weights: str | None = None) -> Any:
    """`srgan eval`'s own `Scorer` for the gate's metric, `scale` pixels shaved per border as there."""
    from srgan.evaluation.scoring import Scorer

    return Scorer([gate.metric], reference=True, crop=scale, device=torch.device("cpu"), weights=weights)


def mean_score(model_path: Path, images: list[Path], scale: int, scorer: Any, backend: str = "auto") -> float:
    """Mean score (the `scorer`'s one metric) of an exported model (fp32 compute for its float layers)
    on HR images under the benchmark protocol of `srgan eval`: MATLAB bicubic LR of the mod-cropped HR."""
    from srgan.evaluation.runner import model_upscaler
    from srgan.inference.cache import build_runner

    upscale = model_upscaler(build_runner(model_path, device="cpu", precision="fp32", backend=backend), scale,
                             device="cpu", precision="fp32")
    scores = []
    for path in images:
        hr = benchmark_hr(path, scale)
        scores.append(scorer.score(upscale(degrade(hr, scale)), scorer.reference(hr), path)[scorer.metrics[0]])
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

