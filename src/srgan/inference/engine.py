"""Turning a trained generator into a fast inference module: device and precision choice,
batch norm folded into the convolutions, channels_last memory layout.

Precision policy (issue 4): `auto` is fp32 on the CPU and bf16 on CUDA (fp16 where the GPU has no
bf16). fp16 on the CPU is refused with an `SrganError` rather than silently changed: PyTorch's CPU
fp16 convolutions are slow or missing, and a user who asked for fp16 should learn that bf16 is the
CPU's fast half precision instead of getting a crash deep inside the model (Real-ESRGAN #306, #319).
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.inference.fuse import fold_batch_norms, inplace_prelus

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """`auto` (CUDA if present, else CPU), `cpu`, `cuda` or `cuda:N`, checked against this machine."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        index = spec.partition(":")[2]
        if index and not index.isdigit():
            raise SrganError(f"device must be auto, cpu or cuda:N, got {spec!r}")
        if not torch.cuda.is_available():
            raise SrganError(f"device {spec!r} requested but CUDA is not available here (use --device cpu)")
        if index and int(index) >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise SrganError(f"device {spec!r} does not exist: this machine has {count} GPU(s)")
        return torch.device(spec)
    raise SrganError(f"device must be auto, cpu or cuda:N, got {spec!r}")


def resolve_precision(spec: str | torch.dtype | None, device: str | torch.device) -> torch.dtype:
    """`auto|fp32|bf16|fp16` (or a torch dtype) -> the dtype the model runs in on `device`."""
    device = torch.device(device)
    if isinstance(spec, torch.dtype):
        dtype = spec
        if dtype not in PRECISIONS.values():
            raise SrganError(f"precision must be fp32, bf16 or fp16, got {dtype}")
    else:
        spec = (spec or "auto").strip().lower()
        if spec == "auto":
            if device.type != "cuda":
                return torch.float32
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if spec not in PRECISIONS:
            raise SrganError(f"precision must be auto, fp32, bf16 or fp16, got {spec!r}")
        dtype = PRECISIONS[spec]
    if dtype == torch.float16 and device.type == "cpu":
        raise SrganError("fp16 is not supported on the CPU: use --precision bf16 "
                         "(the CPU's fast half precision) or fp32")
    return dtype


def prepare_model(model: nn.Module, device: str | torch.device = "cpu",
                  precision: str | torch.dtype = "fp32") -> nn.Module:
    """A copy of `model` ready for inference: eval mode, BN folded, the architecture's own exact
    rewrites (`Generator.rewrite_for_inference`; SRResNet moves its tail conv before the last
    PixelShuffle), in-place activations, channels_last, on `device` in the resolved precision.
    The caller's model is left untouched. Feed it channels_last inputs of the same dtype
    (`tiled_forward` does).

    Measured on the 2-core AVX-512 CPU (srresnet_x4, 256x256, fp32, benchmarks/upscale_speed.py):
    BN folding + channels_last is ~1.35x a plain eager forward; the sub-pixel tail (3x faster
    tail conv) and in-place activations (10x faster) take it to ~1.9x, ~78% of the conv peak.
    Tried and left out: a channels_last-ordered PixelShuffle (no gain), `torch.jit.freeze` (1.8x
    slower, 27 s to prepare), `torch.compile` (~1.3x, but ~30 s per input shape, so it pays only
    for long runs of one shape). bf16 by casting the model and input is as accurate as autocast,
    at least as fast, and halves the weights' memory."""
    device = resolve_device(device)
    dtype = resolve_precision(precision, device)
    prepared = copy.deepcopy(model).eval()
    folded = fold_batch_norms(prepared)
    rewrite = getattr(prepared, "rewrite_for_inference", None)
    if callable(rewrite):
        rewrite()
    inplace_prelus(prepared)
    prepared = prepared.to(device=device, dtype=dtype, memory_format=torch.channels_last)
    for p in prepared.parameters():
        p.requires_grad_(False)
    log.debug("prepared model: %d batch norms folded, %s, %s", folded, device, dtype)
    return prepared
