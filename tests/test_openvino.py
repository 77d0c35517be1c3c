"""OpenVINO backend: the exported graph gives torch's numbers, tiles exactly, and is what `auto` runs
for an `.onnx` file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install srgan[openvino])")
pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install srgan[onnx])")

import srgan
from srgan.errors import SrganError
from srgan.inference.cache import build_runner, resolve_backend
from srgan.inference.onnx_backend import export_onnx
from srgan.inference.openvino_backend import OpenVinoRunner
from srgan.inference.tiling import tiled_forward
from srgan.models import create


@pytest.mark.parametrize("preset", ["srresnet_x4", "fpt_x4"])
def test_fp32_matches_torch_on_odd_sizes_and_through_tiles(preset: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create(preset, blocks=2).eval()
    runner = OpenVinoRunner(export_onnx(model, tmp_path / "g.onnx"), dtype=torch.float32)
    assert (runner.scale, runner.in_channels, runner.context()) == (4, 3, model.context())
    assert runner.config == model.config
    for size in ((37, 29), (16, 51)):  # neither is the 64x64 export sample
        x = torch.rand(1, 3, *size)
        with torch.no_grad():
            expected = model(x)
        assert (runner(x) - expected).abs().max() < 1e-4
    x = torch.rand(1, 3, 45, 33)
    with torch.no_grad():
        expected = model(x)
    assert (tiled_forward(runner, x, scale=4, tile=16) - expected).abs().max() < 1e-4


def test_auto_backend_runs_an_onnx_file_on_openvino(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create("srresnet_x2", blocks=1).eval()
    path = export_onnx(model, tmp_path / "m.onnx")
    assert resolve_backend("auto", path) == "openvino"
    assert resolve_backend("auto", "srresnet_x4") == "torch"
    with pytest.raises(SrganError, match="not torch"):
        resolve_backend("torch", path)
    image = (np.random.default_rng(0).random((23, 19, 3)) * 255).astype(np.uint8)
    ours = srgan.upscale(image, model, tile=None, precision="fp32").astype(int)
    from_file = srgan.upscale(image, str(path), tile=None, precision="fp32").astype(int)
    assert np.abs(ours - from_file).max() <= 1
    runner = build_runner(path, precision="fp32")
    assert isinstance(runner.model, OpenVinoRunner) and runner.scale == 2


def test_bf16_is_close_and_bad_requests_are_one_line_errors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create("srresnet_x4", blocks=1).eval()
    path = export_onnx(model, tmp_path / "m.onnx")
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        expected = model(x)
    assert (OpenVinoRunner(path, dtype=torch.bfloat16)(x) - expected).abs().max() < 0.05
    with pytest.raises(SrganError, match="fp32 or bf16"):
        OpenVinoRunner(path, dtype=torch.float16)
    with pytest.raises(SrganError, match="runs on the CPU"):
        build_runner(path, device="cuda:0", backend="openvino")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(SrganError, match="not an ONNX model"):
        OpenVinoRunner(bad)
