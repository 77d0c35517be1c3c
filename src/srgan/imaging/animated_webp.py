"""Animated WebP in and out with Pillow: the FFmpeg in PyAV's wheels has no decoder for it, so its
frames come from here (every other animation and video comes from `srgan.imaging.video`).

- A WebP is told by its header (`RIFF....WEBP`), not its name; whether it is animated, by Pillow's
  frame count (`srgan.imaging.video.is_animation`), as for GIF and APNG.
- Frames are decoded one at a time as whole RGBA canvases (Pillow applies each frame's blending and
  disposal), each with its timestamp and duration in milliseconds, WebP's own time base, so the
  times are kept exactly. Metadata (ICC, EXIF) is not carried, as for videos.
- Writing is one call to Pillow's `save_all`, which has no form that takes frames one by one: the
  caller holds the frames until then. Lossless unless a quality below 100 is given. Lossless WebP
  keeps the colour of visible pixels only: a fully transparent pixel's colour may change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

from PIL import Image

from srgan.errors import SrganError, one_line
from srgan.imaging.io import LoadedImage, from_pil
from srgan.imaging.video import COLOUR_TAGS, VideoInfo

TIME_BASE = Fraction(1, 1000)  # milliseconds
_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def is_webp(path: str | Path) -> bool:
    """Whether `path` is a WebP file, by its first 12 bytes (a folder or FIFO is not opened)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as file:
            head = file.read(12)
    except OSError:
        return False
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


@contextlib.contextmanager
def _opened(path: str | Path) -> Iterator[Image.Image]:
    try:
        im = Image.open(path)
    except _ERRORS as exc:
        raise SrganError(f"{path}: not a WebP file Pillow can read ({one_line(exc)})") from exc
    with im:
        yield im


def webp_info(path: str | Path) -> VideoInfo:
    """`VideoInfo` of a WebP file, decoding its first frame: 8-bit RGBA, the rate of its first frame,
    its loop count."""
    with _opened(path) as im:
        _load(im, 0, path)
        duration = im.info.get("duration") or 0
        return VideoInfo(width=im.width, height=im.height, time_base=TIME_BASE,
                         rate=Fraction(1000, duration) if duration else None, frames=getattr(im, "n_frames", 1),
                         bit_depth=8, alpha=True, rotation=0, colour=dict.fromkeys(COLOUR_TAGS, 0),
                         loop=int(im.info.get("loop", 0)))


def webp_frames(path: str | Path) -> Iterator[tuple[int, int, Callable[[], LoadedImage]]]:
    """Every frame of a WebP file in order: its timestamp and duration in milliseconds and a callable
    giving its image (call it before taking the next frame: they share one decoder)."""
    with _opened(path) as im:
        for index in range(getattr(im, "n_frames", 1)):
            _load(im, index, path)
            yield int(im.info.get("timestamp", 0)), int(im.info.get("duration", 0)), lambda: _image(im)


def _load(im: Image.Image, index: int, path: str | Path) -> None:
    try:
        im.seek(index)
        im.load()
    except _ERRORS as exc:
        raise SrganError(f"{path}: the animation is damaged or cut short at frame {index} ({one_line(exc)})") from exc


def _image(im: Image.Image) -> LoadedImage:
    frame = im.convert("RGBA")  # a copy: the decoder reuses its canvas
    frame.info = {}  # no EXIF orientation: every frame keeps the canvas size
    return from_pil(frame)


def save_animated_webp(path: str | Path, frames: list[Image.Image], durations: list[int], *, loop: int,
                       quality: int | None) -> None:
    """`frames` as one animated WebP at `path`, each shown for its duration (milliseconds), played
    `loop` times (0: forever); lossless unless `quality` is below 100."""
    lossless = quality is None or quality == 100
    frames[0].save(path, format="WEBP", save_all=True, append_images=frames[1:], duration=durations, loop=loop,
                   lossless=lossless, **({} if lossless else {"quality": quality}))
