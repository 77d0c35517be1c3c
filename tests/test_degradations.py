"""Degradations (srgan.data.degradations): each is a pure function of its seed, keeps the LR shape and
the 8-bit range, and every step does what its definition says on cases built to show it."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from srgan.data.degradations import DEGRADATIONS, build_degradation, kernels, steps
from srgan.errors import SrganError


@pytest.fixture(scope="module")
def photo(shared) -> torch.Tensor:
    from srgan.imaging.io import read_8bit

    return (read_8bit(shared / "datasets" / "BSD100" / "3096.png")[:, :96, :128].float() / 255).contiguous()


@pytest.mark.parametrize("name", ["bicubic", "realesrgan", "bsrgan"])
@pytest.mark.parametrize("scale", [2, 4])
def test_each_degradation_is_deterministic_and_keeps_shape_and_range(name, scale, photo, one_thread):
    degrade = build_degradation({"type": name})
    outs = [degrade(photo.clone(), scale, np.random.default_rng([3, i])) for i in (0, 0, 1)]
    for lr in outs:
        assert lr.shape == (3, 96 // scale, 128 // scale) and lr.dtype == torch.float32
        assert 0 <= lr.min() and lr.max() <= 1
        assert torch.equal(lr, torch.round(lr * 255) / 255)  # on the 8-bit grid, like an LR file
    assert torch.equal(outs[0], outs[1])
    if name != "bicubic":
        assert not torch.equal(outs[0], outs[2])  # another seed, another degradation


def test_realesrgan_varies_degradations_over_samples(photo, one_thread):
    """Over seeds the LR images differ from the clean bicubic LR by widely different amounts (mild to
    heavy blur, noise and JPEG), not by one fixed corruption."""
    clean = build_degradation(None)(photo, 4, np.random.default_rng(0))
    degrade = build_degradation({"type": "realesrgan"})
    errors = [float((degrade(photo, 4, np.random.default_rng(i)) - clean).abs().mean()) for i in range(24)]
    assert max(errors) > 3 * min(errors) and min(errors) > 0


def test_bicubic_degradation_is_the_benchmark_protocol(photo):
    from srgan.imaging.imresize import imresize
    from srgan.imaging.quantize import round_to_8bit

    lr = build_degradation({"type": "bicubic"})(photo, 4, np.random.default_rng(0))
    assert torch.equal(lr, round_to_8bit(imresize(photo, 0.25)))


def test_a_delta_image_blurred_by_a_kernel_gives_that_kernel():
    rng = np.random.default_rng(0)
    kernel = kernels.random_mixed(rng, 9, probabilities=[0, 1, 0, 0, 0, 0], sigma=(0.5, 3.0),
                                  beta_generalized=(0.5, 4), beta_plateau=(1, 2))
    kernel[0, 1] += 0.05  # not point-symmetric: a correlation would show it mirrored
    delta = torch.zeros(3, 31, 31)
    delta[:, 15, 15] = 1
    out = steps.blur(delta, kernel)
    for c in range(3):
        np.testing.assert_allclose(out[c, 11:20, 11:20].numpy(), kernel, atol=1e-6)
    assert float(out.sum()) == pytest.approx(3 * kernel.sum(), rel=1e-5)


def test_gaussian_kernels_have_the_drawn_covariance():
    cov = kernels.covariance(1.5, 3.0, math.pi / 6)
    kernel = kernels.gaussian(41, cov)
    offsets = kernels.grid(41)
    second = np.einsum("hw,hwi,hwj->ij", kernel, offsets, offsets)
    np.testing.assert_allclose(second, cov, atol=1e-3)
    assert kernels.gaussian(21, cov, beta=1.0).sum() == pytest.approx(1.0)
    # plateau and generalized kernels are normalised, peak at the centre and share the covariance's axes
    for k in (kernels.plateau(21, cov, 1.5), kernels.gaussian(21, cov, beta=0.6)):
        assert k.sum() == pytest.approx(1.0) and np.unravel_index(k.argmax(), k.shape) == (10, 10)
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-12)


def test_sinc_kernel_passes_frequencies_below_its_cutoff_and_stops_those_above():
    cutoff = math.pi / 3
    kernel = kernels.pad_to(kernels.sinc(21, cutoff), 129)
    response = np.abs(np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(kernel))))
    freq = np.fft.fftshift(np.fft.fftfreq(129)) * 2 * math.pi
    radius = np.hypot(*np.meshgrid(freq, freq))
    assert response[radius < 0.6 * cutoff].min() > 0.85
    assert response[radius > 1.5 * cutoff].max() < 0.2


def test_jpeg_step_equals_a_pillow_round_trip_at_that_quality(photo):
    for quality in (30, 75, 95):
        out = steps.jpeg(photo, quality)
        buffer = io.BytesIO()
        array = (photo * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
        expected = np.asarray(Image.open(buffer)).astype(np.float32) / 255
        np.testing.assert_array_equal(out.permute(1, 2, 0).numpy(), expected)
    assert (steps.jpeg(photo, 30) - photo).abs().mean() > (steps.jpeg(photo, 95) - photo).abs().mean()


@pytest.mark.parametrize("gray", [False, True])
def test_gaussian_noise_has_the_drawn_sigma(gray):
    flat = torch.full((3, 256, 256), 0.5)
    noisy = steps.gaussian_noise(flat, 10 / 255, gray, np.random.default_rng(0))
    noise = noisy - flat
    assert float(noise.std()) == pytest.approx(10 / 255, rel=0.02)
    assert torch.equal(noise[0], noise[1]) == gray  # gray noise is one field for all channels


def test_poisson_noise_is_shot_noise_on_the_images_levels():
    """256 distinct values -> 256 photon levels: the noise of a pixel of value x has std sqrt(x / 256),
    times the scale (small enough here that clipping at 0 and 1 stays out of the way)."""
    ramp = torch.linspace(0.1, 0.9, 256).expand(3, 256, 256).contiguous()
    noise = steps.poisson_noise(ramp, 0.5, False, np.random.default_rng(0)) - ramp
    for lo, hi in ((0, 32), (224, 256)):
        x = float(ramp[0, 0, lo:hi].mean())
        assert float(noise[:, :, lo:hi].std()) == pytest.approx(0.5 * math.sqrt(x / 256), rel=0.05)


def test_unsharp_mask_sharpens_edges_and_leaves_flat_areas():
    step = torch.zeros(3, 64, 64)
    step[:, :, 32:] = 0.6
    step += 0.2
    sharp = steps.unsharp_mask(step)
    assert sharp[:, :, 33].mean() > step[:, :, 33].mean()  # overshoot on the bright side of the edge
    assert sharp[:, :, 30].mean() < step[:, :, 30].mean()  # undershoot on the dark side
    flat = torch.full((3, 64, 64), 0.4)
    assert torch.equal(steps.unsharp_mask(flat), flat)


def test_bsrgan_shift_centres_each_kept_pixel_on_its_block():
    """The kernel moves (sf - 1) / 2 up and left, so blurring (a true convolution) and keeping every
    sf-th pixel gives each LR pixel the weighted mean around the centre of its sf x sf block."""
    from srgan.data.degradations.bsrgan import _shift

    moved = _shift(kernels.fspecial_gaussian(25, 2.0), 4)
    centre = np.einsum("hw,hwi->i", moved, kernels.grid(25))
    np.testing.assert_allclose(centre, [-1.5, -1.5], atol=0.01)
    ramp = torch.arange(64, dtype=torch.float32).expand(3, 64, 64).contiguous() / 64
    sampled = steps.blur(ramp, moved)[0, 32, ::4][8:12] * 64  # columns 32, 36, 40, 44
    np.testing.assert_allclose(sampled.numpy(), [33.5, 37.5, 41.5, 45.5], atol=0.01)


def test_unknown_degradation_and_bad_option_are_one_line_errors():
    with pytest.raises(SrganError, match="unknown degradation 'blurry'.*bicubic.*bsrgan.*realesrgan"):
        build_degradation({"type": "blurry"})
    with pytest.raises(SrganError, match="noise_range"):
        DEGRADATIONS.build("realesrgan", {"noise_range": "loud"})


def test_training_config_checks_the_degradation_once(shared):
    from srgan.training.config import load_config

    config = load_config(None, ["data.degradation={type: realesrgan, jpeg_range: [50, 90]}"])
    assert config.data.degradation["jpeg_range"] == [50, 90]
    assert config.data.degradation["noise_range"] == [1.0, 30.0]  # defaults spelled out, as lists
    with pytest.raises(SrganError, match="data.degradation.jpeg_rang"):
        load_config(None, ["data.degradation={type: realesrgan, jpeg_rang: [50, 90]}"])


def test_sharpened_training_pairs_give_the_discriminator_the_plain_crop(shared):
    from srgan.data.dataset import TrainPatches

    data = TrainPatches(shared / "datasets" / "Set5", hr_crop=64, scale=4, sharpen_hr=True,
                        degradation=build_degradation({"type": "realesrgan"}))
    lr, sharp, hr = data[0]
    assert lr.shape == (3, 16, 16) and sharp.shape == hr.shape == (3, 64, 64)
    assert torch.equal(sharp, steps.unsharp_mask(hr)) and not torch.equal(sharp, hr)


def test_srgan_degrade_writes_seeded_lr_copies_named_like_their_inputs(shared, tmp_path, capsys):
    from srgan.cli import main

    src = tmp_path / "hr"
    src.mkdir()
    for name in ("baby.png", "bird.png"):
        with Image.open(shared / "datasets" / "Set5" / name) as im:
            im.crop((0, 0, 66, 50)).save(src / name)
    out = tmp_path / "lr"
    assert main(["degrade", str(src), str(out), "--degradation", "bsrgan", "--seed", "7"]) == 0
    first = {p.name: np.asarray(Image.open(p)) for p in sorted(out.iterdir())}
    assert set(first) == {"baby.png", "bird.png"} and first["baby.png"].shape == (12, 16, 3)  # 48x64 mod-cropped
    # the LR pairs with its uncropped HR in `srgan eval --lr` (the HR is mod-cropped there too)
    assert main(["eval", "--model", "bicubic", "--scale", "4", "--lr", str(out), "--data", str(src),
                 "--metrics", "psnr,ssim"]) == 0
    # the same seed gives the same files, also for one file alone (seeded by name, not position)
    again = tmp_path / "again"
    assert main(["degrade", str(src / "bird.png"), str(again), "--degradation", "bsrgan", "--seed", "7"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(again / "bird.png")), first["bird.png"])
    # existing outputs, outputs over inputs and bad options: one line, exit 2, nothing changed
    capsys.readouterr()
    for args in ([str(src), str(out)], [str(src), str(src), "--overwrite"],
                 [str(src), str(tmp_path / "x"), "--degradation", "{type: bsrgan, jpeg_prob: high}"],
                 [str(src / "missing.png"), str(tmp_path / "y")]):
        assert main(["degrade", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("srgan: error:") and "\n" not in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
