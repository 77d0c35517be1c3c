"""The training loop for every SRGAN variant: pixel-loss pre-training (no discriminator) and
adversarial training, one config away from each other.

Reproducible by construction: data randomness is a function of (seed, iteration) (see
srgan.data.dataset), and a checkpoint holds everything else that changes (weights, EMA, optimiser
and scheduler moments, AMP scaler, RNG states), so `--resume auto` continues the exact run.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srgan.data.dataset import TrainPatches, make_loader
from srgan.errors import SrganError, one_line
from srgan.hardware import NAMES, resolve_device, resolve_precision
from srgan.imaging.imresize import imresize
from srgan.imaging.quantize import round_to_8bit
from srgan.models.generator import Generator
from srgan.models.registry import build
from srgan.models.weights import load_model, save_model
from srgan.runfiles import checkpoint as ckpt
from srgan.runfiles import resume_state
from srgan.training import distributed as ddp
from srgan.training.config import Config, config_changes, data_scale, generator_config
from srgan.training.monitor import Monitor
from srgan.training.objective import (
    DiscriminatorObjective,
    GeneratorObjective,
    build_discriminator_from_config,
)

log = logging.getLogger("srgan.training")


class NonFiniteLoss(SrganError):
    """The loss became NaN or infinite; the run stops and the last good checkpoint stays."""


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


class EMA:
    """Exponential moving average of the generator's parameters; buffers (BN statistics) are copied.

    The decay warms up as min(decay, (1 + t) / (10 + t)) (TensorFlow's ExponentialMovingAverage with
    num_updates), so short runs are not dominated by the random initial weights."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)


def _lr_lambda(cfg: Config, base_lr: float) -> Callable[[int], float]:
    o, total = cfg.optim, cfg.train.iterations
    floor = o.min_lr / base_lr
    if o.schedule == "step":
        return lambda it: o.gamma ** (it // o.step_size)
    if o.schedule == "multistep":
        milestones = sorted(o.milestones)
        return lambda it: o.gamma ** sum(it >= m for m in milestones)
    if o.schedule == "cosine":
        return lambda it: floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(it, total) / total))
    return lambda it: 1.0


def default_run_dir(config: Config) -> Path:
    return Path(config.train.out_dir) if config.train.out_dir else Path("runs") / config.name


