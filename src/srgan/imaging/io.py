"""Image files in and out without losing what the user cares about.

An upscaler that drops the alpha channel, the 16-bit depth, the ICC profile or the EXIF data of a
photo silently damages it (Real-ESRGAN #285/#291, upscayl #84), so `read_image` keeps all of it next
to the pixels and `write_image` puts it back.

Choices:
- EXIF orientation is applied on reading (the pixels are upright); the written EXIF says orientation 1.
- CMYK (and YCbCr/LAB/HSV) become RGB; a CMYK ICC profile is used for the conversion when littleCMS is
  available and then replaced by sRGB, because it no longer describes the pixels.
- Palette images (P, PA) become RGB, or RGBA when they have transparency: re-quantising a
  super-resolved image to 256 colours would undo the upscaling.
- Animated images (GIF, APNG, WebP with more than one frame) are refused: upscaling only the first
  frame would silently drop the animation. Extract the frame you want first.
- 16-bit PNG and TIFF keep 16 bits per channel. Pillow handles 16-bit gray (modes I;16, I;16B, I)
  but keeps colour and gray+alpha at 8 bits in memory, so those pixels go through `pypng` (PNG) and
  `tifffile` (TIFF, a dependency of scikit-image) both ways, while Pillow still reads their ICC
  profile and EXIF. Stored 16-bit values are taken as they are: gAMA is not applied (as for 8-bit
  files) and sBIT is ignored, since the PNG spec stores samples scaled to the full 16-bit range.
- More pixels than `PIL.Image.MAX_IMAGE_PIXELS` (or the environment variable `SRGAN_MAX_PIXELS`)
  is refused as a possible decompression bomb before the pixels are decoded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from srgan.errors import SrganError, one_line
from srgan.files import atomic_write, existing_file
from srgan.imaging.formats import ImageFormat, output_format, writable_formats
from srgan.imaging.quantize import to_uint8, to_uint16

log = logging.getLogger(__name__)

ORIENTATION = 0x0112


@dataclass
class LoadedImage:
    """Pixels as a float32 tensor (C, H, W) in [0, 1], C = 1 (gray) or 3 (RGB), plus what must survive
    the round trip. `mode` is the mode of the original file (before any conversion)."""

    pixels: torch.Tensor
    alpha: torch.Tensor | None = None  # (1, H, W) in [0, 1]
    mode: str = "RGB"
    bit_depth: int = 8
    icc_profile: bytes | None = None
    exif: bytes | None = None
    format: str | None = None
    path: Path | None = None

    @property
    def gray(self) -> bool:
        return self.pixels.shape[0] == 1

    @property
    def height(self) -> int:
        return int(self.pixels.shape[-2])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[-1])

    def replace(self, **changes: object) -> LoadedImage:
        return dataclasses.replace(self, **changes)


class NotAnImage(SrganError):
    """The bytes are no image any reader knows (or there are none)."""


class TooManyPixels(SrganError):
    """More pixels than the limit, seen in the header before any pixel is decoded; `size` is None when
    Pillow itself refused the header as a decompression bomb."""

    def __init__(self, message: str, size: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.size = size


def max_pixels() -> int | None:
    env = os.environ.get("SRGAN_MAX_PIXELS")
    if env:
        try:
            return int(env)
        except ValueError as exc:
            raise SrganError(f"SRGAN_MAX_PIXELS must be an integer, got {env!r}") from exc
    return Image.MAX_IMAGE_PIXELS


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Read any still image Pillow can open; every failure is a one-line `SrganError` naming the file."""
    path = existing_file(path, "image file")
    if path.stat().st_size == 0:
        raise SrganError(f"{path}: empty file (0 bytes)")
    return _decode(path, str(path)).replace(path=path)


def decode_image(data: bytes, name: str = "upload", *, limit: int | None = None) -> LoadedImage:
    """The bytes of an image file (an upload) read exactly as `read_image` reads a file, in memory;
    `limit`: the most pixels its header may announce (default `max_pixels()`), checked before decoding."""
    if not data:
        raise NotAnImage(f"{name}: empty file (0 bytes)")
    return _decode(bytes(data), name, limit)


