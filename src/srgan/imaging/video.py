"""Video files in and out with PyAV (FFmpeg in-process): what a frame becomes on the way to the model
and back, and what must survive the trip.

Upscalers that shell out to `ffmpeg` and go through PNG folders lose the sound, the frame timing
and the colour depth (Real-ESRGAN #334 / #404, video2x #117 / #1360). Here:
- Every decoded frame keeps its own timestamp (`pts` in the stream's time base), so a
  variable-frame-rate clip is written with the same times, never re-timed to a nominal rate.
- YUV is converted to RGB with the stream's own matrix and range (swscale, from the frame's tags),
  and back with the same ones; primaries, transfer, matrix and range are copied as tags.
- More than 8 bits per sample (10-bit HEVC/H.264/AV1) decodes to 16-bit RGB (`bit_depth=16`),
  and is written with the 10-bit pixel format of the chosen codec where it has one.
- A file that is not a video, has no video stream or a codec this FFmpeg cannot decode is one
  `SrganError` line, found before any work starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srgan.errors import SrganError, one_line
from srgan.imaging.io import LoadedImage
from srgan.imaging.quantize import to_uint8, to_uint16

log = logging.getLogger(__name__)

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
"""Suffix -> FFmpeg muxer of the video files srgan reads and writes."""
VIDEO_SUFFIXES = frozenset(CONTAINERS)
ANIMATION_SUFFIXES = {".gif": ".png", ".png": ".png", ".apng": ".apng", ".webp": ".webp"}
"""Animated images taken as videos -> the suffix they are written with: APNG, lossless with alpha
(a GIF holds 256 colours, which would undo the upscaling), and WebP as WebP. FFmpeg here cannot
decode animated WebP: Pillow reads and writes it (`srgan.imaging.animated_webp`)."""
COLOUR_TAGS = ("color_primaries", "color_trc", "colorspace", "color_range")
"""The colour tags of a frame, in `VideoInfo.colour` (0: unspecified)."""


@dataclass(frozen=True)
class Codec:
    """An output codec: the FFmpeg encoder, its 8-bit and high-bit-depth pixel formats (None: none),
    the quality option `--crf` sets and its default (None: lossless), the default `--preset` and
    the presets there are."""

    encoder: str
    pix_fmt: str
    pix_fmt_high: str | None
    crf: int | None
    preset: str | None
    presets: tuple[str, ...] = ()


X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")


CODECS = {
    "h264": Codec("libx264", "yuv420p", "yuv420p10le", 18, "medium", X26X_PRESETS),
    "h265": Codec("libx265", "yuv420p", "yuv420p10le", 20, "medium", X26X_PRESETS),
    "vp9": Codec("libvpx-vp9", "yuv420p", None, 31, None),
    "av1": Codec("libsvtav1", "yuv420p", "yuv420p10le", 30, "8", tuple(str(p) for p in range(14))),
    "ffv1": Codec("ffv1", "bgr0", "rgb48le", None, None),  # lossless RGB: the model's output exactly
    "apng": Codec("apng", "rgb24", "rgb48be", None, None),  # animated PNG
}
ALPHA_FORMATS = {"rgb24": "rgba", "rgb48be": "rgba64be"}  # where a codec keeps transparency


def require_av() -> Any:
    """The `av` module, or one line naming the extra that installs it."""
    try:
        import av
    except ImportError as exc:
        raise SrganError("video needs PyAV: pip install 'srgan[video]' (or pip install av)") from exc
    return av


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_animation(path: str | Path) -> bool:
    """An animated GIF, PNG or WebP (more than one frame, read from the header by Pillow)."""
    from PIL import Image

    if Path(path).suffix.lower() not in ANIMATION_SUFFIXES or not Path(path).is_file():
        return False  # a FIFO would block here; the image reader names what it is
    try:
        with Image.open(path) as im:
            return bool(getattr(im, "is_animated", False))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False  # the image reader refuses it in one line when the file is read


def container_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".png", ".apng"):
        return "apng"
    if suffix not in CONTAINERS:
        raise SrganError(f"{path}: cannot tell the video container from {suffix or '(no suffix)'!r}; "
                         f"use {', '.join(sorted(CONTAINERS))}, .png (animated PNG) or .webp (animated WebP)")
    return CONTAINERS[suffix]


@dataclass(frozen=True)
class VideoInfo:
    """What the input's video stream says, read once from its header and first frame."""

    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None  # the average frame rate, for the encoder and the frame estimate
    frames: int | None  # as the container counts them, else estimated from the duration (the ETA)
    bit_depth: int  # 8 or 16 (decoded as 16-bit RGB when the source has more than 8 bits)
    alpha: bool  # frames with transparency (animated GIF / PNG / WebP)
    rotation: int  # counter-clockwise degrees of the display matrix
    colour: dict[str, int]  # COLOUR_TAGS -> FFmpeg's numbers
    loop: int = 0  # times an animation plays (0: forever), where the input says (WebP)


