"""Training losses against hand-computed references: pixel, SSIM, VGG perceptual, adversarial."""

from __future__ import annotations

import math

import pytest
import torch

from srgan.errors import SrganError
from srgan.imaging.color import rgb_to_y
from srgan.losses.perceptual import PerceptualLoss
from srgan.losses.pixel import charbonnier_loss, l1_loss, mse_loss
from srgan.losses.registry import build_loss, register_loss
from srgan.losses.ssim_loss import ssim_loss
from srgan.metrics.ssim import ssim


def softplus(v: float) -> float:
    """-log(sigmoid(-v)) = log(1 + e^v): BCE of logit v against label 0."""
    return math.log1p(math.exp(v))


# ---------------------------------------------------------------- pixel


def test_pixel_losses_match_hand_values() -> None:
    sr = torch.tensor([0.0, 0.5, 1.0, 0.25]).view(1, 1, 2, 2)
    hr = torch.tensor([0.0, 0.0, 0.5, 1.0]).view(1, 1, 2, 2)
    assert mse_loss(sr, hr).item() == pytest.approx((0 + 0.25 + 0.25 + 0.5625) / 4)
    assert l1_loss(sr, hr).item() == pytest.approx((0 + 0.5 + 0.5 + 0.75) / 4)
    eps = 1e-3
    expected = (eps + 2 * math.sqrt(0.25 + eps**2) + math.sqrt(0.5625 + eps**2)) / 4
    assert charbonnier_loss(sr, hr).item() == pytest.approx(expected, rel=1e-6)
    assert build_loss("charbonnier", eps=0.1)(hr, hr).item() == pytest.approx(0.1)
    assert build_loss("mse") is mse_loss
    with pytest.raises(SrganError, match="huber"):
        build_loss("huber")


# ---------------------------------------------------------------- SSIM


def test_ssim_loss_is_one_minus_the_metric() -> None:
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 24, 24, generator=g)
    sr = (hr + 0.1 * torch.randn(2, 3, 24, 24, generator=g)).clamp(0, 1)
    expected = 1 - ssim(sr, hr).mean()
    assert ssim_loss(sr, hr).item() == pytest.approx(expected.item(), abs=1e-7)
    assert ssim_loss(hr, hr).item() == pytest.approx(0.0, abs=1e-6)
    on_y = 1 - ssim(rgb_to_y(sr), rgb_to_y(hr)).mean()
    assert ssim_loss(sr, hr, on_y=True).item() == pytest.approx(on_y.item(), abs=1e-7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_bf16 = ssim_loss(sr, hr)
    assert in_bf16.dtype == torch.float32 and in_bf16.item() == pytest.approx(expected.item(), abs=1e-6)
    sr.requires_grad_(True)
    ssim_loss(sr, hr).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0


# ---------------------------------------------------------------- perceptual


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 32, 32, generator=g)
    return hr, (hr + 0.05 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)


@pytest.fixture(scope="module")
def fpt_loss(vgg_weights) -> PerceptualLoss:
    """The fpt variant's three layers; its extractor is shared by the other perceptual tests."""
    return PerceptualLoss({"relu2_2": 1.0, "relu3_2": 1.0, "relu3_4": 1.0}, weights=vgg_weights)


def test_perceptual_loss_zero_for_identical_and_gradients_reach_only_the_input(fpt_loss, images) -> None:
    hr, sr = images
    loss = fpt_loss
    assert loss(hr, hr.clone()).item() == 0.0
    sr = sr.clone().requires_grad_(True)
    value = loss(sr, hr)
    assert value.item() > 0
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.vgg.parameters())


def test_perceptual_loss_weights_scale_and_criterion(fpt_loss, images) -> None:
    hr, sr = images
    vgg = fpt_loss.vgg
    a = PerceptualLoss("relu2_2", vgg=vgg)(sr, hr)
    b = PerceptualLoss("relu3_4", vgg=vgg)(sr, hr)
    both = PerceptualLoss({"relu2_2": 1.0, "relu3_4": 0.5}, vgg=vgg)(sr, hr)
    torch.testing.assert_close(both, a + 0.5 * b)
    # MSE of scaled features grows with the square of the scale, L1 linearly.
    unscaled = PerceptualLoss("relu2_2", vgg=vgg, feature_scale=1.0)(sr, hr)
    torch.testing.assert_close(unscaled, a * 12.75**2, rtol=1e-5, atol=0)
    l1 = PerceptualLoss("relu2_2", vgg=vgg, criterion="l1", feature_scale=1.0)(sr, hr)
    torch.testing.assert_close(PerceptualLoss("relu2_2", vgg=vgg, criterion="l1", feature_scale=0.5)(sr, hr), l1 / 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_bf16 = PerceptualLoss("relu3_4", vgg=vgg)(sr, hr)
    assert in_bf16.item() == pytest.approx(b.item(), rel=0.03)


def test_perceptual_loss_refusals(vgg_weights) -> None:
    with pytest.raises(SrganError, match="relu5_4"):
        PerceptualLoss("relu5_4", weights=vgg_weights)
    with pytest.raises(SrganError, match="criterion"):
        PerceptualLoss("relu2_2", weights=vgg_weights, criterion="huber")


# ---------------------------------------------------------------- adversarial


def test_bce_is_finite_at_extreme_logits() -> None:
    loss = build_loss("bce")
    real = torch.tensor([100.0, -100.0], requires_grad=True)
    fake = torch.tensor([-100.0, 100.0], requires_grad=True)
    d = loss.d_loss(real, fake)
    g = loss.g_loss(None, fake)
    assert d.item() == pytest.approx(100.0, rel=1e-6)  # mean(0, 100) + mean(0, 100)
    assert g.item() == pytest.approx(50.0, rel=1e-6)  # mean(100, 0)
    (d + g).backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
    for name in ("ragan", "lsgan", "hinge"):
        lo = build_loss(name)
        assert torch.isfinite(lo.d_loss(real, fake)) and torch.isfinite(lo.g_loss(real, fake))


def test_bce_hand_values() -> None:
    loss = build_loss("bce")
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 0.5])
    d = (softplus(-2.0) + softplus(0.0)) / 2 + (softplus(-1.0) + softplus(0.5)) / 2
    g = (softplus(1.0) + softplus(-0.5)) / 2
    assert loss.d_loss(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert loss.g_loss(real, fake).item() == pytest.approx(g, rel=1e-6)
    assert loss.d_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    smoothed = build_loss("bce", real_label=0.9).d_loss(torch.tensor([2.0]), torch.tensor([-1.0]))
    assert smoothed.item() == pytest.approx(0.9 * softplus(-2.0) + 0.1 * softplus(2.0) + softplus(-1.0), rel=1e-6)


def test_least_squares_and_hinge_hand_values() -> None:
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    ls = build_loss("lsgan")
    assert ls.d_loss(real, fake).item() == pytest.approx(0.5 * (0 + 4) / 2 + 0.5 * (0 + 4) / 2)
    assert ls.g_loss(None, fake).item() == pytest.approx(0.5 * (1 + 1) / 2)
    hinge = build_loss("hinge")
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    assert hinge.d_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1.5) / 2)
    assert hinge.g_loss(None, fake).item() == pytest.approx(0.75)


