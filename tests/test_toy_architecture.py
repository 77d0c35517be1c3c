"""An architecture is one self-contained definition: this file alone defines and registers a toy
generator (two convolutions and a PixelShuffle, with its own context), and the library trains it
through the real Trainer, tiles it exactly, saves and loads it and exports it to ONNX, with no line
of srgan written for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

import srgan
from srgan.inference.engine import prepare_model
from srgan.inference.tiling import tiled_forward
from srgan.models.generator import Generator, GeneratorConfig
from srgan.models.registry import register, register_architecture
from srgan.models.weights import read_metadata
from srgan.training.config import load_config
from srgan.training.trainer import Trainer


@dataclass(frozen=True)
class ToyConfig(GeneratorConfig):
    scale: int = 2
    in_channels: int = 3
    out_channels: int = 3
    width: int = 16


@register_architecture("toy", ToyConfig)
class Toy(Generator):
    def __init__(self, config: ToyConfig | None = None) -> None:
        super().__init__(config or ToyConfig())
        c = self.config
        self.body = nn.Sequential(nn.Conv2d(c.in_channels, c.width, 3, padding=1), nn.PReLU(),
                                  nn.Conv2d(c.width, c.out_channels * c.scale**2, 3, padding=1),
                                  nn.PixelShuffle(c.scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def context(self) -> int:
        return 2  # two 3x3 convolutions at the LR resolution, one pixel each; the shuffle only rearranges


@register
def toy_x2() -> ToyConfig:
    """A toy x2 generator: two 3x3 convolutions and a PixelShuffle."""
    return ToyConfig()


def _outputs_equal(a: nn.Module, b: nn.Module) -> bool:
    x = torch.rand(1, 3, 13, 11)
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


def test_the_trainer_trains_exports_and_validates_it(shared: Path, tmp_path: Path, one_thread: None) -> None:
    config = load_config(None, ["model.preset=toy_x2", f"data.folders={shared / 'datasets' / 'T91'}",
                                "data.hr_crop=32", "data.batch_size=2", "train.iterations=3", "train.threads=1",
                                "train.ema=0.5", f"validation.folder={shared / 'datasets' / 'Set5'}",
                                "validation.max_images=1", f"train.out_dir={tmp_path}"])
    exported = Trainer(config).fit()
    meta = read_metadata(exported)
    assert (meta["architecture"], meta["preset"], meta["iterations"]) == ("toy", "toy_x2", 3)
    assert meta["val_psnr_y"] > 0  # validated on Set5 through the same protocol as any preset
    model = srgan.load_model(exported)
    assert isinstance(model, Toy) and model.config == ToyConfig()
    torch.manual_seed(config.train.seed)  # the trainer's initial weights
    assert not _outputs_equal(model, Toy())  # trained


def test_tiles_exactly_with_its_declared_context() -> None:
    torch.manual_seed(0)
    model = prepare_model(srgan.create_model("toy_x2"))
    x = torch.rand(1, 3, 45, 38)
    with torch.inference_mode():
        whole = model(x)
    assert (tiled_forward(model, x, scale=2, tile=16) - whole).abs().max() < 1e-6
    short = tiled_forward(model, x, scale=2, tile=16, tile_pad=model.context() - 1)
    assert (short - whole).abs().max() > 1e-4  # the context is needed, not a safe over-estimate


def test_save_load_and_onnx(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = srgan.create_model("toy_x2")
    path = srgan.save_model(model, tmp_path / "toy.safetensors", preset="toy_x2")
    assert read_metadata(path)["architecture"] == "toy"
    assert _outputs_equal(model, srgan.load_model(path))

    pytest.importorskip("onnxruntime")
    from srgan.inference.onnx_backend import OnnxRunner, export_onnx

    runner = OnnxRunner(export_onnx(model, tmp_path / "toy.onnx"))
    assert (runner.architecture, runner.config, runner.context()) == ("toy", model.config, 2)
    x = torch.rand(1, 3, 30, 27)
    with torch.no_grad():
        assert (tiled_forward(runner, x, scale=2, tile=16) - model(x)).abs().max() < 1e-5
