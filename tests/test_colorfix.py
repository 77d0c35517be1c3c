"""Colour fixes and FFT low-pass filters (issue 4 item 3)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from srgan.errors import SrganError
from srgan.inference.colorfix import color_fix, lowfreq_color_fix, match_histograms
from srgan.inference.lowpass import apply_lowpass, lowpass_mask, parse_lowpass, radial_frequency


def _smooth_image(size: int = 48, seed: int = 0) -> torch.Tensor:
    """A natural-ish RGB image in [0.1, 0.9]: low-resolution noise upsampled."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 6, size // 6, generator=g)
    return (0.1 + 0.8 * F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
            .clamp(0, 1))[0]


def test_histogram_matching_brings_channel_means_to_the_input():
    lr = _smooth_image()
    sr = F.interpolate(lr[None], scale_factor=2, mode="bicubic", align_corners=False)[0]
    shifted = sr * torch.tensor([0.7, 1.0, 1.2])[:, None, None] + torch.tensor([0.1, -0.05, 0.0])[:, None, None]
    before = (shifted.mean((1, 2)) - lr.mean((1, 2))).abs().max()
    fixed = match_histograms(shifted, lr)
    after = (fixed.mean((1, 2)) - lr.mean((1, 2))).abs().max()
    assert before > 0.04
    assert after < 0.01
    assert torch.allclose(fixed.std((1, 2)), lr.std((1, 2)), atol=0.01)


def test_lowfreq_fix_removes_a_smooth_colour_cast_and_keeps_detail():
    lr = _smooth_image(64)
    clean = F.interpolate(lr[None], scale_factor=4, mode="bicubic", align_corners=False)[0]
    idx = torch.arange(256)
    detail = 0.05 * (1 - 2 * ((idx[:, None] + idx[None, :]) % 2)).float()[None]  # finest checkerboard
    ramp = torch.linspace(0, 1, 256)[None, :, None]
    cast = torch.stack([0.08 + 0.05 * ramp[0], -0.06 * ramp[0], 0.04 * torch.ones_like(ramp[0])])
    output = clean + detail + cast
    fixed = lowfreq_color_fix(output, lr)
    residual_cast = (fixed - clean - detail)[:, 16:-16, 16:-16]
    assert (cast[:, 16:-16].abs().mean()) > 0.04
    assert residual_cast.abs().mean() < 0.2 * cast.abs().mean()
    assert residual_cast.mean((1, 2)).abs().max() < 0.01
    # the added detail survives: its high-frequency energy is nearly unchanged
    assert torch.allclose((fixed - F.avg_pool2d(fixed[None], 3, 1, 1)[0]).std(),
                          (output - F.avg_pool2d(output[None], 3, 1, 1)[0]).std(), rtol=0.05)


def test_color_fix_none_is_identity_and_unknown_is_refused():
    x = torch.rand(3, 8, 8)
    assert color_fix(x, x, "none") is x
    with pytest.raises(SrganError, match="unknown colour fix"):
        color_fix(x, x, "magic")


@pytest.mark.parametrize("spec", ["ideal:0.3", "gaussian:0.2", "butterworth:0.3,2", "gradient:0.2,0.5"])
def test_lowpass_keeps_a_constant_image_constant(spec):
    """No min-max re-normalisation: a flat gray stays exactly that gray (the published filter stretched it)."""
    flat = torch.full((3, 40, 52), 0.37)
    out = apply_lowpass(flat, spec)
    assert out.shape == flat.shape
    assert torch.allclose(out, flat, atol=1e-6)


