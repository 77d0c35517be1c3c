"""Frames through one model: a frame source, the engine, a frame sink, overlapped.

This is the one pipeline of `srgan upscale`, whatever the input. A source yields `Frame`s (an image
plus where it belongs: index, timestamp, a note for the sink); a sink takes the upscaled ones.
Reading runs in worker threads and writing in others while the model runs in the caller's, with at
most `threads + 1` frames waiting on each side, so memory stays flat however long the source is and
the model's own time is (nearly) all there is. The pairs:
- images and folders (`srgan.inference.batch`): a file source whose frames carry their read error,
  and a file sink that writes each image atomically and records it (manifest, summary);
- videos and animations (`srgan.inference.video`): a decoder (PyAV, or Pillow for animated WebP)
  in, resumable encoded segments (`segments.py`) or an animated WebP (`webp_sink.py`) out.

Errors: a frame that could not be read carries its error past the model to the sink, which records
the skip; so does one whose upscaling raised an error of `skip`. Any other error (or
KeyboardInterrupt) on any side stops the others and is raised here: writes under way finish, the
queued ones are dropped.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from srgan.imaging.io import LoadedImage


@dataclass
class Frame:
    index: int  # position in the source, from 0
    image: LoadedImage | None = None  # None: not read yet (see `run_frames`' `read`), or `error`
    pts: int | None = None  # timestamp in `time_base` units (videos, animations)
    time_base: Fraction | None = None
    duration: int | None = None  # in `time_base` units, where the source says
    error: Exception | None = None  # why there is no image: the sink records the frame as skipped
    note: Any = None  # what the source tells the sink about the frame (an image file's manifest record)


class FrameSink(Protocol):
    def write(self, frame: Frame) -> None:
        """Take the next upscaled frame (in a writer thread: in order, unless `threads` > 1)."""


def run_frames(source: Iterable[Frame], sink: FrameSink, upscale: Callable[[LoadedImage], LoadedImage], *,
               read: Callable[[Frame], Frame] | None = None, threads: int = 1,
               skip: tuple[type[Exception], ...] = (), on_frame: Callable[[Frame], None] | None = None) -> int:
    """Upscale every frame of `source` into `sink`; returns the number of frames.

    Reading: iterating `source` is the reading (a decoder), done in one thread; or, for frames read
    independently of each other (image files), `source` yields them unread and `read(frame)` reads
    one, `threads` at once. `sink.write` runs in `threads` threads (more than 1 only for a sink that
    takes frames in any order); `threads=0`: everything here, one thing after the other.
    `on_frame(frame)` is called here, in source order, once the sink has the frame."""
    ahead = threads + 1
    frames = _read_ahead(source, read, threads, ahead)
    writer: Any = ThreadPoolExecutor(threads, "srgan-frame-write") if threads else _Inline()
    pending: deque[tuple[Frame, Future]] = deque()
    count = 0
    try:
        for frame in frames:
            out = frame if frame.error is not None else _upscaled(frame, upscale, skip)
            pending.append((out, writer.submit(sink.write, out)))
            while len(pending) > ahead or (pending and pending[0][1].done()):
                _written(*pending.popleft(), on_frame)
            count += 1
        while pending:
            _written(*pending.popleft(), on_frame)
    finally:
        frames.close()
        writer.shutdown(cancel_futures=True)
    return count


def _upscaled(frame: Frame, upscale: Callable[[LoadedImage], LoadedImage],
              skip: tuple[type[Exception], ...]) -> Frame:
    try:
        return dataclasses.replace(frame, image=upscale(frame.image))
    except skip as exc:
        return dataclasses.replace(frame, image=None, error=exc)


def _written(frame: Frame, write: Future, on_frame: Callable[[Frame], None] | None) -> None:
    write.result()
    if on_frame is not None:
        on_frame(frame)


def _read_ahead(source: Iterable[Frame], read: Callable[[Frame], Frame] | None, threads: int,
                ahead: int) -> Iterator[Frame]:
    """The frames of `source` in order, `ahead` of them read in advance (see `run_frames`); closing
    the generator waits for the reads under way and drops the others."""
    items = iter(source)
    workers = threads if read is not None else min(threads, 1)  # a decoder is read in order, by one thread
    pool: Any = ThreadPoolExecutor(workers, "srgan-frame-read") if workers else _Inline()

    def start() -> Future | None:
        if read is None:
            return pool.submit(next, items, None)
        item = next(items, None)
        return None if item is None else pool.submit(read, item)

    reads: deque[Future] = deque()
    try:
        while len(reads) < ahead and (future := start()) is not None:
            reads.append(future)
        while reads:
            frame = reads.popleft().result()
            if frame is None:
                return
            if (future := start()) is not None:
                reads.append(future)
            yield frame
    finally:
        pool.shutdown(cancel_futures=True)
        close = getattr(items, "close", None)
        if close is not None:
            close()


class _Inline:
    """Runs each task at once in the calling thread: the executor for `threads=0`."""

    def submit(self, fn: Callable, *args: object) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, **_: object) -> None:
        pass
