"""ONNX export: dynamic height/width, same numbers as torch, usable through the tiled path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from srgan.cli import main
from srgan.errors import SrganError
from srgan.inference.onnx_backend import OnnxRunner, export_onnx
from srgan.inference.tiling import tiled_forward
from srgan.models import create, save_model


@pytest.mark.parametrize("preset", ["srresnet_x4", "fpt_x4"])
def test_dynamic_export_matches_torch_on_odd_sizes(preset: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create(preset, blocks=2).eval()
    runner = OnnxRunner(export_onnx(model, tmp_path / "g.onnx", dynamic=True))
    assert runner.config == model.config
    for size in ((37, 29), (16, 51)):  # neither is the 64x64 export sample
        x = torch.rand(1, 3, *size)
        with torch.no_grad():
            expected = model(x)
        got = runner(x)
        assert got.shape == expected.shape
        assert (got - expected).abs().max() < 1e-4


def test_full_srresnet_x4_parity_through_tiles(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create("srresnet_x4").eval()
    runner = OnnxRunner(export_onnx(model, tmp_path / "srresnet_x4.onnx", dynamic=True))
    x = torch.rand(1, 3, 45, 33)
    with torch.no_grad():
        expected = model(x)
    assert (tiled_forward(runner, x, scale=4, tile=24) - expected).abs().max() < 1e-4


def test_cli_export_refuses_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    weights = save_model(create("srresnet_x2", blocks=1), tmp_path / "m.safetensors")
    target = tmp_path / "m.onnx"
    assert main(["export", "--model", str(weights), "--onnx", str(target), "--dynamic"]) == 0
    first = target.read_bytes()
    assert main(["export", "--model", str(weights), "--onnx", str(target)]) == 2
    assert "exists" in capsys.readouterr().err
    assert target.read_bytes() == first
    x = torch.rand(1, 3, 21, 18)
    assert OnnxRunner(target)(x).shape == (1, 3, 42, 36)


def test_not_an_onnx_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(SrganError, match="not an ONNX model"):
        OnnxRunner(bad)
    with pytest.raises(SrganError, match="no such file"):
        OnnxRunner(tmp_path / "missing.onnx")


def test_metadata_names_the_architecture_and_files_from_before_still_tile(tmp_path: Path) -> None:
    import onnx

    torch.manual_seed(0)
    model = create("mit_x2", blocks=1).eval()
    path = export_onnx(model, tmp_path / "g.onnx", dynamic=True)
    runner = OnnxRunner(path)
    assert (runner.architecture, runner.scale, runner.in_channels) == ("srresnet", 2, 3)
    assert runner.context() == model.context() == 10
    graph = onnx.load(path)  # as exported before architectures were named: config and scale only
    kept = [p for p in graph.metadata_props if p.key in ("srgan_config", "scale")]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    onnx.save(graph, tmp_path / "old.onnx")
    old = OnnxRunner(tmp_path / "old.onnx")
    assert old.architecture == "srresnet" and old.config == model.config and old.context() == 10
    x = torch.rand(1, 3, 40, 37)
    with torch.no_grad():
        assert (tiled_forward(old, x, scale=2, tile=16) - model(x)).abs().max() < 1e-4