def _decode(source: Path | bytes, path: str, limit: int | None = None) -> LoadedImage:
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone relaxed Pillow globally: we still refuse half images
        log.debug("ImageFile.LOAD_TRUNCATED_IMAGES is set; truncated files may be read partially")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # decoders' notes on damaged metadata: the file reads, or is refused
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _reader(source) as file, Image.open(file) as im:
                _check_still_and_size(im, path, limit)
                if im.mode in ("RGB", "RGBA", "LA") and _raw_bits(im) == 16:
                    if im.format in ("PNG", "TIFF"):
                        return _read_16bit(source, path, im)
                    log.warning("%s: 16-bit colour %s is read at 8 bits per channel (Pillow limitation; "
                                "use a 16-bit PNG or TIFF to keep the depth)", path, im.format)
                im.load()
                return from_pil(im).replace(format=im.format)
    except SrganError as exc:
        if str(exc).startswith(f"{path}: "):
            raise
        raise SrganError(f"{path}: {exc}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooManyPixels(f"{path}: refused as a possible decompression bomb ({one_line(exc)})") from exc
    except UnidentifiedImageError as exc:
        raise NotAnImage(f"{path}: not an image file that can be read") from exc
    except MemoryError as exc:
        raise SrganError(f"{path}: not enough memory to decode this image") from exc
    except Exception as exc:  # decoders of hostile files raise anything (zlib.error, struct.error, ...)
        raise SrganError(f"{path}: corrupt or truncated image ({type(exc).__name__}: {one_line(exc)})") from exc


def read_8bit(path: str | os.PathLike) -> torch.Tensor:
    """`read_image` as uint8 (C, H, W), what training and evaluation work on: C = 1 for gray files
    (gray, gray+alpha, 1-bit, 16-bit gray), else 3; alpha dropped (their targets are opaque; colour
    is taken as stored); 16 bits reduced by `to_uint8`, i.e. v8 = round(v16 / 257)."""
    return to_uint8(read_image(path).pixels)


def from_pil(im: Image.Image) -> LoadedImage:
    """A PIL image (any mode) as a `LoadedImage`, upright by its EXIF orientation."""
    mode = im.mode
    icc = im.info.get("icc_profile") or None
    exif = _exif_of(im)
    had_orientation = ORIENTATION in exif
    if had_orientation and exif[ORIENTATION] != 1:
        im = ImageOps.exif_transpose(im)
    exif_bytes = None
    if len(exif):
        if had_orientation:
            exif[ORIENTATION] = 1  # the pixels are upright now
        exif_bytes = exif.tobytes()
    if mode == "CMYK":
        im, icc = _cmyk_to_rgb(im, icc)
    array, bit_depth = _to_array(im)
    alpha = None
    if array.shape[2] in (2, 4):
        array, alpha = array[..., :-1], array[..., -1:]
    return LoadedImage(pixels=_chw(array, bit_depth), alpha=None if alpha is None else _chw(alpha, bit_depth),
                       mode=mode, bit_depth=bit_depth, icc_profile=icc, exif=exif_bytes,
                       format=getattr(im, "format", None))


def to_pil(image: LoadedImage) -> Image.Image:
    """The PIL image for `image` (8-bit except 16-bit gray without alpha, which is I;16)."""
    gray, depth = image.gray, image.bit_depth
    if depth == 16 and gray and image.alpha is None:
        data = _integer_array(image.pixels, 16)[..., 0].astype("<u2", copy=False)
        return Image.frombytes("I;16", (image.width, image.height), data.tobytes())
    if depth == 16:
        log.info("16-bit %s is kept at 8 bits per channel in a PIL image", "gray+alpha" if gray else "colour")
    data = _integer_array(image.pixels, 8, image.alpha)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[data.shape[2]]
    return Image.fromarray(data if data.shape[2] > 1 else data[..., 0], mode)


def _integer_array(pixels: torch.Tensor, bit_depth: int, alpha: torch.Tensor | None = None) -> np.ndarray:
    """(C, H, W) floats (and optional alpha) -> HxWxC uint8/uint16 by `to_uint8`/`to_uint16`, a band
    of rows at a time so that a huge output needs no full-size float temporaries."""
    channels = pixels.shape[0] + (0 if alpha is None else 1)
    height, width = pixels.shape[-2:]
    out = np.empty((height, width, channels), np.uint16 if bit_depth == 16 else np.uint8)
    band = max(1, (1 << 22) // max(1, width * channels))
    for y in range(0, height, band):
        rows = pixels[:, y:y + band] if alpha is None else torch.cat([pixels[:, y:y + band], alpha[:, y:y + band]])
        rows = rows.detach().float()
        values = to_uint16(rows) if bit_depth == 16 else to_uint8(rows)
        out[y:y + band] = values.permute(1, 2, 0).cpu().numpy()
    return out


def write_image(path: str | os.PathLike, image: LoadedImage, *, format: str | None = None,
                quality: int | None = None, strip_metadata: bool = False, overwrite: bool = False) -> Path:
    """Write `image` atomically (a crash leaves no partial file), keeping alpha, bit depth (where the
    format has it), ICC profile and EXIF unless `strip_metadata`. `quality` (1-100, checked where it enters:
    `UpscaleOptions`) is for JPEG/WebP; WebP at 100 is lossless. An existing file is replaced only with `overwrite` (`srgan.files`)."""
    fmt = output_format(path, format)
    _check_writable(path, image, fmt)
    return atomic_write(path, lambda tmp: _save(tmp, image, fmt, quality, strip_metadata, path), overwrite=overwrite)


def encode_image(image: LoadedImage, format: str, *, quality: int | None = None,
                 strip_metadata: bool = False) -> bytes:
    """The bytes `write_image` would write for `image` in `format` (png, jpg, webp, tiff), in memory
    (what a web server answers)."""
    fmt = output_format("", format)
    _check_writable("output", image, fmt)
    buffer = io.BytesIO()
    _save(buffer, image, fmt, quality, strip_metadata, "output")
    return buffer.getvalue()


def _check_writable(path: str | os.PathLike, image: LoadedImage, fmt: ImageFormat) -> None:
    if image.alpha is not None and not fmt.alpha:
        others = [row.name for row in writable_formats() if row.alpha]
        raise SrganError(f"{path}: {fmt.label or fmt.name} cannot store the alpha channel; write "
                         f"{', '.join(others[:-1])} or {others[-1]} instead")


def _save(target: str | BinaryIO, image: LoadedImage, fmt: ImageFormat, quality: int | None, strip_metadata: bool,
          path: str | os.PathLike) -> None:
    """Encode `image` into `target` (a file name or a binary file object) as its format's row says."""
    icc = None if strip_metadata else image.icc_profile
    exif = None if strip_metadata else image.exif
    if image.bit_depth == 16 and 16 not in fmt.bit_depths:
        log.info("%s: %s stores 8 bits per channel", path, fmt.pillow)
        image = image.replace(bit_depth=8)
    elif image.bit_depth == 16 and not (image.gray and image.alpha is None):  # beyond Pillow: PNG or TIFF
        if fmt.pillow == "PNG":
            _write_png16(target, image, icc, exif)
        else:
            _write_tiff16(target, image, icc)
        return
    im = to_pil(image)
    if not fmt.gray and im.mode in ("L", "LA"):  # e.g. WebP has no gray modes
        im = im.convert("RGBA" if im.mode == "LA" else "RGB")
    options: dict[str, object] = {}
    if icc:
        options["icc_profile"] = icc
    if exif:
        options["exif"] = exif
    options.update(fmt.save_options(quality))
    im.save(target, format=fmt.pillow, **options)


# ---------------------------------------------------------------- helpers
# descriptive tags of a TIFF's first IFD worth carrying over; the rest (strip offsets, sizes, ...)
# describe the TIFF container itself and would be wrong in any other file
_TIFF_EXIF_TAGS = (ORIENTATION, 270, 271, 272, 305, 306, 315, 33432)
_SUB_IFDS = (0x8769, 0x8825)  # Exif and GPS


def _exif_of(im: Image.Image) -> Image.Exif:
    exif = im.getexif()
    if im.format != "TIFF":
        return exif
    kept = Image.Exif()
    for tag in _TIFF_EXIF_TAGS:
        if tag in exif:
            kept[tag] = exif[tag]
    for tag in _SUB_IFDS:
        if tag in exif:
            ifd = exif.get_ifd(tag)
            if ifd:
                kept[tag] = dict(ifd)
    return kept


def _check_still_and_size(im: Image.Image, path: str, limit: int | None = None) -> None:
    frames = getattr(im, "n_frames", 1)
    if getattr(im, "is_animated", False) and frames > 1:
        raise SrganError(f"{path}: animated or multi-page image with {frames} frames is not supported; "
                         "extract the frame to upscale first")
    limit = max_pixels() if limit is None else limit
    if limit is not None and im.width * im.height > limit:
        raise TooManyPixels(f"{path}: {im.width}x{im.height} has more than {limit:,d} pixels, refused as a possible "
                            "decompression bomb (raise SRGAN_MAX_PIXELS if you trust the file)", im.size)


def _raw_bits(im: Image.Image) -> int:
    """Bits per channel in the file, from the decoder's raw mode (e.g. 'RGB;16B') or TIFF tag 258."""
    tag = getattr(im, "tag_v2", None)
    if tag is not None and 258 in tag:
        bits = tag[258]
        return int(bits[0] if isinstance(bits, tuple) else bits)
    for tile in getattr(im, "tile", None) or []:
        raw = tile[3] if len(tile) > 3 else None
        raw = raw[0] if isinstance(raw, tuple) else raw
        if isinstance(raw, str) and ";16" in raw:
            return 16
    return 8


def _reader(source: Path | bytes) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")


def _read_16bit(source: Path | bytes, path: str, im: Image.Image) -> LoadedImage:
    """16-bit colour or gray+alpha PNG/TIFF: pixels from pypng/tifffile (Pillow would cut them to 8 bits),
    ICC profile and EXIF from Pillow."""
    icc = im.info.get("icc_profile") or None
    exif = _exif_of(im)
    orientation = int(exif.get(ORIENTATION, 1))
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    array = _orient(_read_png16(source, path) if im.format == "PNG" else _read_tiff16(source, path), orientation)
    colour = 1 if array.shape[2] <= 2 else 3
    alpha = _chw(array[..., colour:], 16) if array.shape[2] in (2, 4) else None
    mode = ("LA" if array.shape[2] == 2 else im.mode) + ";16"  # Pillow calls 16-bit gray+alpha PNG RGBA
    return LoadedImage(pixels=_chw(array[..., :colour], 16), alpha=alpha, mode=mode, bit_depth=16,
                       icc_profile=icc, exif=exif.tobytes() if len(exif) else None, format=im.format)


def _read_tiff16(source: Path | bytes, path: str) -> np.ndarray:
    import tifffile

    with warnings.catch_warnings(), _reader(source) as file:
        warnings.simplefilter("ignore")
        array = tifffile.imread(file, key=0)
    if array.dtype != np.uint16 or array.ndim != 3 or array.shape[2] not in (3, 4):
        raise SrganError(f"{path}: unsupported 16-bit TIFF layout {array.shape} {array.dtype}")
    return array


def _read_png16(source: Path | bytes, path: str) -> np.ndarray:
    """HxWxC uint16; a tRNS colour key (16-bit RGB only) becomes an alpha channel, as Pillow does at 8 bits."""
    import png

    try:
        with _reader(source) as file:
            width, height, rows, info = png.Reader(file=file).read()
            array = np.empty((height, width * info["planes"]), np.uint16)
            done = 0
            for done, row in enumerate(rows, 1):
                array[done - 1] = row
    except (png.Error, zlib.error) as exc:
        raise SrganError(f"{path}: corrupt or truncated image ({one_line(exc)})") from exc
    if done != height:
        raise SrganError(f"{path}: corrupt or truncated image ({done} of {height} rows)")
    array = array.reshape(height, width, info["planes"])
    if "transparent" in info and not info["alpha"]:
        opaque = np.any(array != np.array(info["transparent"], np.uint16), axis=2, keepdims=True)
        array = np.concatenate([array, opaque.astype(np.uint16) * 65535], axis=2)
    return array


def _write_png16(target: str | BinaryIO, image: LoadedImage, icc: bytes | None, exif: bytes | None) -> None:
    """pypng encodes the 16-bit rows; its Writer has no iCCP or eXIf, so those chunks are put in after IHDR."""
    import png

    data = _integer_array(image.pixels, 16, image.alpha)
    height, width, _ = data.shape
    writer = png.Writer(width, height, greyscale=image.gray, alpha=image.alpha is not None, bitdepth=16,
                        compression=6)
    encoded = io.BytesIO()
    writer.write_packed(encoded, (row.astype(">u2").tobytes() for row in data.reshape(height, -1)))
    extra = []
    if icc:
        extra.append((b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)))
    if exif:
        extra.append((b"eXIf", exif.removeprefix(b"Exif\0\0")))
    chunks = list(png.Reader(bytes=encoded.getvalue()).chunks())
    with open(target, "wb") if isinstance(target, str) else contextlib.nullcontext(target) as file:
        png.write_chunks(file, chunks[:1] + extra + chunks[1:])


def _write_tiff16(target: str | BinaryIO, image: LoadedImage, icc: bytes | None) -> None:
    import tifffile

    pixels = image.pixels.expand(3, -1, -1) if image.gray else image.pixels  # gray+alpha: stored as RGBA
    data = _integer_array(pixels, 16, image.alpha)
    extratags = [(34675, "B", len(icc), icc, True)] if icc else []
    tifffile.imwrite(target, data, photometric="rgb", compression="zlib", extrasamples=["unassalpha"]
                     if image.alpha is not None else None, extratags=extratags)


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation as numpy ops (same transforms as PIL.ImageOps.exif_transpose)."""
    ops = {
        2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
        7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1], 8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](array)) if orientation in ops else array


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    if icc:
        try:
            from PIL import ImageCms

            srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, src, srgb, outputMode="RGB"), srgb.tobytes()
        except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as exc:  # broken profile: plain formula
            log.warning("CMYK profile could not be applied (%s); converting without it", one_line(exc))
    return im.convert("RGB"), None


def _to_array(im: Image.Image) -> tuple[np.ndarray, int]:
    """HxWxC array (uint8 or uint16) of `im` in L, LA, RGB or RGBA, and its bit depth."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        data = np.asarray(im)
        if mode == "I" and (data.min() < 0 or data.max() > 65535):
            raise SrganError(f"32-bit integer image with values outside 0..65535 ({data.min()}..{data.max()})")
        return data.astype(np.uint16)[..., None], 16
    if mode == "F":
        raise SrganError("32-bit float images are not supported; save them as 16-bit PNG or TIFF")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode == "L" and "transparency" in im.info:
        im = im.convert("LA")
    elif mode == "RGB" and "transparency" in im.info:
        im = im.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")
    data = np.asarray(im)
    return (data[..., None] if data.ndim == 2 else data), 8


def _chw(array: np.ndarray, bit_depth: int) -> torch.Tensor:
    data = np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32)
    data /= 65535.0 if bit_depth == 16 else 255.0
    return torch.from_numpy(data)
