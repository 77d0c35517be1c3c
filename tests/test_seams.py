"""The seam ratio: near 1 for a seamless image, well above 1 where tiles meet with a jump, exactly the
whole-image value for srgan's exact tiling, and larger without context."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srgan.errors import SrganError
from srgan.evaluation.seams import grid_without_context, seam_scores
from srgan.inference.engine import prepare_model
from srgan.metrics.seams import border_error, seam_ratio
from srgan.models import create


@pytest.fixture(scope="module")
def texture() -> torch.Tensor:
    """A smooth random texture in 0..255 (blurred noise: neighbour steps of a few levels everywhere)."""
    noise = torch.rand(3, 1, 200, 200, generator=torch.Generator().manual_seed(0))
    kernel = torch.ones(1, 1, 5, 5) / 25
    return (F.conv2d(noise, kernel, padding=2)[:, 0] * 255).double()


def test_a_seamless_image_scores_near_one(texture):
    assert seam_ratio(texture, 40) == pytest.approx(1.0, abs=0.1)


def test_tiles_offset_against_each_other_score_high_and_only_on_their_grid(texture):
    offsets = torch.randn(5, 5, generator=torch.Generator().manual_seed(1)) * 16  # +-16 levels per tile
    tiled = texture + offsets.repeat_interleave(40, 0).repeat_interleave(40, 1)
    assert seam_ratio(tiled, 40) > 2 * seam_ratio(texture, 40) > 1.6
    assert seam_ratio(tiled, 30) < 1.5  # measured on the wrong grid the jumps are rare: the measure finds the grid


def test_gray_images_and_one_line_errors(texture):
    assert seam_ratio(texture[0], 40) == pytest.approx(seam_ratio(texture[:1], 40))
    for bad, tile, words in ((texture[None], 40, "(C, H, W)"), (texture, 1, "at least 2"), (texture, 42, "multiple"),
                             (texture, 200, "no border"), (torch.zeros(3, 50, 50), 10, "flat")):
        with pytest.raises(SrganError, match=words) as info:
            seam_ratio(bad, tile, period=4 if tile == 42 else 1)
        assert "\n" not in str(info.value)
    with pytest.raises(SrganError, match="reference"):
        border_error(texture, texture[:, :100], 40)


def test_the_period_compares_borders_with_pairs_at_the_same_phase(texture):
    # nearest-neighbour x4: all steps fall between LR pixels, as tile borders always do
    nearest = texture[:, :50, :50].repeat_interleave(4, 1).repeat_interleave(4, 2)
    assert seam_ratio(nearest, 40, period=4) == pytest.approx(1.0, abs=0.1)
    assert seam_ratio(nearest, 40) > 3  # without the period the borders look like seams


def test_border_error_sees_a_band_that_the_step_misses(texture):
    band = texture.clone()
    for border in (40, 80, 120, 160):  # both sides of each row border darkened alike: no extra step across it
        band[:, border - 2:border + 2, :] -= 10
    assert border_error(band, texture, 40) > 3 and border_error(texture, texture, 40) == 0
    assert seam_ratio(band, 40, reference=texture) == pytest.approx(1.0, abs=0.05)


def test_exact_tiling_is_the_zero_seam_reference_and_a_grid_without_context_is_not():
    torch.manual_seed(0)
    model = prepare_model(create("srresnet_nobn_x4", blocks=2, width=16))
    lr = F.avg_pool2d(torch.rand(1, 3, 96, 80, generator=torch.Generator().manual_seed(2)), 3, 1, 1)
    with torch.inference_mode():
        whole = model(lr)
    with torch.inference_mode():
        assert torch.allclose(grid_without_context(model, lr[..., :64, :64], 64, 4), model(lr[..., :64, :64]),
                              atol=1e-5)  # one tile: the whole image
    # 80 columns are 2.5 tiles: the last is padded to a whole tile (a 16-pixel tile would be thinner
    # than some padding) and cropped back
    assert grid_without_context(model, lr, 32, 4).shape == whole.shape
    scores = seam_scores(model, lr, 32, 4)
    assert scores["ratio_exact"] == pytest.approx(seam_ratio(whole[0].clamp(0, 1) * 255, 128, 4), abs=0.02)
    assert scores["border_error"] > 0.1 and abs(scores["ratio_vs_exact"] - 1) > 0.05


def test_the_shipped_model_shows_seams_without_context(shared):
    from srgan.data.degradation import benchmark_hr, degrade
    from srgan.models.weights import load_model

    lr = degrade(benchmark_hr(shared / "datasets" / "Set5" / "baby.png", 4), 4).float()[None, :, 20:68, 20:100] / 255
    scores = seam_scores(prepare_model(load_model("srresnet_x4")), lr, 64, 4)
    assert scores["ratio_vs_exact"] > 1.5 and scores["border_error"] > 1.0