def test_relativistic_average_hand_values_and_detached_reals() -> None:
    loss = build_loss("ragan")
    assert loss.uses_real_in_g
    real = torch.tensor([1.0, 4.0], requires_grad=True)  # mean 2.5
    fake = torch.tensor([0.0, 1.0], requires_grad=True)  # mean 0.5
    dr = [1.0 - 0.5, 4.0 - 0.5]  # real - mean(fake)
    df = [0.0 - 2.5, 1.0 - 2.5]  # fake - mean(real)
    d = sum(softplus(-v) for v in dr) / 2 + sum(softplus(v) for v in df) / 2
    g = sum(softplus(-v) for v in df) / 2 + sum(softplus(v) for v in dr) / 2
    assert loss.d_loss(real, fake).item() == pytest.approx(d, rel=1e-6)
    g_value = loss.g_loss(real, fake)
    assert g_value.item() == pytest.approx(g, rel=1e-6)
    g_value.backward()
    assert real.grad is None and fake.grad.abs().sum() > 0
    with pytest.raises(SrganError, match="real logits"):
        loss.g_loss(None, fake)


def test_adversarial_losses_are_float32_under_autocast_and_names_are_checked() -> None:
    real, fake = torch.randn(4, 1), torch.randn(4, 1)
    for name in ("bce", "lsgan", "hinge", "ragan"):
        loss = build_loss(name)
        expected = loss.d_loss(real, fake)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = loss.d_loss(real.bfloat16(), fake.bfloat16())
        assert got.dtype == torch.float32
        assert got.item() == pytest.approx(expected.item(), rel=0.02)
    with pytest.raises(SrganError, match="wgan"):
        build_loss("wgan")
    with pytest.raises(SrganError, match="real_label"):
        build_loss("hinge", real_label=0.9)


# ---------------------------------------------------------------- the registry


@register_loss("test_mean_shift")
def mean_shift(power: int = 1):
    """|mean(SR) - mean(HR)| ** power: a loss defined outside srgan, registered here."""
    return lambda sr, hr: (sr.float().mean() - hr.float().mean()).abs() ** power


def test_a_loss_registered_anywhere_is_one_config_entry_away() -> None:
    from srgan.training.config import load_config
    from srgan.training.objective import GeneratorObjective

    config = load_config(None, ["losses.shift={type: test_mean_shift, weight: 0.5, power: 2}"])
    sr, hr = torch.full((1, 3, 8, 8), 0.5), torch.full((1, 3, 8, 8), 0.25)
    total, stats = GeneratorObjective(config)(sr, hr, None, None)
    assert stats["pixel"] == pytest.approx(0.0625) and stats["shift"] == pytest.approx(0.0625)
    assert total.item() == pytest.approx(0.0625 + 0.5 * 0.0625)
    with pytest.raises(SrganError, match="unknown option 'losses.shift.powr' for loss 'test_mean_shift'"):
        load_config(None, ["losses.shift={type: test_mean_shift, powr: 2}"])


def test_the_perceptual_term_passes_its_options(vgg_weights, images) -> None:
    hr, sr = images
    term = build_loss("perceptual", layers={"relu2_2": 1.0}, feature_scale=1.0, weights_path=str(vgg_weights))
    direct = PerceptualLoss("relu2_2", feature_scale=1.0, weights=vgg_weights)
    assert term(sr, hr).item() == pytest.approx(direct(sr, hr).item(), rel=1e-6)
    assert build_loss("ssim", on_y=True)(sr, hr).item() == pytest.approx(ssim_loss(sr, hr, on_y=True).item())
    with pytest.raises(SrganError, match="criterion: expected one of mse, l1"):
        build_loss("perceptual", criterion="huber")
