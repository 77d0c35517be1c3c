"""Reading and writing images without losing alpha, depth, orientation, ICC or EXIF (issue 2 item 6)."""

from __future__ import annotations

import io
import zlib

import numpy as np
import png
import pytest
import torch
from PIL import Image, ImageCms, ImageOps

from srgan.errors import SrganError
from srgan.imaging.io import LoadedImage, _orient, read_image, write_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 17, 3), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, (12, 17)).astype(np.uint16)
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _gray16(array: np.ndarray) -> Image.Image:
    return Image.frombytes("I;16", (array.shape[1], array.shape[0]), array.astype("<u2").tobytes())


@pytest.mark.parametrize("mode, channels, has_alpha, depth", [
    ("RGB", 3, False, 8), ("L", 1, False, 8), ("LA", 1, True, 8), ("RGBA", 3, True, 8), ("I;16", 1, False, 16),
])
def test_modes_round_trip_exactly_through_png(tmp_path, mode, channels, has_alpha, depth):
    source = {"RGB": Image.fromarray(RGB), "L": Image.fromarray(RGB[..., 0]),
              "LA": Image.fromarray(RGB[..., :2].copy(), "LA"),
              "RGBA": Image.fromarray(np.dstack([RGB, RGB[..., :1]]), "RGBA"), "I;16": _gray16(GRAY16)}[mode]
    source.save(tmp_path / "in.png")
    image = read_image(tmp_path / "in.png")
    assert image.pixels.dtype == torch.float32 and image.pixels.shape == (channels, 12, 17)
    assert (image.alpha is not None) == has_alpha and image.bit_depth == depth and image.mode == mode
    assert 0 <= image.pixels.min() and image.pixels.max() <= 1
    write_image(tmp_path / "out.png", image)
    with Image.open(tmp_path / "in.png") as a, Image.open(tmp_path / "out.png") as b:
        assert b.mode == a.mode
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_palette_becomes_rgb_and_transparent_palette_rgba(tmp_path):
    Image.fromarray(RGB).convert("P").save(tmp_path / "p.png")
    p = read_image(tmp_path / "p.png")
    assert p.mode == "P" and p.pixels.shape[0] == 3 and p.alpha is None
    pal = Image.fromarray((np.arange(12 * 17) % 4).astype(np.uint8).reshape(12, 17), "P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    pal.save(tmp_path / "pa.png", transparency=0)
    pa = read_image(tmp_path / "pa.png")
    assert pa.alpha is not None and pa.alpha.min() == 0


def test_16_bit_rgb_tiff_keeps_16_bits(tmp_path):
    import tifffile

    data = RNG.integers(0, 65536, (12, 17, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", data, photometric="rgb")
    image = read_image(tmp_path / "in.tif")
    assert image.bit_depth == 16 and image.pixels.shape == (3, 12, 17)
    write_image(tmp_path / "out.tif", image)
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), data)


def _png16(path, array: np.ndarray, *, icc: bytes | None = None, exif: bytes | None = None,
           transparent: tuple | None = None) -> None:
    """A 16-bit PNG written by pypng, with iCCP/eXIf chunks added by hand (independent of srgan)."""
    height, width, planes = array.shape
    encoded = io.BytesIO()
    png.Writer(width, height, greyscale=planes <= 2, alpha=planes in (2, 4), bitdepth=16,
               transparent=transparent).write(encoded, array.reshape(height, -1))
    chunks = list(png.Reader(bytes=encoded.getvalue()).chunks())
    extra = ([(b"iCCP", b"sRGB\0\0" + zlib.compress(icc))] if icc else []) + ([(b"eXIf", exif)] if exif else [])
    with open(path, "wb") as f:
        png.write_chunks(f, chunks[:1] + extra + chunks[1:])


def _values16(planes: int) -> np.ndarray:
    """Values 257*k + 1: every one has a low byte that an 8-bit path would lose."""
    return (RNG.integers(0, 255, (12, 17, planes)) * 257 + 1).astype(np.uint16)


@pytest.mark.parametrize("planes, mode", [(3, "RGB"), (4, "RGBA"), (2, "LA")])
def test_16_bit_colour_png_round_trips_losslessly_with_its_profile(tmp_path, planes, mode):
    data = _values16(planes)
    _png16(tmp_path / "in.png", data, icc=SRGB_ICC)
    image = read_image(tmp_path / "in.png")
    colour = 1 if planes <= 2 else 3
    assert image.bit_depth == 16 and image.mode == mode + ";16" and image.icc_profile == SRGB_ICC
    assert image.pixels.shape == (colour, 12, 17) and (image.alpha is not None) == (planes in (2, 4))
    stacked = image.pixels if image.alpha is None else torch.cat([image.pixels, image.alpha])
    assert np.array_equal(np.round(stacked.numpy().transpose(1, 2, 0) * 65535).astype(np.uint16), data)

    write_image(tmp_path / "out.png", image)
    width, height, rows, info = png.Reader(filename=str(tmp_path / "out.png")).read()
    assert (width, height, info["bitdepth"], info["planes"]) == (17, 12, 16, planes)
    assert np.array_equal(np.array([list(r) for r in rows], np.uint16).reshape(data.shape), data)
    with Image.open(tmp_path / "out.png") as out:  # Pillow parses the profile we wrote
        assert out.info.get("icc_profile") == SRGB_ICC
    write_image(tmp_path / "bare.png", image, strip_metadata=True)
    with Image.open(tmp_path / "bare.png") as bare:
        assert not bare.info.get("icc_profile")


def test_16_bit_png_exif_orientation_is_applied_and_reset(tmp_path):
    data = _values16(3)  # 17 wide, 12 high
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"
    _png16(tmp_path / "in.png", data, exif=exif.tobytes()[6:])  # eXIf holds the TIFF data without "Exif\0\0"
    image = read_image(tmp_path / "in.png")
    upright = np.rot90(data, -1)
    assert np.array_equal(np.round(image.pixels.numpy().transpose(1, 2, 0) * 65535).astype(np.uint16), upright)
    write_image(tmp_path / "out.png", image)
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (12, 17)
        assert out.getexif()[0x0112] == 1 and out.getexif()[0x010F] == "TestCam"


def test_16_bit_rgb_png_colour_key_becomes_alpha(tmp_path):
    data = _values16(3)
    key = tuple(int(v) for v in data[0, 0])
    _png16(tmp_path / "key.png", data, transparent=key)
    image = read_image(tmp_path / "key.png")
    expected = np.where(np.all(data == key, axis=2), 0.0, 1.0)
    assert image.alpha is not None and np.array_equal(image.alpha[0].numpy(), expected)


def test_truncated_16_bit_png_is_a_one_line_error(tmp_path):
    _png16(tmp_path / "full.png", _values16(4))
    content = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(content[: len(content) - 40])
    with pytest.raises(SrganError, match="cut.png: corrupt or truncated"):
        read_image(tmp_path / "cut.png")


def test_failed_16_bit_png_write_leaves_no_file(tmp_path, monkeypatch):
    def broken(out, chunks):
        out.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(png, "write_chunks", broken)
    with pytest.raises(SrganError, match="x.png: cannot write .disk full"):
        write_image(tmp_path / "x.png", LoadedImage(pixels=torch.rand(3, 4, 4), bit_depth=16))
    assert not list(tmp_path.iterdir())


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[:] = (200, 40, 90)
    Image.fromarray(flat).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    image = read_image(tmp_path / "c.jpg")
    assert image.mode == "CMYK" and image.pixels.shape == (3, 16, 16)
    assert np.allclose(image.pixels.mean((1, 2)).numpy() * 255, (200, 40, 90), atol=4)


def test_exif_orientation_is_applied_and_reset(tmp_path):
    source = Image.fromarray(RGB)  # 17 wide, 12 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F] = "TestCam"
    source.save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=100)
    image = read_image(tmp_path / "o.jpg")
    assert image.pixels.shape == (3, 17, 12)
    with Image.open(tmp_path / "o.jpg") as im:
        upright = np.asarray(ImageOps.exif_transpose(im))
    assert np.array_equal(np.round(image.pixels.numpy().transpose(1, 2, 0) * 255).astype(np.uint8), upright)
    write_image(tmp_path / "o.png", image)
    with Image.open(tmp_path / "o.png") as out:
        assert out.size == (12, 17)
        assert out.getexif()[0x0112] == 1 and out.getexif()[0x010F] == "TestCam"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_numpy_orientation_matches_pillow(orientation):
    """The 16-bit TIFF path rotates with numpy: it must agree with ImageOps.exif_transpose."""
    im = Image.fromarray(RGB)
    exif = im.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    im.save(buffer, "PNG", exif=exif.tobytes())
    with Image.open(buffer) as reread:
        expected = np.asarray(ImageOps.exif_transpose(reread))
    assert np.array_equal(_orient(RGB, orientation), expected)


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "tiff"])
def test_icc_profile_is_kept_unless_stripped(tmp_path, fmt):
    Image.fromarray(RGB).save(tmp_path / "in.png", icc_profile=SRGB_ICC)
    image = read_image(tmp_path / "in.png")
    assert image.icc_profile == SRGB_ICC
    write_image(tmp_path / f"kept.{fmt}", image)
    write_image(tmp_path / f"stripped.{fmt}", image, strip_metadata=True)
    with Image.open(tmp_path / f"kept.{fmt}") as kept, Image.open(tmp_path / f"stripped.{fmt}") as stripped:
        assert kept.info.get("icc_profile") == SRGB_ICC
        assert not stripped.info.get("icc_profile")


