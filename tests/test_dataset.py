"""Training data: image discovery, crops, on-the-fly LR, augmentation and resumable sampling."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from srgan.data.dataset import HRImages, StepBatchSampler, TrainPatches, make_loader, training_images
from srgan.data.degradation import benchmark_hr
from srgan.errors import SrganError
from srgan.imaging.folders import list_images
from srgan.imaging.imresize import imresize
from srgan.imaging.io import read_image


def _write(path, size=(40, 30), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(array[:, :, 0] if mode == "L" else array, mode).save(path)
    return path


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    _write(tmp_path / "a.png", seed=1)
    _write(tmp_path / "sub" / "b.JPG", seed=2)
    _write(tmp_path / "sub" / "deeper" / "c.bmp", seed=3)
    _write(tmp_path / "sub" / "g.webp", mode="L", seed=4)
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_list_images_is_recursive_sorted_and_filters_extensions(folder):
    names = [p.name for p in list_images(folder)]
    assert names == ["a.png", "b.JPG", "c.bmp", "g.webp"]


def test_list_images_skips_hidden_files_and_subfolders_unless_recursive(folder):
    (folder / ".hidden.png").write_bytes(b"")
    (folder / ".cache").mkdir()
    _write(folder / ".cache" / "thumb.png")
    assert [p.name for p in list_images(folder, recursive=False)] == ["a.png"]
    assert [p.name for p in list_images(folder)] == ["a.png", "b.JPG", "c.bmp", "g.webp"]


def test_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(SrganError, match="image folder not found: .*nope"):
        training_images([tmp_path / "nope"])


def test_lr_is_matlab_bicubic_of_the_hr_crop_rounded_to_8_bits(shared):
    data = TrainPatches(shared / "datasets" / "T91", hr_crop=48, scale=4, seed=3)
    lr, hr = data[11]
    assert hr.shape == (3, 48, 48) and lr.shape == (3, 12, 12)
    expected = (imresize(hr, 0.25) * 255).round().clamp(0, 255) / 255
    assert torch.equal(lr, expected)
    # HR pixels are exact 8-bit values from the file
    assert torch.equal(hr * 255, (hr * 255).round())


def test_samples_depend_only_on_seed_and_id(folder):
    a = TrainPatches(folder, hr_crop=16, scale=4, seed=1)
    b = TrainPatches(folder, hr_crop=16, scale=4, seed=1)
    assert torch.equal(a[5][1], b[5][1]) and torch.equal(a[123][1], b[123][1])
    assert not torch.equal(a[5][1], a[6][1])
    c = TrainPatches(folder, hr_crop=16, scale=4, seed=2)
    assert not all(torch.equal(a[i][1], c[i][1]) for i in range(4))


def test_every_image_is_visited_once_per_pass(folder):
    data = TrainPatches(folder, hr_crop=16, scale=4, seed=0)
    n = len(data.images)
    for epoch in range(2):
        seen = sorted(data._image_index(epoch * n + i) for i in range(n))
        assert seen == list(range(n))


def test_training_evaluation_and_upscale_read_the_same_pixels(tmp_path):
    """One reader everywhere: a JPEG with EXIF orientation 6 is upright, and a 16-bit gray PNG keeps 16
    bits in `srgan upscale` and is reduced to 8 bits one way, round(v / 257), in training and evaluation."""
    rng = np.random.default_rng(5)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(tmp_path / "rotated.jpg",
                                                                           exif=exif.tobytes(), quality=95)
    deep = rng.integers(0, 65536, (16, 24)).astype(np.uint16)
    Image.frombytes("I;16", (24, 16), deep.astype("<u2").tobytes()).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "rotated.jpg") as im:
        upright = np.asarray(ImageOps.exif_transpose(im))
    assert upright.shape == (20, 12, 3)
    deep8 = np.round(deep / 257).astype(np.uint8)
    assert np.mean(deep8 != deep >> 8) > 0.2  # a reader that drops the low byte would differ
    expected = {"rotated.jpg": upright, "deep.png": deep8[..., None]}

    training = HRImages(list_images(tmp_path), min_size=1)
    assert [p.name for p in training.paths] == ["deep.png", "rotated.jpg"]
    for index, path in enumerate(training.paths):
        want = expected[path.name]
        upscaled_input = read_image(path)  # what `srgan upscale` / `srgan.upscale` read
        scale = 65535 if path.name == "deep.png" else 255
        full = np.round(upscaled_input.pixels.numpy().transpose(1, 2, 0) * scale)
        assert np.array_equal(full, deep[..., None] if scale == 65535 else upright)
        assert np.array_equal(benchmark_hr(path, 4).permute(1, 2, 0).numpy(), want)  # evaluation
        assert np.array_equal(training[index], np.broadcast_to(want, (*want.shape[:2], 3)))  # training


def test_grayscale_becomes_rgb(tmp_path):
    _write(tmp_path / "g.png", mode="L")
    _, hr = TrainPatches(tmp_path, hr_crop=16, scale=2)[0]
    assert hr.shape[0] == 3 and torch.equal(hr[0], hr[1]) and torch.equal(hr[1], hr[2])


def test_small_images_are_padded_or_skipped(tmp_path):
    _write(tmp_path / "small.png", size=(20, 12))
    _write(tmp_path / "big.png", size=(40, 40))
    padded = TrainPatches(tmp_path, hr_crop=32, scale=4, small_images="pad")
    assert len(padded.images) == 2
    assert all(padded[i][1].shape == (3, 32, 32) for i in range(4))
    skipped = TrainPatches(tmp_path, hr_crop=32, scale=4, small_images="skip")
    assert [p.name for p in skipped.images.paths] == ["big.png"]
    (tmp_path / "big.png").unlink()
    with pytest.raises(SrganError, match="no usable training image"):
        TrainPatches(tmp_path, hr_crop=32, scale=4, small_images="skip")


def test_corrupt_image_is_skipped_with_one_warning_naming_it(folder, caplog):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with caplog.at_level(logging.WARNING):
        data = TrainPatches(folder, hr_crop=16, scale=4)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "broken.png" in warnings[0]
    assert "broken.png" not in [p.name for p in data.images.paths]
    data[0]


def test_images_beyond_the_cache_budget_are_reread(folder):
    data = TrainPatches(folder, hr_crop=16, scale=4, cache_bytes=4000)
    assert data.images.cached_bytes <= 4000 and any(c is None for c in data.images._cache)
    full = TrainPatches(folder, hr_crop=16, scale=4)
    assert all(torch.equal(data[i][1], full[i][1]) for i in range(8))


def test_color_jitter_stays_in_range_and_changes_colours(folder):
    plain = TrainPatches(folder, hr_crop=16, scale=4, seed=0)
    jitter = TrainPatches(folder, hr_crop=16, scale=4, seed=0,
                          jitter={"p": 1.0, "brightness": 0.3, "saturation": 0.3, "darken": 0.3})
    a, b = plain[2][1], jitter[2][1]
    assert b.min() >= 0 and b.max() <= 1 and not torch.allclose(a, b)


def test_batches_are_a_function_of_the_iteration_and_ranks_are_disjoint(folder):
    full = list(StepBatchSampler(4, 0, 6))
    resumed = list(StepBatchSampler(4, 3, 6))
    assert resumed == full[3:]
    r0 = [i for b in StepBatchSampler(4, 0, 3, rank=0, world_size=2) for i in b]
    r1 = [i for b in StepBatchSampler(4, 0, 3, rank=1, world_size=2) for i in b]
    assert not set(r0) & set(r1) and sorted(r0 + r1) == list(range(24))
    data = TrainPatches(folder, hr_crop=16, scale=4)
    first = [hr for _, hr in make_loader(data, batch_size=2, start=0, stop=3)]
    again = [hr for _, hr in make_loader(data, batch_size=2, start=2, stop=3, workers=1)]
    assert torch.equal(first[2], again[0])
