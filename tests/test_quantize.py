"""int8 export: the shipped model quantised on a few training crops stays within the stated loss of
fp32, tiles exactly, and an export that loses too much is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install srgan[onnx])")
pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install srgan[onnx])")

from srgan.cli import main
from srgan.data.degradation import benchmark_hr, degrade
from srgan.export import quantize
from srgan.inference.cache import build_runner
from srgan.inference.tiling import tiled_forward
from srgan.models import create, load_model, save_model


def _folder(tmp_path: Path, name: str, files: list[Path]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for file in files:
        (folder / file.name).symlink_to(file)
    return folder


def test_shipped_model_in_int8_stays_within_the_loss_and_tiles_exactly(shared: Path, tmp_path: Path) -> None:
    import onnx

    pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install srgan[openvino])")
    t91 = sorted((shared / "datasets" / "T91").glob("*.png"))[:20]
    calibrate = _folder(tmp_path, "calibrate", t91)
    check = _folder(tmp_path, "check", [shared / "datasets" / "Set5" / "butterfly.png"])
    report = quantize.quantize_generator(load_model("srresnet_x4"), tmp_path / "int8.onnx", calibrate, check=check,
                                         crops=40)
    assert report.path.is_file() and report.crops == 40 and report.check_images == 1
    assert report.psnr_fp32 > 23 and report.loss <= quantize.DEFAULT_MAX_LOSS
    graph = onnx.load(report.path)
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.graph.node}
    assert {p.key: p.value for p in graph.metadata_props}["srgan_precision"] == "int8"

    runner = build_runner(report.path, precision="fp32")  # `srgan upscale --model int8.onnx` runs this
    assert runner.model.precision == "int8" and runner.scale == 4 and runner.model.context() == 40
    x = degrade(benchmark_hr(shared / "datasets" / "Set5" / "bird.png", 4), 4)[None, :, :70, :61].float() / 255
    whole = tiled_forward(runner.model, x, scale=4)
    assert (tiled_forward(runner.model, x, scale=4, tile=32) - whole).abs().max() < 1e-4  # exact context
    fp32 = build_runner(load_model("srresnet_x4"), device="cpu", precision="fp32")
    difference = (whole - fp32.model(x.contiguous(memory_format=torch.channels_last))).abs()
    # really quantised, about a level on a natural image (srresnet_x4 at 60k iterations: 1.01 levels)
    assert 0 < difference.mean() < 1.5 / 255


def test_an_export_losing_too_much_is_refused_and_writes_nothing(shared: Path, tmp_path: Path, monkeypatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    weights = save_model(create("srresnet_x2", blocks=1), tmp_path / "m.safetensors")
    calibrate = _folder(tmp_path, "calibrate", sorted((shared / "datasets" / "T91").glob("*.png"))[:3])
    scores = iter([30.0, 29.8])  # fp32, then int8
    monkeypatch.setattr(quantize, "mean_psnr", lambda *args, **kwargs: next(scores))
    target = tmp_path / "m.onnx"
    code = main(["export", "--model", str(weights), "--onnx", str(target), "--int8", "--calibrate", str(calibrate),
                 "--calibration-crops", "2"])
    err = capsys.readouterr().err
    assert code == 2 and not target.exists()
    assert "loses 0.200 dB" in err and "nothing written" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob(".m.onnx*"))  # no temporary file left behind


def test_int8_needs_calibration_images(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    weights = save_model(create("srresnet_x2", blocks=1), tmp_path / "m.safetensors")
    target = str(tmp_path / "m.onnx")
    assert main(["export", "--model", str(weights), "--onnx", target, "--int8"]) == 2
    assert "--int8 needs --calibrate" in capsys.readouterr().err
    lonely = tmp_path / "one"
    lonely.mkdir()
    from PIL import Image

    Image.new("RGB", (40, 40)).save(lonely / "a.png")
    assert main(["export", "--model", str(weights), "--onnx", target, "--int8", "--calibrate", str(lonely)]) == 2
    assert "held out" in capsys.readouterr().err
    assert main(["export", "--model", str(weights), "--onnx", target, "--calibrate", str(lonely)]) == 2
    assert "belong to --int8" in capsys.readouterr().err
