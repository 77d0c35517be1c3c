"""Frames through one model: a frame source, the engine, a frame sink, overlapped.

A source yields `Frame`s (an image plus where it belongs: index and timestamp); a sink takes the
upscaled ones in order. Reading runs in one thread and writing in another while the model runs in
the caller's, with at most `ahead` frames waiting on each side, so memory stays flat however long
the source is and the model's own time is (nearly) all there is. `srgan.inference.video` gives it
the video pair (decoded frames in, resumable encoded segments out); the image batch path
(`batch.run_jobs`) still has its own loop of the same shape, with per-file errors and manifests.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from srgan.imaging.io import LoadedImage

_DONE = object()


@dataclass
class Frame:
    index: int  # position in the source, from 0
    image: LoadedImage
    pts: int | None = None  # timestamp in `time_base` units (videos)
    time_base: Fraction | None = None


class FrameSink(Protocol):
    def write(self, frame: Frame) -> None:
        """Take the next upscaled frame (called in order, from one thread)."""


def run_frames(source: Iterable[Frame], sink: FrameSink, upscale: Callable[[LoadedImage], LoadedImage], *,
               ahead: int = 2, on_frame: Callable[[Frame], None] | None = None) -> int:
    """Upscale every frame of `source` into `sink`, reading and writing in two threads; returns the
    number of frames. An error (or KeyboardInterrupt) on any side stops the others and is raised here."""
    frames = _prefetch(source, ahead)
    count = 0
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(1, "srgan-frame-write") as writer:
        try:
            for frame in frames:
                out = Frame(frame.index, upscale(frame.image), frame.pts, frame.time_base)
                pending.append(writer.submit(sink.write, out))
                while len(pending) > ahead or (pending and pending[0].done()):
                    pending.popleft().result()
                count += 1
                if on_frame is not None:
                    on_frame(out)
            while pending:
                pending.popleft().result()
        finally:
            frames.close()
            for future in pending:
                future.cancel()
    return count


def _prefetch(source: Iterable[Frame], ahead: int) -> Iterator[Frame]:
    """`source` read in a thread, `ahead` frames in advance; closing the generator stops the thread."""
    items: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def read() -> None:
        try:
            for frame in source:
                while not stop.is_set():
                    try:
                        items.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 (handed to the consumer, which raises it)
            items.put(exc)

    thread = threading.Thread(target=read, name="srgan-frame-read", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get_nowait()
            except queue.Empty:
                thread.join(0.05)