class Trainer:
    """`Trainer(config).fit()` trains and returns the exported generator's path."""

    def __init__(self, config: Config, *, run_dir: str | Path | None = None, resume: str | None = None,
                 overwrite: bool = False) -> None:
        self.config = cfg = config
        self.run_dir = Path(run_dir) if run_dir else default_run_dir(cfg)
        t = cfg.train
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        try:
            self.device = resolve_device(t.device, local_rank)
            dtype = resolve_precision(t.precision, self.device)
        except SrganError as exc:
            raise SrganError(f"train: {exc}") from exc
        ckpt.prepare_run_dir(self.run_dir, resume=resume, overwrite=overwrite,
                             main=int(os.environ.get("RANK", "0")) == 0)
        self.dist = ddp.setup(cfg.distributed.backend, self.device)
        if t.threads > 0:
            torch.set_num_threads(t.threads)
        if t.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        else:
            torch.backends.cudnn.benchmark = True
        self._seed(t.seed)
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        self.autocast_dtype = None if dtype == torch.float32 else dtype
        self.scale = generator_config(cfg).scale
        self.rec = cfg.recursive

        # networks
        gen = build(generator_config(cfg))
        # `--resume auto` resolved once: the newest checkpoint that loads, or None (a new run)
        newest = ckpt.latest_checkpoint(self.run_dir) if resume == "auto" else None
        continuing = bool(resume) and (resume != "auto" or newest is not None)
        if resume == "auto" and newest is None and self.dist.main:
            log.info("no checkpoint in %s: starting a new run", self.run_dir)
        if cfg.model.init and not continuing:  # a resumed run's weights come from its checkpoint
            self._load_generator_weights(gen, cfg.model.init, "model.init")
        gen = gen.to(self.device, memory_format=self.memory_format)
        self.ema = EMA(gen, t.ema) if t.ema > 0 else None
        self.stage1: nn.Module | None = None
        if self.rec.enabled and self.rec.stage1_weights:
            stage1 = build(generator_config(cfg))
            self._load_generator_weights(stage1, self.rec.stage1_weights, "recursive.stage1_weights")
            self.stage1 = stage1.to(self.device, memory_format=self.memory_format).eval().requires_grad_(False)
        disc = build_discriminator_from_config(cfg) if cfg.gan else None
        if disc is not None:
            disc = disc.to(self.device, memory_format=self.memory_format)
        if cfg.distributed.sync_bn and self.dist.enabled:
            if self.device.type != "cuda":
                raise SrganError("distributed.sync_bn: PyTorch's SyncBatchNorm runs on CUDA only; set it false on CPU")
            gen = nn.SyncBatchNorm.convert_sync_batchnorm(gen)
            disc = nn.SyncBatchNorm.convert_sync_batchnorm(disc) if disc is not None else None
        self.generator = self._wrap(gen)
        self.discriminator = self._wrap(disc) if disc is not None else None

        # objectives and optimisers
        self.g_objective = GeneratorObjective(cfg).to(self.device)
        self.d_objective = DiscriminatorObjective(cfg) if disc is not None else None
        betas = (cfg.optim.betas[0], cfg.optim.betas[1])
        # linear learning-rate warm-up from `warmup_start`: the run's start with optim.warmup, or a compact
        # resume (runfiles/resume_state.py), whose Adam moments restart from zero
        self.warmup_start: int | None = 0 if cfg.optim.warmup else None
        self.warmup_length = cfg.optim.warmup or resume_state.WARMUP
        self.opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.optim.lr_g, betas=betas,
                                      weight_decay=cfg.optim.weight_decay)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, self._schedule(cfg.optim.lr_g))
        self.opt_d = self.sched_d = None
        if disc is not None:
            self.opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.optim.lr_d, betas=betas,
                                          weight_decay=cfg.optim.weight_decay)
            self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, self._schedule(cfg.optim.lr_d))
        self.scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

        self.iteration = 0
        self.last_checkpoint: Path | None = None
        if continuing:
            self._resume(resume, newest)
        self.data = TrainPatches(cfg.data.folders, hr_crop=cfg.data.hr_crop, scale=data_scale(cfg), seed=t.seed,
                                 flips=cfg.data.flips, rotations=cfg.data.rotations,
                                 jitter=dataclasses.asdict(cfg.data.color_jitter),
                                 small_images=cfg.data.small_images, cache_bytes=cfg.data.cache_mb << 20,
                                 quantize_lr=cfg.data.quantize_lr, warn=self.dist.main)
        self.validator = self.niqe_probe = None
        if cfg.validation.folder and self.dist.main:
            from srgan.training.validation import NiqeProbe, Validator

            self.validator = Validator(cfg.validation.folder, data_scale(cfg), cfg.validation.max_images)
            if cfg.validation.niqe_folder:
                self.niqe_probe = NiqeProbe(cfg.validation.niqe_folder, data_scale(cfg), cfg.validation.niqe_model)
        self.last_psnr: float | None = None

    # ------------------------------------------------------------ setup helpers
    def _seed(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _schedule(self, base_lr: float) -> Callable[[int], float]:
        planned = _lr_lambda(self.config, base_lr)
        return lambda it: planned(it) * resume_state.warmup_factor(it, self.warmup_start, self.warmup_length)

    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.dist.enabled:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def _load_generator_weights(self, model: Generator, path: str, key: str) -> None:
        try:
            source = load_model(path)
        except SrganError as exc:
            raise SrganError(f"{key}: {exc}") from exc
        if not self.config.model.init_strict and source.config != model.config:
            self._load_matching(model, source.state_dict(), path, key)
            return
        if source.config != model.config and source.config.folds_into(model.config):
            from srgan.models.fuse import fold_batch_norms

            fold_batch_norms(source.eval())  # exact: a BN model continues as the same no-BN network
        elif source.config != model.config:
            raise SrganError(f"{key}: {path} holds a different generator ({source.config}) than the config "
                             f"({model.config})")
        model.load_state_dict(source.state_dict())

    @staticmethod
    def _load_matching(model: nn.Module, source: dict[str, torch.Tensor], path: str, key: str) -> None:
        """Transfer every tensor whose name and shape match (an x4 trunk into an x2 network, as EDSR
        initialised x4 from x2); the rest keeps its fresh initialisation."""
        target = model.state_dict()
        matched = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
        if not matched:
            raise SrganError(f"{key}: no tensor of {path} fits this generator")
        model.load_state_dict(matched, strict=False)
        fresh = sorted(set(target) - set(matched))
        log.info("%s: %d of %d tensors from %s; fresh: %s", key, len(matched), len(target), path,
                 ", ".join(fresh) or "none")

    # ------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "iteration": self.iteration,
            "config": self.config.to_dict(),
            "generator": _unwrap(self.generator).state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": ckpt.rng_state(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.model.state_dict()
        if self.discriminator is not None:
            state["discriminator"] = _unwrap(self.discriminator).state_dict()
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
            generator=_unwrap(self.generator).state_dict(),
            ema=self.ema.model.state_dict() if self.ema is not None else None,
            discriminator=_unwrap(self.discriminator).state_dict() if self.discriminator is not None else None)

    def save_checkpoint(self) -> None:
        ddp.barrier(self.dist)
        if self.dist.main:
            gen = _unwrap(self.generator)
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
            _unwrap(self.generator).load_state_dict(state["generator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.sched_g.load_state_dict(state["sched_g"])
            self.scaler.load_state_dict(state["scaler"])
            if self.ema is not None:
                self.ema.model.load_state_dict(state["ema"] if "ema" in state else state["generator"])
            if self.discriminator is not None and "discriminator" in state:
                _unwrap(self.discriminator).load_state_dict(state["discriminator"])
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
            _unwrap(self.generator).load_state_dict(state["generator"])
            if self.ema is not None:
                self.ema.model.load_state_dict(state["ema"] or state["generator"])
            if self.discriminator is not None and state["discriminator"] is not None:
                _unwrap(self.discriminator).load_state_dict(state["discriminator"])
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

    def _frozen_copy_with(self, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        model = copy.deepcopy(_unwrap(self.generator))
        if state is not None:
            model.load_state_dict(state)
        return model.eval().requires_grad_(False)

    # ------------------------------------------------------------ one iteration
    def _autocast(self) -> Any:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _in_stage1(self, iteration: int) -> bool:
        return self.rec.enabled and self.stage1 is None and iteration < self.rec.stage1_iterations

    def _pair(self, lr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Network input and target for this iteration (the rGAN stages change both)."""
        if not self.rec.enabled:
            return lr, hr
        if self.stage1 is None:  # stage 1: LR (x4 down) -> HR x2 down
            return lr, round_to_8bit(imresize(hr, 0.5))
        with torch.no_grad(), self._autocast():
            mid = self.stage1(lr).float()
        return round_to_8bit(mid).contiguous(memory_format=self.memory_format), hr

    def train_step(self, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        cfg = self.config
        lr = lr.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        hr = hr.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        x, target = self._pair(lr, hr)
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
                    real_logits = disc(target)
                    fake_logits = disc(sr.detach())
                d_loss, d_stats = self.d_objective(real_logits, fake_logits)
                stats.update(d_stats)
                self._check_finite(d_loss, "discriminator")
                self.opt_d.zero_grad(set_to_none=True)
                self.scaler.scale(d_loss).backward()
                self._clip(self.opt_d, disc)
                self.scaler.step(self.opt_d)
            disc.requires_grad_(False)
            plain = _unwrap(disc)  # no DDP hooks: D is not updated by the generator step
            with self._autocast():
                fake_logits = plain(sr)
                real_logits = plain(target).detach() if self.g_objective.needs_real_logits else None
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
            self.ema.update(_unwrap(self.generator), self.iteration)
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

    # ------------------------------------------------------------ validation and export
    def _eval_model(self) -> nn.Module:
        return self.ema.model if self.ema is not None else _unwrap(self.generator)

    def _upscale_fn(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
        model = self._eval_model()
        if self.rec.enabled and self.stage1 is not None:
            stage1 = self.stage1
            return (lambda x: model(round_to_8bit(stage1(x).float()))), "rGAN chain stage1 -> stage2, x4"
        if self.rec.enabled:
            return (lambda x: model(round_to_8bit(model(x).float()))), "rGAN stage 1 applied twice, x4"
        return model, f"x{self.scale}"

    def validate(self, monitor: Monitor) -> float | None:
        if self.validator is None:
            return None
        model = self._eval_model()
        was_training = model.training
        model.eval()
        upscale, label = self._upscale_fn()
        rows, samples = self.validator.run(upscale, self.device)
        niqe = (self.niqe_probe.name, self.niqe_probe.run(upscale, self.device)) if self.niqe_probe else None
        model.train(was_training)
        monitor.validation(self.iteration, rows, label, niqe)
        if samples:
            from srgan.training.validation import sample_grid

            monitor.images(self.iteration, "val/lr_sr_hr", sample_grid(samples, self.validator.scale))
        self.last_psnr = sum(r[1] for r in rows) / len(rows)
        return self.last_psnr

    def export(self) -> Path:
        """The final generator (EMA weights when enabled) as `.safetensors` that `srgan.load_model` reads."""
        cfg = self.config
        meta: dict[str, Any] = {"preset": cfg.model.preset, "iterations": self.iteration,
                                "training_config": cfg.to_dict(), "ema": cfg.train.ema > 0,
                                "val_psnr_y": self.last_psnr, "val_folder": cfg.validation.folder}
        model = self._eval_model()
        if self.rec.enabled and self.stage1 is not None:
            stage1_path = save_model(self.stage1, self.run_dir / "stage1.safetensors", overwrite=True,
                                     preset=cfg.model.preset, role="rGAN stage 1 (x2)")
            meta["recursive"] = {"stage1": stage1_path.name, "chain_scale": self.scale * self.scale}
        path = save_model(model, self.run_dir / "generator.safetensors", overwrite=True, **meta)  # this run's
        log.info("exported %s", path)
        return path

    # ------------------------------------------------------------ the loop
    def fit(self) -> Path | None:
        cfg, t = self.config, self.config.train
        monitor = Monitor(self.run_dir, start=self.iteration, total=t.iterations, log_every=t.log_every,
                          tensorboard=t.tensorboard, enabled=self.dist.main)
        if self.dist.main:
            log.info("run %s: %s, %s, %d images, %d -> %d iterations on %s x%d process(es) in %s", self.run_dir,
                     cfg.model.preset, "GAN (" + cfg.discriminator["type"] + ")" if cfg.gan else "pixel pre-training",
                     len(self.data.images), self.iteration, t.iterations, self.device, self.dist.world_size,
                     NAMES[self.autocast_dtype or torch.float32])
        try:
            if monitor.bar is not None and not monitor.bar.disable:
                from tqdm.contrib.logging import logging_redirect_tqdm

                with logging_redirect_tqdm():  # log lines above the bar instead of through it
                    self._loop(monitor)
            else:
                self._loop(monitor)
            if self.iteration % t.checkpoint_every:
                self.save_checkpoint()
            if self.dist.main:
                if self.validator is not None and self.iteration % cfg.validation.every:
                    self.validate(monitor)
                return self.export()
            return None
        finally:
            monitor.close()

    def _loop(self, monitor: Monitor) -> None:
        cfg, t = self.config, self.config.train
        stop = t.iterations
        while self.iteration < stop:
            if self.rec.enabled and self.stage1 is None and self.iteration >= self.rec.stage1_iterations:
                # stage 1 just ended (or a checkpoint taken exactly at its end was resumed)
                self.stage1 = self._frozen_copy_with()
                if self.dist.main:
                    log.info("rGAN: stage 1 done at iteration %d; stage 2 trains on its outputs", self.iteration)
            # rGAN in-run stage 1 ends at stage1_iterations: the loader is rebuilt from there
            segment_end = self.rec.stage1_iterations if self._in_stage1(self.iteration) else stop
            pin = self.device.type == "cuda"
            loader = make_loader(self.data, batch_size=cfg.data.batch_size, start=self.iteration, stop=segment_end,
                                 rank=self.dist.rank, world_size=self.dist.world_size, workers=cfg.data.workers,
                                 pin_memory=pin)
            for lr, hr in loader:
                stats = self.train_step(lr, hr)
                self.iteration += 1
                monitor.step(self.iteration, stats)
                if self.iteration % t.checkpoint_every == 0:
                    self.save_checkpoint()
                if self.dist.main and self.validator is not None and self.iteration % cfg.validation.every == 0:
                    self.validate(monitor)


def train(config: Config, *, run_dir: str | Path | None = None, resume: str | None = None,
          overwrite: bool = False) -> Path | None:
    """Train from a config; returns the exported generator on rank 0 (None on other ranks). A run
    folder holding a run is refused unless `resume` continues it or `overwrite` deletes it."""
    trainer = Trainer(config, run_dir=run_dir, resume=resume, overwrite=overwrite)
    try:
        start = time.perf_counter()
        path = trainer.fit()
        if trainer.dist.main:
            log.info("done in %.1f s", time.perf_counter() - start)
        return path
    finally:
        ddp.cleanup(trainer.dist)