def open_video(path: str | Path) -> Any:
    """An input container holding a decodable video stream, or one `SrganError` line saying why not."""
    av = require_av()
    try:
        container = av.open(str(path), "r")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise SrganError(f"{path}: not a video file FFmpeg can read ({one_line(exc)})") from exc
    if not container.streams.video:
        container.close()
        raise SrganError(f"{path}: has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.is_decoder:
        name = stream.codec_context.name if stream.codec_context else "unknown"
        container.close()
        raise SrganError(f"{path}: video codec {name!r} cannot be decoded by this FFmpeg")
    return container


def probe(container: Any, first: Any) -> VideoInfo:
    """`VideoInfo` from the stream header and its first decoded frame (where rotation and colour tags live)."""
    stream = container.streams.video[0]
    depth = max((c.bits for c in first.format.components), default=8)
    colour = {name: int(getattr(first, name) or getattr(stream.codec_context, name) or 0) for name in COLOUR_TAGS}
    rate = stream.average_rate or stream.guessed_rate
    frames = stream.frames or None
    if frames is None and rate and container.duration:  # not recorded (Matroska): estimated, for the ETA
        frames = round(container.duration / 1e6 * rate)
    return VideoInfo(width=first.width, height=first.height, time_base=stream.time_base, rate=rate,
                     frames=frames, bit_depth=16 if depth > 8 else 8,
                     alpha=any(c.is_alpha for c in first.format.components),
                     rotation=round(first.rotation or 0), colour=colour)


def frame_to_image(frame: Any, info: VideoInfo) -> LoadedImage:
    """A decoded frame as float RGB in [0, 1]: through the frame's own matrix and range, 16-bit RGB
    for sources of more than 8 bits."""
    fmt = ("rgba64le" if info.alpha else "rgb48le") if info.bit_depth == 16 else ("rgba" if info.alpha else "rgb24")
    rgb = frame.reformat(format=fmt, src_color_range=info.colour["color_range"] or None).to_ndarray()
    peak = 65535.0 if info.bit_depth == 16 else 255.0
    pixels = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1).div_(peak)
    alpha = pixels[3:] if info.alpha else None
    return LoadedImage(pixels=pixels[:3], alpha=alpha, mode="video", bit_depth=info.bit_depth)


def image_to_frame(image: LoadedImage, pix_fmt: str, info: VideoInfo) -> Any:
    """An upscaled image as a frame of `pix_fmt`, converted with the input's matrix and range."""
    av = require_av()
    alpha = image.alpha is not None
    channels = torch.cat([image.pixels, image.alpha]) if alpha else image.pixels
    if image.bit_depth == 16:
        data = to_uint16(channels).permute(1, 2, 0).numpy().astype(np.uint16)
        fmt = "rgba64le" if alpha else "rgb48le"
    else:
        data, fmt = to_uint8(channels).permute(1, 2, 0).contiguous().numpy(), "rgba" if alpha else "rgb24"
    frame = av.VideoFrame.from_ndarray(data, format=fmt)
    if pix_fmt in (fmt, "bgr0") or pix_fmt.startswith(("gbr", "rgb")):
        return frame.reformat(format=pix_fmt)
    matrix = info.colour["colorspace"] or None
    frame = frame.reformat(format=pix_fmt, dst_colorspace=matrix, dst_color_range=info.colour["color_range"] or None)
    for name, value in info.colour.items():
        if value:
            setattr(frame, name, value)
    return frame
