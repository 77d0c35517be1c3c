"""One device and precision policy for training and inference: `auto` follows the hardware."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from srgan import hardware
from srgan.errors import SrganError
from srgan.hardware import resolve_device, resolve_precision


@pytest.fixture
def native_bf16(monkeypatch):
    """Pretend the CPU has (True) or lacks (False) native bf16; the real probe is cached."""
    def set_(value: bool) -> None:
        monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: value)
        hardware._warn_slow_bf16.cache_clear()
    return set_


def test_auto_is_fp32_on_a_cpu_without_native_bf16(native_bf16):
    native_bf16(False)
    assert resolve_precision("auto", "cpu") == torch.float32
    assert resolve_precision(None, "cpu") == torch.float32


def test_auto_is_bf16_on_a_cpu_with_native_bf16(native_bf16):
    native_bf16(True)
    assert resolve_precision("auto", "cpu") == torch.bfloat16
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16", "cpu") == torch.bfloat16  # no warning where it is native


def test_explicit_bf16_without_native_support_warns_once_with_the_cost(native_bf16):
    native_bf16(False)
    with pytest.warns(UserWarning, match="12x slower"):
        assert resolve_precision("bf16", "cpu") == torch.bfloat16
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_precision("bf16", "cpu")


def test_the_real_probe_agrees_with_the_kernel():
    flags = Path("/proc/cpuinfo").read_text()
    hardware.cpu_has_native_bf16.cache_clear()
    assert hardware.cpu_has_native_bf16() == (" avx512_bf16" in flags or " amx_bf16" in flags)
    assert "native bf16: " in hardware.describe_cpu()


def test_auto_is_fp32_where_onednn_is_limited_to_avx2():
    """The stand-in for an AVX2-only CPU: oneDNN would emulate bf16 there, so `auto` must not pick it."""
    code = "from srgan.hardware import resolve_precision; print(resolve_precision('auto', 'cpu'))"
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "torch.float32"


def test_fp16_and_unknown_precisions_are_refused_on_cpu():
    with pytest.raises(SrganError, match="fp16 is not supported on the CPU"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(SrganError):
        resolve_precision("int8", "cpu")


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", 5, "cuda:x"):
        with pytest.raises(SrganError, match="device"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(SrganError, match="CUDA is not available"):
            resolve_device("cuda:0")


@pytest.mark.parametrize(("flags", "expected"), [
    ("fpu sse avx2 fma", "none"),  # Zen 3: what int8 export keeps its weights to 7 bits for
    ("avx2 avx512f avx512_vnni", "VNNI"),  # Ice Lake
    ("avx2 avx_vnni", "VNNI"),  # Alder Lake
    ("avx512_vnni amx_bf16 amx_int8 amx_tile", "AMX"),  # Sapphire Rapids
])
def test_the_cpu_line_names_its_int8_dot_product(monkeypatch, tmp_path: Path, flags: str, expected: str) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"model name\t: some CPU\nflags\t\t: {flags}\n")
    hardware.cpu_has_native_bf16()  # cached from the real CPU before /proc/cpuinfo is replaced
    monkeypatch.setattr(hardware, "Path", lambda _: cpuinfo)
    hardware.cpu_int8_dot_product.cache_clear()
    try:
        assert hardware.cpu_int8_dot_product() == expected
        assert f"int8 dot product: {expected}" in hardware.describe_cpu()
    finally:
        hardware.cpu_int8_dot_product.cache_clear()
