"""Tiled inference must be seamless: with the default context it reproduces the whole-image pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from srgan.errors import SrganError
from srgan.inference.engine import prepare_model
from srgan.inference.tiling import auto_tile, halve_tile_on_cuda_oom, tiled_forward
from srgan.models import create


def _levels(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.rand(1, 3, 83, 70, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("preset", ["srresnet_x4", "fpt_x4"])  # zero and reflect padding
def test_tiled_equals_whole_image(preset: str, image: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = prepare_model(create(preset))
    image = image[..., :48, :43]  # 2 x 2 tiles; the 40-pixel context makes each tile ~6x its core
    with torch.inference_mode():
        whole = model(image)
    tiled = tiled_forward(model, image, scale=4, tile=24)
    assert tiled.shape == (1, 3, 192, 172) and tiled.dtype == torch.float32
    assert (_levels(tiled) - _levels(whole)).abs().max() <= 1
    assert (tiled - whole).abs().max() < 1e-5


def test_radius_is_tight_so_less_context_shows_seams(image: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = prepare_model(create("srresnet_x4", blocks=2))
    radius = model.context()
    assert radius == 12  # 4 (9x9 head) + 2*2 (blocks) + 1 + 1 + 1/2 + 4/4 (tail at x4) = 11.5
    image = image[..., :50, :47]
    with torch.inference_mode():
        whole = model(image)
    exact = tiled_forward(model, image, scale=4, tile=24, tile_pad=radius)
    short = tiled_forward(model, image, scale=4, tile=24, tile_pad=radius - 1)
    seams = tiled_forward(model, image, scale=4, tile=24, tile_pad=0)
    assert (exact - whole).abs().max() < 1e-5
    assert (short - whole).abs().max() > 1e-4
    assert (seams - whole).abs().max() > 1e-3


@pytest.mark.parametrize("preset", ["mit_x4", "uos_x4", "keras_x4", "srresnet_x2"])
def test_radius_covers_every_upsampler(preset: str) -> None:
    torch.manual_seed(0)
    model = prepare_model(create(preset, blocks=1))
    scale = model.config.scale
    x = torch.rand(1, 3, 45, 38)
    with torch.inference_mode():
        whole = model(x)
    assert (tiled_forward(model, x, scale=scale, tile=16) - whole).abs().max() < 1e-5


def test_feather_weights_sum_to_one() -> None:
    """A context-free x2 'model' must come out unchanged through overlapping feathered tiles."""
    x = torch.rand(1, 3, 50, 61)
    upscale = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
    out = tiled_forward(upscale, x, scale=2, tile=16, tile_pad=5)
    assert torch.allclose(out, upscale(x), atol=1e-6)


def test_feathering_hides_seams_better_than_cropping(image: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = prepare_model(create("srresnet_x4", blocks=2))
    with torch.inference_mode():
        whole = model(image)
    cropped = tiled_forward(model, image, scale=4, tile=24, tile_pad=0)
    feathered = tiled_forward(model, image, scale=4, tile=24, tile_pad=6)
    assert (feathered - whole).abs().mean() < 0.5 * (cropped - whole).abs().mean()


def test_batches_and_float16_output_match(image: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = prepare_model(create("srresnet_x4", blocks=1))
    single = tiled_forward(model, image, scale=4, tile=20)
    batched = tiled_forward(model, image, scale=4, tile=20, batch=4)
    half = torch.empty(1, 3, 332, 280, dtype=torch.float16)
    returned = tiled_forward(model, image, scale=4, tile=20, out=half)
    assert returned is half
    assert (batched - single).abs().max() < 1e-5
    assert (half.float() - single).abs().max() < 1e-3


def test_auto_tile_follows_the_budget() -> None:
    model = create("srresnet_x4", blocks=1)
    assert auto_tile(model, (100, 100), scale=4, tile_pad=12, device="cpu") is None  # fits whole
    small = auto_tile(model, (2000, 2000), scale=4, tile_pad=40, device="cpu", budget_bytes=200 << 20)
    large = auto_tile(model, (2000, 2000), scale=4, tile_pad=40, device="cpu", budget_bytes=800 << 20)
    assert 16 <= small < large < 2000


def test_auto_tile_on_cpu_sizes_from_the_memory_available(monkeypatch) -> None:
    from srgan.inference import tiling

    model = prepare_model(create("srresnet_x4"))
    plan = lambda size: auto_tile(model, size, scale=4, tile_pad=40, device="cpu")
    monkeypatch.setattr(tiling, "available_memory", lambda: 16 << 30)
    assert plan((512, 512)) is None  # the astronaut of `make demo` runs whole
    roomy = plan((2000, 2000))
    monkeypatch.setattr(tiling, "available_memory", lambda: 6 << 30)
    tight = plan((2000, 2000))
    monkeypatch.setattr(tiling, "available_memory", lambda: 2 << 30)
    assert plan((512, 512)) is not None  # its 1.7 GB of activations do not fit half of 2 GB
    assert 16 < tight < roomy < 2000
    budget = (16 << 30) // 2 - 3 * 4 * 3 * 16 * 2000 * 2000  # half the memory less three float32 outputs
    assert (roomy + 88) ** 2 * 6400 > budget >= (roomy + 80) ** 2 * 6400  # the largest tile that fits
    monkeypatch.setattr(tiling, "available_memory", lambda: None)  # unreadable: the fixed fallback
    assert plan((512, 512)) is not None


def test_working_set_estimate_follows_the_largest_layer_and_precision() -> None:
    from srgan.inference.tiling import ACTIVATION_SLACK, activation_bytes_per_pixel

    # the rewritten SRResNet x4 peaks at its second 64 -> 256 conv at 2x: 256 + 1024 values per LR pixel
    fp32 = prepare_model(create("srresnet_x4", blocks=1))  # the trunk's depth does not matter
    assert activation_bytes_per_pixel(fp32) == ACTIVATION_SLACK * 4 * 1280
    bf16 = prepare_model(create("srresnet_x4", blocks=1), "cpu", "bf16")
    assert activation_bytes_per_pixel(bf16, torch.bfloat16) == ACTIVATION_SLACK * 2 * 1280
    # reflect padding holds a padded copy of the 64-channel 4x-resolution input of fpt_x4's last conv
    assert activation_bytes_per_pixel(prepare_model(create("fpt_x4", blocks=1))) == ACTIVATION_SLACK * 4 * 3 * 1024


def test_available_memory_is_read_from_the_kernel() -> None:
    from srgan.hardware import available_memory

    lines = Path("/proc/meminfo").read_text().splitlines()
    total = next(int(line.split()[1]) * 1024 for line in lines if line.startswith("MemTotal:"))
    assert 0 < available_memory() <= total


def test_bad_input_is_a_one_line_error() -> None:
    model = prepare_model(create("srresnet_x4", blocks=1))
    with pytest.raises(SrganError):
        tiled_forward(model, torch.rand(3, 20, 20), scale=4)
    with pytest.raises(SrganError):
        tiled_forward(model, torch.rand(1, 3, 20, 20), scale=2)  # wrong scale for the model
    with pytest.raises(SrganError):
        tiled_forward(lambda t: t, torch.rand(1, 3, 20, 20), scale=1)  # no config, no tile_pad


def test_cuda_out_of_memory_restarts_with_half_the_tile() -> None:
    tried = []

    def run(tile: int | None) -> torch.Tensor:
        tried.append(tile)
        if tile is None or tile > 100:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return torch.zeros(1)

    halve_tile_on_cuda_oom(run, None, 500, torch.device("cuda"))
    assert tried == [None, 250, 125, 62]
    with pytest.raises(SrganError, match="out of CUDA memory"):
        halve_tile_on_cuda_oom(lambda tile: run(None), 64, 500, torch.device("cuda"))
    with pytest.raises(torch.cuda.OutOfMemoryError):  # the CPU has no such retry
        halve_tile_on_cuda_oom(run, None, 500, torch.device("cpu"))


def test_wrong_channel_count_is_a_clear_error() -> None:
    model = prepare_model(create("srresnet_x4", blocks=1))
    with pytest.raises(SrganError, match="3-channel"):
        tiled_forward(model, torch.rand(1, 4, 20, 20), scale=4)


class _Unbounded(torch.nn.Module):
    """A x2 'model' whose architecture declares no bounded context (as global pooling or attention would)."""

    in_channels = 3

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def context(self) -> None:
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[-2:]))
        return F.interpolate(x, scale_factor=2, mode="nearest")


def test_an_unbounded_context_is_tiled_with_blended_overlaps() -> None:
    from srgan.inference.tiling import FEATHER_PAD

    x = torch.rand(1, 3, 140, 140)
    model = _Unbounded()
    out = tiled_forward(model, x, scale=2, tile=70)
    assert model.seen == [(70 + FEATHER_PAD, 70 + FEATHER_PAD)] * 4  # 2 x 2 tiles, each with its overlap
    assert torch.allclose(out, model(x), atol=1e-6)  # raised-cosine weights sum to one
