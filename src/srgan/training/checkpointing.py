"""Saving and resuming a run: full checkpoints (everything that changes, so `--resume auto` continues
the exact run), compact resume states (weights and position only; Adam re-warms), and the log of
settings changed since the run being resumed. The file formats are `srgan.runfiles`'."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from srgan.errors import SrganError, one_line
from srgan.runfiles import checkpoint as ckpt
from srgan.runfiles import resume_state
from srgan.training import distributed as ddp
from srgan.training.config import config_changes
from srgan.training.setup import NonFiniteLoss, unwrap

log = logging.getLogger("srgan.training")


class Checkpointing:
    """The checkpoint part of `Trainer`."""

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "iteration": self.iteration,
            "config": self.config.to_dict(),
            "generator": unwrap(self.generator).state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": ckpt.rng_state(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.model.state_dict()
        if self.discriminator is not None:
            state["discriminator"] = unwrap(self.discriminator).state_dict()
            state["opt_d"] = self.opt_d.state_dict()
            state["sched_d"] = self.sched_d.state_dict()
        if self.stage1 is not None:
            state["stage1"] = self.stage1.state_dict()
        if self.warmup_start is not None:
            state["warmup_start"] = self.warmup_start
        return state

    def save_resume_state(self, path: str | Path) -> Path:
        """The compact cross-session state (runfiles/resume_state.py)."""
        return resume_state.save_resume_state(
            path, iteration=self.iteration, config=self.config.to_dict(),
            generator=unwrap(self.generator).state_dict(),
            ema=self.ema.model.state_dict() if self.ema is not None else None,
            discriminator=unwrap(self.discriminator).state_dict() if self.discriminator is not None else None)

    def save_checkpoint(self) -> None:
        ddp.barrier(self.dist)
        if self.dist.main:
            gen = unwrap(self.generator)
            if not all(torch.isfinite(p).all() for p in gen.parameters()):
                raise NonFiniteLoss(f"generator weights are not finite at iteration {self.iteration}; "
                                    f"not saving. Last good checkpoint: {self.last_checkpoint or 'none'}")
            path = ckpt.checkpoint_path(self.run_dir, self.iteration)
            ckpt.save_checkpoint(path, self._state())
            ckpt.prune_checkpoints(self.run_dir, self.config.train.keep_checkpoints)
            self.last_checkpoint = path
            log.info("checkpoint %s", path)
        ddp.barrier(self.dist)

    def _resume(self, resume: str, newest: tuple[Path, dict] | None) -> None:
        """Continue from `newest` (what `--resume auto` found), a compact resume state or a checkpoint."""
        if resume != "auto" and resume_state.is_resume_state(resume):
            self._resume_compact(resume)
            return
        if newest is not None:
            path, state = newest
        else:
            path, state = Path(resume), ckpt.load_checkpoint(resume)
        try:
            unwrap(self.generator).load_state_dict(state["generator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.sched_g.load_state_dict(state["sched_g"])
            self.scaler.load_state_dict(state["scaler"])
            if self.ema is not None:
                self.ema.model.load_state_dict(state["ema"] if "ema" in state else state["generator"])
            if self.discriminator is not None and "discriminator" in state:
                unwrap(self.discriminator).load_state_dict(state["discriminator"])
                self.opt_d.load_state_dict(state["opt_d"])
                self.sched_d.load_state_dict(state["sched_d"])
            if "stage1" in state:
                self.stage1 = self._frozen_copy_with(state["stage1"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise SrganError(f"{path}: does not match this config ({one_line(exc)})") from exc
        ckpt.set_rng_state(state["rng"])
        self.warmup_start = state.get("warmup_start")
        self.iteration = int(state["iteration"])
        self.last_checkpoint = path
        if self.dist.main:
            log.info("resumed from %s at iteration %d", path, self.iteration)
        self._log_config_changes(state.get("config"), path)

    def _resume_compact(self, path: str) -> None:
        """Weights (generator, EMA, discriminator) and schedule position from a compact state; Adam
        starts afresh and the learning rates re-warm over resume_state.WARMUP iterations. A state
        without a discriminator (a pixel-loss run continued as a GAN) leaves this one fresh."""
        state = resume_state.load_resume_state(path)
        if self.rec.enabled:
            raise SrganError(f"{path}: a compact resume state cannot continue an rGAN run; use a checkpoint")
        try:
            unwrap(self.generator).load_state_dict(state["generator"])
            if self.ema is not None:
                self.ema.model.load_state_dict(state["ema"] or state["generator"])
            if self.discriminator is not None and state["discriminator"] is not None:
                unwrap(self.discriminator).load_state_dict(state["discriminator"])
        except RuntimeError as exc:
            raise SrganError(f"{path}: does not match this config ({one_line(exc)})") from exc
        self.iteration = self.warmup_start = state["iteration"]
        for opt, sched in ((self.opt_g, self.sched_g), (self.opt_d, self.sched_d)):
            if sched is None:
                continue
            sched.last_epoch = self.iteration
            for group, base, fn in zip(opt.param_groups, sched.base_lrs, sched.lr_lambdas):
                group["lr"] = base * fn(self.iteration)
            sched._last_lr = [group["lr"] for group in opt.param_groups]
        if self.dist.main:
            log.info("resumed weights from %s at iteration %d (optimiser moments re-estimated: learning rate "
                     "warms up over %d iterations)", path, self.iteration, resume_state.WARMUP)
        self._log_config_changes(state.get("config"), path)

    def _log_config_changes(self, saved: Any, path: str | Path) -> None:
        """One log line per setting that differs from the run being resumed."""
        if self.dist.main and isinstance(saved, dict):
            for line in config_changes(saved, self.config.to_dict()):
                log.info("config changed since %s: %s", Path(path).name, line)
