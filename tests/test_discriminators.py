"""Discriminators: one raw logit per image at any size, published structure, stated parameter counts."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from srgan.errors import SrganError
from srgan.models.discriminator import VGGStyleDiscriminator
from srgan.models.discriminators import build_discriminator
from srgan.models.spectral_discriminator import (
    CombinedDiscriminator,
    FFTDiscriminator,
    log_magnitude_spectrum,
)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kind", ["vgg", "fft", "both"])
@pytest.mark.parametrize("size", [96, 128])
def test_one_logit_per_image(kind: str, size: int) -> None:
    torch.manual_seed(0)
    model = build_discriminator(kind).eval()
    out = model(torch.rand(2, 3, size, size))
    assert out.shape == (2, 1) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_vgg_discriminator_is_ledigs_network() -> None:
    model = VGGStyleDiscriminator(negative_slope=0.3)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2] * 4
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.features) == 7
    assert not isinstance(model.features[1], nn.BatchNorm2d)  # no BN after the first conv
    slopes = {m.negative_slope for m in model.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.3}
    assert not any(isinstance(m, nn.Sigmoid) for m in model.modules())
    dense = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(512 * 6 * 6, 1024), (1024, 1)]
    assert count(model) == 23_563_649  # stated in the module docstring


def test_vgg_discriminator_pools_only_when_the_input_is_not_96() -> None:
    model = VGGStyleDiscriminator().eval()
    x = torch.rand(1, 3, 96, 96)
    feats = model.features(x * 2 - 1)
    assert feats.shape[-2:] == (6, 6)
    assert torch.equal(model.pool(feats), feats)  # identity at Ledig's training size
    assert model(torch.rand(1, 3, 37, 53)).shape == (1, 1)
    with pytest.raises(SrganError, match="16x16"):
        model(torch.rand(1, 3, 12, 40))


def test_fft_discriminator_parameter_count_and_gradients_reach_the_image() -> None:
    model = FFTDiscriminator()
    assert count(model) == 1_673_217  # stated in the class docstring
    assert all(name.startswith("classifier.") for name, _ in model.named_parameters())  # FFT is fixed
    x = torch.rand(2, 3, 40, 40, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_spectrum_grid_is_in_normalised_frequency_whatever_the_size() -> None:
    """A vertical-stripe pattern at 1/8 cycles per pixel peaks in the same pooled cell at 64 and 128 px."""
    model = FFTDiscriminator(in_channels=1, grid=16)
    cells = []
    for size in (64, 128):
        cols = torch.arange(size, dtype=torch.float32)
        img = (0.5 + 0.4 * torch.cos(2 * math.pi * cols / 8)).expand(1, 1, size, size)
        spectrum = log_magnitude_spectrum(img)
        assert spectrum.shape == (1, 1, size, size // 2 + 1) and spectrum.dtype == torch.float32
        pooled = model.pool(spectrum)[0, 0]
        pooled[8, 0] = -math.inf  # ignore the DC cell (vertical frequency 0 sits at row grid // 2)
        cells.append(divmod(int(pooled.argmax()), pooled.shape[1]))
    assert cells[0] == cells[1] == (8, 2)  # horizontal 1/8 of the 0..1/2 range over 9 cells -> cell 2


def test_fft_runs_in_float32_under_autocast() -> None:
    torch.manual_seed(0)
    model = FFTDiscriminator().eval()
    x = torch.rand(2, 3, 48, 48)
    expected = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = model(x.bfloat16())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-2, atol=1e-2)  # only the bf16 input rounding differs


def test_vgg_discriminator_under_bf16_autocast_is_close_to_float32() -> None:
    torch.manual_seed(0)
    model = VGGStyleDiscriminator().eval()
    x = torch.rand(2, 3, 96, 96)
    expected = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = model(x)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.float(), expected, rtol=0.05, atol=0.02)


def test_combined_is_the_weighted_sum_of_its_parts() -> None:
    torch.manual_seed(0)
    model = build_discriminator("both", negative_slope=0.3, fft={"grid": 16}, spectral_weight=0.5).eval()
    assert isinstance(model, CombinedDiscriminator)
    assert model.spectral.pool.output_size == (16, 9)
    x = torch.rand(2, 3, 64, 64)
    spatial, spectral = model.parts(x)
    torch.testing.assert_close(model(x), spatial + 0.5 * spectral)


def test_factory_rejects_unknown_kinds_and_options() -> None:
    with pytest.raises(SrganError, match="patch"):
        build_discriminator("patch")
    with pytest.raises(SrganError, match="slope"):
        build_discriminator("vgg", slope=0.3)
    with pytest.raises(SrganError, match="'fft.width'"):
        build_discriminator("both", fft={"width": 32})
    with pytest.raises(SrganError, match="negative_slope"):
        build_discriminator("vgg", negative_slope=1.5)


def test_unet_discriminator_gives_one_logit_per_pixel_at_any_size() -> None:
    from srgan.models.unet_discriminator import UNetDiscriminatorSN

    torch.manual_seed(0)
    model = build_discriminator("unet", width=8)
    assert isinstance(model, UNetDiscriminatorSN)
    for h, w in ((64, 64), (50, 77)):
        out = model(torch.rand(2, 3, h, w))
        assert out.shape == (2, 1, h, w) and torch.isfinite(out).all()
    # Real-ESRGAN's published network at width 64: 4,376,897 parameters
    assert count(build_discriminator("unet")) == 4_376_897


def test_unet_discriminator_spectral_norm_holds_every_inner_layer_at_one() -> None:
    """After the power iterations of a few training steps, the largest singular value of every
    spectrally normalised convolution (weight as out x in*k*k) is 1, even after an update that
    scaled the raw weights up 10x."""
    torch.manual_seed(0)
    model = build_discriminator("unet", width=8).train()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("original"):
                p.mul_(10)
    x = torch.rand(1, 3, 16, 16)
    for _ in range(150):  # one power iteration per training forward pass
        model(x)
    normed = [m for m in model.modules() if isinstance(m, nn.Conv2d) and hasattr(m, "parametrizations")]
    assert len(normed) == 8  # all but the first convolution and the head
    for conv in normed:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().reshape(conv.out_channels, -1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.02)
    assert float(torch.linalg.matrix_norm(model.head.weight.detach().reshape(1, -1), ord=2)) != pytest.approx(1.0, abs=0.02)