def _truncated_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


@pytest.mark.parametrize("name, content, message", [
    ("empty.png", b"", "empty file"),
    ("text.png", b"this is not an image\n", "not an image"),
    ("truncated.png", _truncated_png(), "corrupt or truncated"),
    ("corrupt.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image"),
])
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SrganError, match=message) as info:
        read_image(path)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SrganError, match="no such file"):
        read_image(tmp_path / "nope.png")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.new("RGB", (40, 30)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(SrganError, match="decompression bomb"):
        read_image(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10**9)
    monkeypatch.setenv("SRGAN_MAX_PIXELS", "500")
    with pytest.raises(SrganError, match="more than 500 pixels"):
        read_image(tmp_path / "big.png")


def test_animated_images_are_refused(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(SrganError, match="animated or multi-page image with 2 frames"):
        read_image(tmp_path / "anim.gif")


def test_jpeg_refuses_alpha_rather_than_dropping_it(tmp_path):
    image = LoadedImage(pixels=torch.rand(3, 4, 4), alpha=torch.rand(1, 4, 4))
    with pytest.raises(SrganError, match="alpha"):
        write_image(tmp_path / "x.jpg", image)
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(SrganError, match="x.png: cannot write .disk full"):
        write_image(tmp_path / "x.png", LoadedImage(pixels=torch.rand(3, 4, 4)))
    assert not list(tmp_path.iterdir())


def test_unknown_output_suffix_is_refused(tmp_path):
    with pytest.raises(SrganError, match="output format"):
        write_image(tmp_path / "x.xyz", LoadedImage(pixels=torch.rand(3, 4, 4)))