def test_gaussian_lowpass_keeps_the_mean_exactly_and_does_not_stretch():
    g = torch.Generator().manual_seed(1)
    x = 0.3 + 0.3 * torch.rand(3, 64, 64, generator=g)  # values in [0.3, 0.6]
    out = apply_lowpass(x, "gaussian:0.3")
    # the reflect margin makes the padded image's mean differ slightly from the crop's: stay close
    assert torch.allclose(out.mean((1, 2)), x.mean((1, 2)), atol=2e-3)
    assert out.min() > 0.3 and out.max() < 0.6  # smoothing shrinks the range, never stretches it
    assert out.std() < x.std()
    # with no padding effects (a periodic image), the DC is kept to float precision
    periodic = 0.5 + 0.2 * torch.cos(2 * math.pi * 8 * torch.arange(64) / 64)[None, None, :].expand(3, 64, 64)
    mask = lowpass_mask("gaussian:0.3", 64, 64)
    assert mask[0, 0] == 1.0
    spectrum = torch.fft.fft2(periodic.double()) * mask
    assert torch.fft.ifft2(spectrum).real.mean().item() == pytest.approx(periodic.double().mean().item(), abs=1e-12)


def test_ideal_mask_radius_is_in_fractions_of_nyquist():
    mask = lowpass_mask("ideal:0.5", 64, 64)
    # bin 16 of 64 is 0.25 cycles/pixel = 0.5 Nyquist: inside; bin 17 is outside
    assert mask[0, 16] == 1 and mask[16, 0] == 1 and mask[0, 17] == 0 and mask[0, -16] == 1
    assert mask[11, 11] == 1 and mask[12, 12] == 0  # diagonal: sqrt(2) * 12/32 = 0.53 > 0.5
    r = radial_frequency(64, 64)
    assert torch.equal(mask.bool(), r <= 0.5)
    # non-square images use the same radius in cycles per pixel on both axes
    wide = lowpass_mask("ideal:0.5", 32, 128)
    assert wide[8, 0] == 1 and wide[9, 0] == 0 and wide[0, 32] == 1 and wide[0, 33] == 0


def test_ideal_lowpass_removes_a_pattern_above_the_cutoff_only():
    x = torch.arange(80.0)
    pattern = 0.2 * torch.cos(2 * math.pi * 0.3 * x)  # 0.3 cycles/pixel = 0.6 Nyquist
    image = (0.5 + pattern)[None, None, :].expand(1, 40, 80)
    centre = (slice(None), slice(10, 30), slice(20, 60))
    removed = apply_lowpass(image, "ideal:0.5")[centre] - 0.5
    kept = apply_lowpass(image, "ideal:0.7")[centre] - 0.5
    assert removed.abs().max() < 0.1 * 0.2
    assert torch.allclose(kept, (image - 0.5)[centre], atol=0.1 * 0.2)


def test_smooth_masks_have_their_documented_shapes():
    r = radial_frequency(64, 64)
    butter = lowpass_mask("butterworth:0.5,2", 64, 64)
    assert butter[0, 16].item() == pytest.approx(0.5)  # gain 1/2 at the cutoff
    gauss = lowpass_mask("gaussian:0.25", 64, 64)
    assert gauss[0, 8].item() == pytest.approx(math.exp(-0.5))  # exp(-1/2) at r = sigma
    ramp = lowpass_mask("gradient:0.25,0.75", 64, 64)
    assert torch.all(ramp[r <= 0.25] == 1) and torch.all(ramp[r >= 0.75] == 0)
    assert ramp[0, 16].item() == pytest.approx(0.5)  # halfway down the linear ramp


@pytest.mark.parametrize("spec, message", [
    ("ideal", "takes 1 parameter"), ("ideal:x", "must be numbers"), ("box:0.5", "unknown low-pass"),
    ("gradient:0.5,0.2", "must end"), ("butterworth:0.5,0.5", "order"), ("gaussian:-1", "positive"),
    ("butterworth:0.5", "takes 2"),
])
def test_bad_lowpass_specs_are_explained(spec, message):
    with pytest.raises(SrganError, match=message):
        parse_lowpass(spec)


def test_none_lowpass_is_identity():
    x = torch.rand(3, 5, 5)
    assert parse_lowpass("none") is None
    assert apply_lowpass(x, "none") is x
