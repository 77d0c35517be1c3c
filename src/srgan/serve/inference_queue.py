"""A fixed pool of inference threads behind a bounded queue.

The model runs in these threads, never on the event loop, so the server keeps answering (`/healthz`,
`/metrics`, refusals) while a big image is upscaled. A request takes a `Slot` once its upload is
in and checked (`srgan.serve.upload` bounds the upload's size, time and pace, so a slow client holds
memory for a bounded time but never a slot): at most `workers + depth` requests hold one, and
anything more is refused at once (429, with a Retry-After estimated from recent job times) instead
of piling up. A request that times out while waiting is withdrawn; one whose job is already running
cannot be stopped (PyTorch has no safe way to interrupt a thread), so its slot stays taken until the
job ends, which keeps the count honest.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from srgan.serve.errors import ServeError

T = TypeVar("T")


class InferenceQueue:
    def __init__(self, workers: int, depth: int) -> None:
        self.workers = workers
        self.capacity = workers + depth
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="srgan-inference")
        self._lock = threading.Lock()
        self._taken = 0  # slots held: waiting or running
        self._running = 0
        self._job_seconds = 1.0  # running mean of recent jobs, for Retry-After

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        """Requests admitted and not running yet (reading their upload or queued for a worker)."""
        return self._taken - self._running

    def take(self) -> Slot:
        """A slot for one request, or a 429 `ServeError` when all are taken."""
        with self._lock:
            if self._taken >= self.capacity:
                raise ServeError(429, f"busy: {self._running} image(s) upscaling and {self.waiting} waiting "
                                      f"(--queue {self.capacity - self.workers}); retry later",
                                 reason="busy", limit=("queue", self.capacity - self.workers),
                                 headers={"Retry-After": str(self.retry_after())})
            self._taken += 1
        return Slot(self)

    def retry_after(self) -> int:
        """Whole seconds until a slot is likely free: the queue ahead, at the recent pace."""
        return max(1, math.ceil(self._job_seconds * (self.waiting + 1) / self.workers))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _release(self) -> None:
        with self._lock:
            self._taken -= 1

    def _timed(self, job: Callable[..., T], *args: Any) -> T:
        with self._lock:
            self._running += 1
        start = time.perf_counter()
        try:
            return job(*args)
        finally:
            seconds = time.perf_counter() - start
            with self._lock:
                self._running -= 1
                self._job_seconds = 0.8 * self._job_seconds + 0.2 * seconds


class Slot:
    """One admitted request: `run` its job at most once, then `close` (also on errors)."""

    def __init__(self, queue: InferenceQueue) -> None:
        self._queue = queue
        self._future: Future | None = None
        self._closed = False

    async def run(self, job: Callable[..., T], *args: Any, timeout: float) -> T:
        """`job(*args)` on an inference thread; a 504 `ServeError` after `timeout` seconds."""
        if self._future is not None:
            raise RuntimeError("a slot runs one job")
        self._future = self._queue._pool.submit(self._queue._timed, job, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self._future), timeout)
        except asyncio.TimeoutError as exc:
            raise ServeError(504, f"not done within {timeout:g} s (--timeout); the server is busy or the image "
                                  "is too large for it", reason="timeout", limit=("timeout", timeout)) from exc

    def close(self) -> None:
        """Give the slot back now, or when the job that still runs ends."""
        if self._closed:
            return
        self._closed = True
        if self._future is None:
            self._queue._release()
        else:
            self._future.cancel()  # withdrawn if still queued; a running job cannot be cancelled
            self._future.add_done_callback(lambda _: self._queue._release())
