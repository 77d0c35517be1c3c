"""One training iteration: the discriminator's `d_steps` updates (GAN runs), then the generator's,
under autocast and the AMP scaler, with gradient clipping, the EMA update and the schedules; a loss
that is not finite on any rank stops the run."""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from srgan.training import distributed as ddp
from srgan.training.setup import NonFiniteLoss, unwrap


class TrainStep:
    """The step part of `Trainer`."""

    def _autocast(self) -> Any:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def train_step(self, lr: torch.Tensor, hr: torch.Tensor, hr_real: torch.Tensor | None = None) -> dict[str, float]:
        """One update; `hr` is the content losses' target, `hr_real` (default `hr`) what D sees as real."""
        cfg = self.config
        lr = lr.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        hr = hr.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        x, target = self._pair(lr, hr)
        real = target if hr_real is None or self.rec.enabled else \
            hr_real.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        use_gan = self.discriminator is not None and not self._in_stage1(self.iteration)
        stats: dict[str, float] = {}
        self.generator.train()
        with self._autocast():
            sr = self.generator(x)
        sr = sr.float()

        if use_gan:
            disc = self.discriminator
            disc.train()
            disc.requires_grad_(True)
            for _ in range(cfg.optim.d_steps):
                with self._autocast():
                    real_logits = disc(real)
                    fake_logits = disc(sr.detach())
                d_loss, d_stats = self.d_objective(real_logits, fake_logits)
                stats.update(d_stats)
                self._check_finite(d_loss, "discriminator")
                self.opt_d.zero_grad(set_to_none=True)
                self.scaler.scale(d_loss).backward()
                self._clip(self.opt_d, disc)
                self.scaler.step(self.opt_d)
            disc.requires_grad_(False)
            plain = unwrap(disc)  # no DDP hooks: D is not updated by the generator step
            with self._autocast():
                fake_logits = plain(sr)
                real_logits = plain(real).detach() if self.g_objective.needs_real_logits else None
            g_loss, g_stats = self.g_objective(sr, target, fake_logits, real_logits)
        else:
            g_loss, g_stats = self.g_objective(sr, target, None, None)
        stats.update(g_stats)
        self._check_finite(g_loss, "generator")
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(g_loss).backward()
        self._clip(self.opt_g, self.generator)
        self.scaler.step(self.opt_g)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(unwrap(self.generator), self.iteration)
        self.sched_g.step()
        if self.sched_d is not None and use_gan:
            self.sched_d.step()
        return stats

    def _clip(self, optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
        if self.config.train.grad_clip > 0:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.train.grad_clip)

    def _check_finite(self, loss: torch.Tensor, which: str) -> None:
        bad = not math.isfinite(float(loss.detach()))
        if ddp.broadcast_flag(self.dist, bad):
            raise NonFiniteLoss(f"{which} loss is not finite at iteration {self.iteration + 1}: stopping "
                                f"(lower optim.lr_g/lr_d or set train.grad_clip); last good checkpoint: "
                                f"{self.last_checkpoint or 'none'}")
