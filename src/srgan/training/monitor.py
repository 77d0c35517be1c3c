"""Seeing a run: a tqdm bar (losses, D(real)/D(fake), it/s), a text log, optional TensorBoard.

Only rank 0 of a distributed run creates one. Values arrive as Python floats, never tensors, so
nothing from the autograd graph is kept alive by the history (memory stays flat over long runs).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from srgan.files import make_folder

log = logging.getLogger("srgan.training")


class Monitor:
    def __init__(self, run_dir: Path, *, start: int, total: int, log_every: int, tensorboard: bool,
                 enabled: bool = True) -> None:
        self.enabled, self.log_every = enabled, log_every
        self._sums: dict[str, float] = {}
        self._count = 0
        self._since = time.perf_counter()
        self._writer: Any = None
        self._handler: logging.Handler | None = None
        self.bar = None
        if not enabled:
            return
        make_folder(run_dir)
        self._handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger("srgan").addHandler(self._handler)
        logging.getLogger("srgan").setLevel(min(logging.getLogger("srgan").getEffectiveLevel(), logging.INFO))
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("TensorBoard is not installed (pip install 'srgan[tensorboard]'): logging to "
                            "train.log only")
            else:
                self._writer = SummaryWriter(str(run_dir / "tensorboard"))
        self.bar = tqdm(total=total, initial=start, desc="train", unit="it", dynamic_ncols=True, disable=None,
                        smoothing=0.05)

    def step(self, iteration: int, stats: dict[str, float]) -> None:
        """`iteration` is the number of finished iterations."""
        if not self.enabled:
            return
        for key, value in stats.items():
            self._sums[key] = self._sums.get(key, 0.0) + value
        self._count += 1
        if self.bar is not None:
            self.bar.update(1)
            if iteration % 10 == 0 or iteration % self.log_every == 0:
                self.bar.set_postfix({k: _short(v) for k, v in stats.items()}, refresh=False)
        if iteration % self.log_every == 0:
            means = {k: v / self._count for k, v in self._sums.items()}
            now = time.perf_counter()
            rate = self._count / max(now - self._since, 1e-9)
            log.info("iter %d %.2f it/s %s", iteration, rate, " ".join(f"{k}={_short(v)}" for k, v in means.items()))
            if self._writer is not None:
                for key, value in means.items():
                    self._writer.add_scalar(f"train/{key}", value, iteration)
                self._writer.add_scalar("train/it_per_s", rate, iteration)
            self._sums, self._count, self._since = {}, 0, now

    def validation(self, iteration: int, rows: list[tuple[str, float, float, float | None]], label: str,
                   niqe: tuple[str, float] | None = None) -> None:
        """The PSNR / SSIM (/ LPIPS) table, and `niqe` = (folder name, mean NIQE) where a run tracks it."""
        if not self.enabled or not rows:
            return
        mean_psnr = sum(r[1] for r in rows) / len(rows)
        mean_ssim = sum(r[2] for r in rows) / len(rows)
        with_lpips = rows[0][3] is not None
        mean_lpips = sum(r[3] for r in rows) / len(rows) if with_lpips else None
        width = max(8, *(len(r[0]) for r in rows))
        lines = [f"validation at iteration {iteration} ({label}):",
                 f"  {'image':{width}s}  PSNR-Y   SSIM-Y" + ("   LPIPS" if with_lpips else "")]
        lines += [f"  {name:{width}s}  {psnr:6.2f}  {ssim:7.4f}" + (f"  {lp:6.4f}" if with_lpips else "")
                  for name, psnr, ssim, lp in rows]
        lines.append(f"  {'mean':{width}s}  {mean_psnr:6.2f}  {mean_ssim:7.4f}"
                     + (f"  {mean_lpips:6.4f}" if with_lpips else ""))
        if niqe is not None:
            lines.append(f"  NIQE on {niqe[0]}: {niqe[1]:.4f}")
        text = "\n".join(lines)
        if self.bar is not None and not self.bar.disable:
            self.bar.write(text)
        log.info("%s", text)
        if self._writer is not None:
            self._writer.add_scalar("val/psnr_y", mean_psnr, iteration)
            self._writer.add_scalar("val/ssim_y", mean_ssim, iteration)
            if mean_lpips is not None:
                self._writer.add_scalar("val/lpips", mean_lpips, iteration)
            if niqe is not None:
                self._writer.add_scalar("val/niqe", niqe[1], iteration)

    def images(self, iteration: int, tag: str, grid: torch.Tensor) -> None:
        """`grid`: (3, H, W) float in [0, 1]."""
        if self._writer is not None:
            self._writer.add_image(tag, grid.clamp(0, 1), iteration)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self._writer is not None:
            self._writer.close()
        if self._handler is not None:
            logging.getLogger("srgan").removeHandler(self._handler)
            self._handler.close()


def _short(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"
