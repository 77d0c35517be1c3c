"""`srgan.upscale` and `srgan upscale`: every image mode, metadata, refusals, bad files, interruption
(issue 4 items 2, 3 and 5). Models are small random generators: behaviour, not quality, is tested."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms
from torch import nn

import srgan
from srgan.api import DEFAULT_MODEL, UpscaleOptions
from srgan.cli import main
from srgan.imaging.io import LoadedImage
from srgan.inference.cache import build_runner
from srgan.inference.upscale import upscale_loaded

RNG = np.random.default_rng(0)
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module")
def generator() -> nn.Module:
    torch.manual_seed(0)
    return srgan.create_model("srresnet_x4", blocks=1, width=8)


@pytest.fixture(scope="module")
def weights(tmp_path_factory, generator) -> str:
    path = tmp_path_factory.mktemp("weights") / "tiny_x4.safetensors"
    srgan.save_model(generator, path)
    return str(path)


def _rgb(h: int = 10, w: int = 12) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["upscale", *args])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- Python API
@pytest.mark.parametrize("array", [
    np.zeros((10, 12), np.uint8), _rgb(), RNG.integers(0, 65536, (10, 12, 4)).astype(np.uint16),
    RNG.random((10, 12, 2)).astype(np.float32), RNG.random((10, 12, 1)),
], ids=["gray-u8", "rgb-u8", "rgba-u16", "la-f32", "gray-f64"])
def test_numpy_in_numpy_out(generator, array):
    out = srgan.upscale(array, generator)
    assert isinstance(out, np.ndarray) and out.dtype == array.dtype
    assert out.shape == (40, 48, *array.shape[2:])
    if array.dtype.kind == "f":
        assert out.min() >= 0 and out.max() <= 1


def test_tensor_in_tensor_out_and_matches_the_plain_forward(generator):
    x = torch.rand(2, 3, 9, 11)
    out = srgan.upscale(x, generator, tile=None, precision="fp32")
    assert out.shape == (2, 3, 36, 44) and out.dtype == x.dtype
    with torch.no_grad():
        reference = generator.eval()(x).clamp(0, 1)
    assert (out - reference).abs().max() < 1e-4
    assert srgan.upscale(x[0].double(), generator).dtype == torch.float64


@pytest.mark.parametrize("mode, expected", [
    ("L", "L"), ("LA", "LA"), ("RGB", "RGB"), ("RGBA", "RGBA"), ("P", "RGB"), ("I;16", "I;16"), ("CMYK", "RGB"),
])
def test_pil_in_pil_out_keeps_the_mode_family(generator, mode, expected):
    out = srgan.upscale(Image.new(mode, (12, 10)), generator)
    assert isinstance(out, Image.Image) and out.mode == expected and out.size == (48, 40)


def test_outscale_resizes_to_any_factor(generator):
    assert srgan.upscale(_rgb(), generator, outscale=3.0).shape == (30, 36, 3)
    assert srgan.upscale(_rgb(), generator, outscale=1.5).shape == (15, 18, 3)


def test_grayscale_goes_through_the_rgb_model_and_back_to_one_channel(generator):
    gray = torch.rand(1, 10, 12)
    out = srgan.upscale(gray, generator, tile=None, precision="fp32")
    with torch.no_grad():
        reference = generator.eval()(gray.expand(3, -1, -1)[None])[0].mean(0, keepdim=True).clamp(0, 1)
    assert out.shape == (1, 40, 48)
    assert (out - reference).abs().max() < 1e-4
    assert srgan.upscale(np.zeros((10, 12), np.uint8), generator).shape == (40, 48)


def test_default_model_ships_and_beats_bicubic(shared):
    """The shipped default is the GAN model and it is trained: on Set5 butterfly (MATLAB-bicubic LR)
    `srgan.upscale` beats bicubic by more than 1 dB PSNR-Y (whole-set scores: MODELS.md)."""
    from srgan.data.degradation import degrade, mod_crop
    from srgan.evaluation.runner import bicubic_upscaler
    from srgan.imaging.io import read_8bit
    from srgan.metrics.psnr_ssim import psnr_y

    assert DEFAULT_MODEL == "srgan_x4"
    hr = mod_crop(read_8bit(shared / "datasets" / "Set5" / "butterfly.png"), 4)
    lr = degrade(hr, 4)
    sr = srgan.upscale(Image.fromarray(lr.permute(1, 2, 0).numpy()))
    sr = torch.from_numpy(np.array(sr)).permute(2, 0, 1)
    assert sr.shape == hr.shape
    assert psnr_y(sr, hr, 4) > psnr_y(bicubic_upscaler(4)(lr), hr, 4) + 1.0


def test_cli_without_model_runs_the_shipped_gan_and_needs_no_network(tmp_path, capsys, monkeypatch):
    """`srgan upscale photo.png` on a machine with no network: every socket and the torch hub refuse,
    and the output is exactly what the shipped srgan_x4 makes of the photo."""
    import socket

    def offline(*args, **kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", offline)
    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    photo = _rgb(24, 20)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    code, _, err = _cli(capsys, str(tmp_path / "photo.png"))
    assert code == 0, err
    written = np.array(Image.open(tmp_path / "photo_x4.png"))
    assert written.shape == (96, 80, 3)
    assert np.array_equal(written, srgan.upscale(photo, model="srgan_x4"))


def test_a_preset_without_shipped_weights_is_a_clear_error_not_random_weights():
    with pytest.raises(srgan.SrganError, match="no trained weights ship for preset 'mit_x4'"):
        srgan.upscale(_rgb(), model="mit_x4")


class _BicubicX4(nn.Module):
    """A 'model' that is plain bicubic x4: isolates what the alpha handling does."""

    scale = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)


@pytest.mark.parametrize("alpha", ["model", "bicubic"])
def test_transparent_edges_get_no_dark_fringe(alpha):
    """A red square on a transparent black background (Real-ESRGAN #291): premultiplied alpha keeps
    the semi-transparent edge red; upscaling colour and alpha separately darkens it."""
    rgba = np.zeros((16, 16, 4), np.float32)
    rgba[4:12, 4:12] = (1.0, 0.0, 0.0, 1.0)
    runner = build_runner(_BicubicX4(), device="cpu", precision="fp32")
    out = srgan.upscale(rgba, runner, tile=None, tile_pad=0, alpha=alpha)
    edge = (out[..., 3] > 0.1) & (out[..., 3] < 0.9)
    assert edge.sum() > 50
    assert out[edge][:, 0].min() > 0.95  # still fully red where partly transparent
    naive = F.interpolate(torch.from_numpy(rgba).permute(2, 0, 1)[None], scale_factor=4, mode="bicubic",
                          align_corners=False)[0].permute(1, 2, 0).clamp(0, 1).numpy()
    assert naive[edge][:, 0].min() < 0.8  # what the premultiplication prevents


def test_onnxruntime_backend_matches_torch(generator):
    image = _rgb(12, 14)
    ours = srgan.upscale(image, generator, tile=None, device="cpu", precision="fp32").astype(int)
    onnx = srgan.upscale(image, generator, tile=None, backend="onnxruntime").astype(int)
    assert np.abs(ours - onnx).max() <= 1


def test_colour_fix_and_lowpass_run_through_the_api(generator):
    image = _rgb(16, 16)
    hist = srgan.upscale(image, generator, color_fix="hist")
    assert np.abs(hist.reshape(-1, 3).mean(0) - image.reshape(-1, 3).mean(0)).max() < 3
    smooth = srgan.upscale(image, generator, lowpass="gaussian:0.2").astype(float)
    plain = srgan.upscale(image, generator).astype(float)
    assert np.abs(np.diff(smooth, axis=1)).mean() < np.abs(np.diff(plain, axis=1)).mean()


def test_upscale_loaded_keeps_metadata(generator):
    runner = build_runner(generator, device="cpu", precision="fp32")
    image = LoadedImage(pixels=torch.rand(3, 6, 7), icc_profile=SRGB_ICC, exif=b"Exif", mode="RGB")
    out = upscale_loaded(image, runner, UpscaleOptions())
    assert out.pixels.shape == (3, 24, 28) and out.icc_profile == SRGB_ICC and out.exif == b"Exif"


# ---------------------------------------------------------------- CLI: formats
def _make(path: Path, kind: str) -> None:
    rgb = _rgb()
    if kind == "rgb":
        Image.fromarray(rgb).save(path)
    elif kind == "l":
        Image.fromarray(rgb[..., 0]).save(path)
    elif kind == "la":
        Image.fromarray(rgb[..., :2].copy(), "LA").save(path)
    elif kind == "p":
        Image.fromarray(rgb).convert("P").save(path)
    elif kind == "rgba":
        Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA").save(path)
    elif kind == "i16":
        data = RNG.integers(0, 65536, (10, 12)).astype("<u2")
        Image.frombytes("I;16", (12, 10), data.tobytes()).save(path)
    elif kind == "tiff16":
        import tifffile

        tifffile.imwrite(path, RNG.integers(0, 65536, (10, 12, 3)).astype(np.uint16), photometric="rgb")
    elif kind == "cmyk":
        Image.fromarray(rgb).convert("CMYK").save(path)


@pytest.mark.parametrize("kind, name, out_name, mode, depth", [
    ("rgb", "a.png", "a_x4.png", "RGB", 8), ("l", "a.png", "a_x4.png", "L", 8),
    ("la", "a.png", "a_x4.png", "LA", 8), ("p", "a.png", "a_x4.png", "RGB", 8),
    ("rgba", "a.png", "a_x4.png", "RGBA", 8), ("i16", "a.png", "a_x4.png", "I;16", 16),
    ("tiff16", "a.tif", "a_x4.tif", "RGB", 16), ("cmyk", "a.jpg", "a_x4.jpg", "RGB", 8),
])
def test_every_mode_round_trips_through_the_cli(tmp_path, capsys, weights, kind, name, out_name, mode, depth):
    _make(tmp_path / name, kind)
    code, out, err = _cli(capsys, str(tmp_path / name), "--model", weights)
    assert code == 0, err
    assert "upscaled 1 image(s), skipped 0" in out
    with Image.open(tmp_path / out_name) as result:
        assert result.size == (48, 40) and result.mode == mode
    from srgan.imaging.io import read_image

    assert read_image(tmp_path / out_name).bit_depth == depth
    if kind == "tiff16":
        import tifffile

        assert tifffile.imread(tmp_path / out_name).dtype == np.uint16


@pytest.mark.parametrize("planes", [3, 4], ids=["rgb16", "rgba16"])
def test_16_bit_colour_png_stays_16_bit_through_the_cli(tmp_path, capsys, weights, planes):
    import png

    from srgan.imaging.io import write_image

    data = torch.from_numpy((RNG.integers(0, 255, (planes, 10, 12)) * 257 + 1) / 65535).float()
    source = LoadedImage(pixels=data[:3], alpha=data[3:] if planes == 4 else None, bit_depth=16,
                         icc_profile=SRGB_ICC)
    write_image(tmp_path / "deep.png", source)
    code, out, err = _cli(capsys, str(tmp_path / "deep.png"), "--model", weights)
    assert code == 0 and "upscaled 1 image(s)" in out, err
    width, height, rows, info = png.Reader(filename=str(tmp_path / "deep_x4.png")).read()
    assert (width, height, info["bitdepth"], info["planes"]) == (48, 40, 16, planes)
    values = np.array([list(row) for row in rows])
    assert np.any(values % 257 != 0)  # not 8-bit values widened to 16 bits
    with Image.open(tmp_path / "deep_x4.png") as result:
        assert result.info.get("icc_profile") == SRGB_ICC


def test_exif_rotation_and_icc_survive_the_cli(tmp_path, capsys, weights):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_rgb()).save(tmp_path / "photo.jpg", exif=exif.tobytes(), icc_profile=SRGB_ICC)
    code, _, err = _cli(capsys, str(tmp_path / "photo.jpg"), "--model", weights, "--format", "png")
    assert code == 0, err
    with Image.open(tmp_path / "photo_x4.png") as result:
        assert result.size == (40, 48)  # 12x10 rotated to 10x12, then x4
        assert result.getexif()[0x0112] == 1
        assert result.info.get("icc_profile") == SRGB_ICC
    code, _, _ = _cli(capsys, str(tmp_path / "photo.jpg"), "--model", weights, "--strip-metadata",
                      "-o", str(tmp_path / "bare.png"))
    with Image.open(tmp_path / "bare.png") as bare:
        assert code == 0 and not bare.info.get("icc_profile") and 0x0112 not in bare.getexif()


def test_outscale_format_quality_and_suffix(tmp_path, capsys, weights):
    _make(tmp_path / "a.png", "rgb")
    code, _, err = _cli(capsys, str(tmp_path / "a.png"), "--model", weights, "--outscale", "3", "--format", "jpg",
                        "--quality", "80")
    assert code == 0, err
    with Image.open(tmp_path / "a_x3.jpg") as result:
        assert result.size == (36, 30) and result.format == "JPEG"
    code, _, _ = _cli(capsys, str(tmp_path / "a.png"), "--model", weights, "--suffix", "_big", "--format", "webp")
    assert code == 0 and (tmp_path / "a_big.webp").is_file()


# ---------------------------------------------------------------- CLI: bad input
def _truncated_png() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()[:-300]


@pytest.mark.parametrize("name, content", [
    ("zero.png", b""), ("text.png", b"hello, I am text\n"), ("truncated.png", _truncated_png()),
    ("corrupt.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4),
])
def test_bad_inputs_fail_with_one_line_and_no_output(tmp_path, capsys, weights, name, content):
    (tmp_path / name).write_bytes(content)
    code, _out, err = _cli(capsys, str(tmp_path / name), "--model", weights)
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and name in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_decompression_bomb_fails_cleanly(tmp_path, capsys, weights, monkeypatch):
    Image.new("RGB", (64, 64)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    code, _, err = _cli(capsys, str(tmp_path / "bomb.png"), "--model", weights)
    assert code == 2 and "decompression bomb" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bomb_x4.png").exists()


def test_real_entry_point_prints_no_traceback(tmp_path, weights):
    (tmp_path / "text.png").write_text("not a picture")
    result = subprocess.run([sys.executable, "-m", "srgan", "upscale", str(tmp_path / "text.png"),
                             "--model", weights], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [(f"srgan: error: {tmp_path / 'text.png'}: "
                                                  "not an image file that can be read")]


def test_one_bad_file_among_many_is_skipped_and_reported(tmp_path, capsys, weights):
    _make(tmp_path / "a.png", "rgb")
    _make(tmp_path / "c.png", "l")
    (tmp_path / "b.png").write_text("broken")
    code, out, _ = _cli(capsys, str(tmp_path / "a.png"), str(tmp_path / "b.png"), str(tmp_path / "c.png"),
                        str(tmp_path / "missing.png"), "--model", weights, "-o", str(tmp_path / "out"))
    assert code == 1
    assert "upscaled 2 image(s), skipped 2" in out and "b.png" in out and "missing.png" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x4.png", "c_x4.png"]


# ---------------------------------------------------------------- CLI: refusals
def test_output_equal_to_input_is_refused(tmp_path, capsys, weights):
    _make(tmp_path / "a.png", "rgb")
    before = (tmp_path / "a.png").read_bytes()
    code, _, err = _cli(capsys, str(tmp_path / "a.png"), "--model", weights, "-o", str(tmp_path / "a.png"))
    assert code == 2 and "would overwrite the input" in err
    code, _, err = _cli(capsys, str(tmp_path / "a.png"), "--model", weights, "--suffix", "", "--overwrite")
    assert code == 2 and "would overwrite the input" in err
    assert (tmp_path / "a.png").read_bytes() == before


def test_existing_output_needs_overwrite(tmp_path, capsys, weights):
    _make(tmp_path / "a.png", "rgb")
    (tmp_path / "a_x4.png").write_bytes(b"precious")
    code, _, err = _cli(capsys, str(tmp_path / "a.png"), "--model", weights)
    assert code == 2 and "already exists" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "a_x4.png").read_bytes() == b"precious"
    code, _, _ = _cli(capsys, str(tmp_path / "a.png"), "--model", weights, "--overwrite")
    assert code == 0 and Image.open(tmp_path / "a_x4.png").size == (48, 40)


def test_interrupted_batch_leaves_no_partial_file(tmp_path, capsys, weights, monkeypatch):
    for name in ("a.png", "b.png", "c.png"):
        _make(tmp_path / name, "rgb")
    real_save = Image.Image.save
    calls = []

    def save_then_interrupt(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == 2:  # the second image: half a file, then Ctrl-C
            with open(fp, "wb") as f:
                f.write(b"\x89PNG\r\n\x1a\n partial")
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_then_interrupt)
    out_dir = tmp_path / "out"
    code, _, err = _cli(capsys, str(tmp_path), "--model", weights, "-o", str(out_dir))
    assert code == 130 and "interrupted" in err
    names = sorted(p.name for p in out_dir.iterdir())  # no temp file, no partial b; c only if its write
    assert names in (["a_x4.png"], ["a_x4.png", "c_x4.png"])  # was already under way (writer threads)
    for name in names:
        with Image.open(out_dir / name) as done:
            done.load()
            assert done.size == (48, 40)


# ---------------------------------------------------------------- CLI: inputs
def test_folders_recursive_and_globs(tmp_path, capsys, weights):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    _make(tmp_path / "in" / "a.png", "rgb")
    _make(tmp_path / "in" / "sub" / "b.png", "rgb")
    (tmp_path / "in" / "notes.txt").write_text("ignored: not an image suffix")
    code, _out, _ = _cli(capsys, str(tmp_path / "in"), "--model", weights, "-o", str(tmp_path / "flat"))
    assert code == 0 and sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["a_x4.png"]
    code, _, _ = _cli(capsys, str(tmp_path / "in"), "--recursive", "--model", weights, "-o", str(tmp_path / "deep"))
    assert code == 0 and (tmp_path / "deep" / "sub" / "b_x4.png").is_file()
    code, _, _ = _cli(capsys, str(tmp_path / "in" / "*.png"), "--model", weights, "-o", str(tmp_path / "glob"))
    assert code == 0 and sorted(p.name for p in (tmp_path / "glob").iterdir()) == ["a_x4.png"]
    code, _, err = _cli(capsys, str(tmp_path / "in" / "*.jpg"), "--model", weights)
    assert code == 2 and "no files match" in err


def test_several_inputs_need_a_folder_not_a_file(tmp_path, capsys, weights):
    _make(tmp_path / "a.png", "rgb")
    _make(tmp_path / "b.png", "rgb")
    code, _, err = _cli(capsys, str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--model", weights,
                        "-o", str(tmp_path / "x.png"))
    assert code == 2 and "give a folder" in err


def test_demo_upscales_the_astronaut(tmp_path, capsys, weights, monkeypatch):
    from skimage import data

    assert data.astronaut().shape == (512, 512, 3)  # ships inside scikit-image, no download
    monkeypatch.setattr(data, "astronaut", lambda: _rgb(32, 24))  # keep the test fast
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(capsys, "--demo", "--model", weights)
    assert code == 0, err
    with Image.open(tmp_path / "astronaut_x4.png") as result:
        assert result.size == (96, 128) and result.mode == "RGB"
    code, _, err = _cli(capsys, "--demo", "--model", weights)
    assert code == 2 and "already exists" in err


def test_bad_options_are_one_line_errors_before_any_file_is_touched(tmp_path, capsys, weights):
    _make(tmp_path / "a.png", "rgb")
    _make(tmp_path / "b.png", "rgb")
    for extra, message in ((["--lowpass", "ideal"], "takes 1 parameter"), (["--tile", "big"], "tile must be"),
                           (["--device", "tpu"], "device must be"), (["--outscale", "-2"], "outscale"),
                           (["--quality", "0"], "quality")):
        code, out, err = _cli(capsys, str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--model", weights,
                              "-o", str(tmp_path / "out"), *extra)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]
