"""The animated WebP frame sink: the upscaled frames kept, with their times, for Pillow to write in
one piece (`srgan.imaging.animated_webp`), since it cannot take them one by one.

Memory: the frames are held as 8-bit images until the end (4 bytes a pixel with alpha), which suits
what animated WebP is used for: stickers, short loops. A long video belongs in a video container.

Times: each frame's start is its pts in milliseconds (WebP's unit), rounded once per frame so that
rounding never accumulates; a frame lasts until the next one starts, the last one for its own
duration where the source gives it, else as long as the one before it.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from PIL import Image

from srgan.imaging.animated_webp import TIME_BASE, save_animated_webp
from srgan.imaging.io import to_pil
from srgan.inference.frames import Frame

_FALLBACK_MS = 100  # a frame whose source gives no time at all: 10 frames a second


class WebpWriter:
    """A `FrameSink` keeping the frames in order; `save` writes them as an animated WebP."""

    def __init__(self) -> None:
        self.frames: list[Image.Image] = []
        self.starts: list[int] = []  # milliseconds
        self.last: int | None = None  # the last frame's own duration, milliseconds

    def write(self, frame: Frame) -> None:
        self.frames.append(to_pil(frame.image))
        if frame.pts is not None:
            start = _ms(frame.pts, frame.time_base)
        else:
            start = self.starts[-1] + (self.last or _FALLBACK_MS) if self.starts else 0
        self.starts.append(start)
        self.last = None if frame.duration is None else _ms(frame.duration, frame.time_base)

    def durations(self) -> list[int]:
        gaps = [max(0, end - start) for start, end in zip(self.starts, self.starts[1:])]
        last = self.last if self.last is not None else gaps[-1] if gaps else _FALLBACK_MS
        return gaps + [last]

    def save(self, path: str | Path, *, loop: int, quality: int | None) -> None:
        save_animated_webp(path, self.frames, self.durations(), loop=loop, quality=quality)


def _ms(value: int, time_base: Fraction | None) -> int:
    return round(value * (time_base or TIME_BASE) * 1000)
