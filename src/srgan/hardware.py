"""Where a model runs and in what precision, chosen one way for training and inference alike.

Precision `auto` follows the hardware, because the same setting is fast on one machine and a trap on
another: bf16 on a CPU only where it is native (AVX512-BF16 or AMX; measured on a 2-core AMD Zen 4,
bf16 inference 2.1x and training 1.7x fp32), fp32 on CPUs without it (on an AVX2-only Zen 3, bf16
inference was 12x *slower* than fp32: PyTorch emulates it), bf16 on CUDA GPUs that have it, else fp16.
An explicit bf16 on a CPU without native support runs, with one warning that says what it costs.
fp16 on the CPU is refused: PyTorch's CPU fp16 convolutions are slow or missing (Real-ESRGAN #306).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from pathlib import Path

import torch

from srgan.errors import SrganError

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
NAMES = {dtype: name for name, dtype in PRECISIONS.items()}


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16, asked of PyTorch (its CPU feature probe) or else of /proc/cpuinfo, and
    allowed to oneDNN: `ONEDNN_MAX_CPU_ISA=AVX2` (how an AVX2-only CPU is emulated) makes bf16 slow."""
    with contextlib.suppress(Exception):  # a private probe of oneDNN's effective ISA
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    probe = getattr(torch.cpu, "get_capabilities", None)
    with contextlib.suppress(Exception):  # an optional, private probe; else the kernel's flags
        caps = probe()
        return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


@functools.lru_cache(maxsize=1)
def cpu_int8_dot_product() -> str:
    """The CPU's int8 dot-product instructions, which decide what int8 inference buys: "AMX",
    "VNNI" (AVX512-VNNI or AVX-VNNI: int8 convolutions several times fp32's rate) or "none" (AVX2
    only: int8 products are summed in pairs in 16 bits, which saturate with full-range weights;
    hence `srgan export --int8` keeps weights to 7 bits)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "none"
    if "amx_int8" in flags:
        return "AMX"
    return "VNNI" if flags & {"avx512_vnni", "avx_vnni"} else "none"


def describe_cpu() -> str:
    """One line for logs and benchmark tables: model name and the features that decide precision."""
    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    capability = torch.backends.cpu.get_cpu_capability()
    return (f"{name}, {torch.get_num_threads()} threads, {capability}, "
            f"native bf16: {'yes' if cpu_has_native_bf16() else 'no'}, int8 dot product: {cpu_int8_dot_product()}")


def available_memory() -> int | None:
    """Bytes of memory this process can still take without swapping: the kernel's `MemAvailable`
    (free memory plus caches it can drop), capped by the memory cgroup's limit less its usage
    inside a container (cgroup v2 or v1). None where neither can be read (not Linux)."""
    sizes = []
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                sizes.append(int(line.split()[1]) * 1024)
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        with contextlib.suppress(OSError, ValueError):  # "max" (no limit) fails int() and is skipped
            root = Path("/sys/fs/cgroup")
            limit, usage = int((root / limit_file).read_text()), int((root / usage_file).read_text())
            if limit < 1 << 60:  # v1 writes a huge number for "no limit"
                sizes.append(max(0, limit - usage))
    return min(sizes) if sizes else None


def resolve_device(spec: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """`auto` (cuda:LOCAL_RANK if CUDA is present, else CPU), `cpu`, `cuda` or `cuda:N`, checked
    against this machine. `cuda` without an index means this process's local rank (torchrun)."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    if spec is not None and not isinstance(spec, str):
        raise SrganError(f"device must be auto, cpu or cuda:N, got {spec!r}")
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        index = spec.partition(":")[2]
        if index and not index.isdigit():
            raise SrganError(f"device must be auto, cpu or cuda:N, got {spec!r}")
        if not torch.cuda.is_available():
            raise SrganError(f"device {spec!r} requested but CUDA is not available here (use cpu)")
        number = int(index) if index else local_rank
        if number >= torch.cuda.device_count():
            raise SrganError(f"device {spec!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
        return torch.device(f"cuda:{number}")
    raise SrganError(f"device must be auto, cpu or cuda:N, got {spec!r}")


def resolve_precision(spec: str | torch.dtype | None, device: str | torch.device) -> torch.dtype:
    """`auto | fp32 | bf16 | fp16` (or a torch dtype) -> the dtype to compute in on `device`."""
    device = torch.device(device)
    if isinstance(spec, torch.dtype):
        if spec not in NAMES:
            raise SrganError(f"precision must be fp32, bf16 or fp16, got {spec}")
        dtype = spec
    else:
        text = (spec or "auto").strip().lower() if isinstance(spec, str) or spec is None else spec
        if text == "auto":
            return auto_precision(device)
        if text not in PRECISIONS:
            raise SrganError(f"precision must be auto, fp32, bf16 or fp16, got {spec!r}")
        dtype = PRECISIONS[text]
    if device.type == "cpu":
        if dtype == torch.float16:
            raise SrganError("fp16 is not supported on the CPU: use bf16 (the CPU's fast half precision, where "
                             "native) or fp32")
        if dtype == torch.bfloat16 and not cpu_has_native_bf16():
            _warn_slow_bf16()
    return dtype


def auto_precision(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else torch.float32


@functools.lru_cache(maxsize=1)
def _warn_slow_bf16() -> None:
    warnings.warn("bf16 on a CPU without native bf16 (no AVX512-BF16 or AMX) is emulated: measured 12x slower "
                  "than fp32 for inference on an AVX2-only AMD Zen 3; use precision auto or fp32", stacklevel=3)
