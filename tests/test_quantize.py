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


def _four_bit_weights(quantize_onnx):
    """`quantize_onnx` with every int8 weight tensor then rounded to 16 levels: a broken quantisation."""
    import numpy as np
    from onnx import numpy_helper

    def broken(*args, **kwargs):
        graph = quantize_onnx(*args, **kwargs)
        for k, init in enumerate(graph.graph.initializer):
            w = numpy_helper.to_array(init)
            if w.dtype == np.int8 and w.ndim == 4:
                step = max(1.0, float(np.abs(w).max()) / 7)
                crushed = (np.round(w / step) * step).clip(-128, 127).astype(np.int8)
                graph.graph.initializer[k].CopyFrom(numpy_helper.from_array(crushed, init.name))
        return graph

    return broken


def test_shipped_model_in_int8_stays_within_the_loss_and_tiles_exactly(shared: Path, tmp_path: Path, monkeypatch,
                                                                       capsys: pytest.CaptureFixture) -> None:
    """The recipe passes the real gate on the shipped PSNR model; the same export with its weights
    crushed to 4 bits is refused by it, far beyond the allowed loss."""
    import onnx

    pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install srgan[openvino])")
    t91 = sorted((shared / "datasets" / "T91").glob("*.png"))[:20]
    calibrate = _folder(tmp_path, "calibrate", t91)
    check = _folder(tmp_path, "check", [shared / "datasets" / "Set5" / "butterfly.png"])
    report = quantize.quantize_generator(load_model("srresnet_x4"), tmp_path / "int8.onnx", calibrate, check=check,
                                         crops=40)
    assert report.path.is_file() and report.crops == 40 and report.check_images == 1
    assert report.gate.name == "PSNR-Y" and report.score_fp32 > 23 and report.loss <= quantize.DEFAULT_MAX_LOSS
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

    monkeypatch.setattr(quantize, "quantize_onnx", _four_bit_weights(quantize.quantize_onnx))
    assert main(["export", "--model", "srresnet_x4", "--int8", "--calibrate", str(calibrate), "--check", str(check),
                 "-o", str(tmp_path / "broken.onnx")]) == 2
    err = capsys.readouterr().err
    assert "loses PSNR-Y by" in err and "nothing written" in err and not (tmp_path / "broken.onnx").exists()
    assert float(err.split("loses PSNR-Y by ")[1].split(" dB")[0]) > max(0.3, 5 * report.loss)


@pytest.mark.parametrize(("objective", "scores", "message"), [
    ("psnr", (30.0, 29.8), "loses PSNR-Y by 0.200 dB"),
    ("perceptual", (0.200, 0.215), "changes LPIPS by 0.01500"),  # LPIPS: higher is worse
])
def test_an_export_losing_too_much_is_refused_and_writes_nothing(shared: Path, tmp_path: Path, monkeypatch,
                                                                 capsys: pytest.CaptureFixture, objective: str,
                                                                 scores: tuple[float, float], message: str) -> None:
    torch.manual_seed(0)
    weights = save_model(create("srresnet_x2", blocks=1), tmp_path / "m.safetensors")
    calibrate = _folder(tmp_path, "calibrate", sorted((shared / "datasets" / "T91").glob("*.png"))[:3])
    given = iter(scores)  # fp32, then int8
    monkeypatch.setattr(quantize, "mean_score", lambda *args, **kwargs: next(given))
    target = tmp_path / "m.onnx"
    code = main(["export", "--model", str(weights), "--onnx", str(target), "--int8", "--calibrate", str(calibrate),
                 "--calibration-crops", "2", "--objective", objective, "--metric-weights", str(shared / "weights")])
    err = capsys.readouterr().err
    assert code == 2 and not target.exists()
    assert message in err and "nothing written" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob(".m.onnx*"))  # no temporary file left behind


def test_the_gate_follows_the_objective_a_weights_file_records(tmp_path: Path) -> None:
    from srgan.models.weights import read_metadata, shipped_weights, training_objective

    assert {"srgan_x4", "srresnet_x4"} <= set(shipped_weights())
    weights = Path(quantize.__file__).resolve().parents[1] / "weights"
    assert training_objective(read_metadata(weights / "srgan_x4.safetensors")) == "perceptual"
    assert training_objective(read_metadata(weights / "srresnet_x4.safetensors")) == "psnr"
    assert training_objective({}) == "psnr"  # a community file: judged by PSNR
    gan = {"training": {"config": {"losses": {"pixel": {"type": "l1"}, "adv": {"type": "ragan"}}}}}
    assert training_objective(gan) == "perceptual"
    assert quantize.GATES["perceptual"].loss(0.20, 0.215) == pytest.approx(0.015)  # LPIPS: higher is worse
    assert quantize.GATES["psnr"].loss(30.0, 29.9) == pytest.approx(0.1)


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
