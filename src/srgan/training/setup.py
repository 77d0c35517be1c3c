"""Building a run from its config: the runtime (device, precision, threads, determinism, seeds), the
networks (generator with its starting weights, EMA, rGAN stage 1, discriminator, DDP wrapping), the
objectives and optimisers, and the data. `Trainer.__init__` calls these in this order, which is also
the order the seeded random generators are drawn from."""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srgan.data.dataset import TrainPatches
from srgan.errors import SrganError
from srgan.hardware import resolve_device, resolve_precision
from srgan.models.generator import Generator
from srgan.models.registry import build
from srgan.models.weights import load_model
from srgan.runfiles import checkpoint as ckpt
from srgan.runfiles import resume_state
from srgan.training import distributed as ddp
from srgan.training.config import Config, data_scale, generator_config
from srgan.training.objective import (
    DiscriminatorObjective,
    GeneratorObjective,
    build_discriminator_from_config,
)

log = logging.getLogger("srgan.training")


class NonFiniteLoss(SrganError):
    """The loss became NaN or infinite; the run stops and the last good checkpoint stays."""


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (or the network itself)."""
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


def lr_lambda(cfg: Config, base_lr: float) -> Callable[[int], float]:
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


class TrainerSetup:
    """The parts of `Trainer.__init__`, and the helpers they use."""

    def _setup_runtime(self, resume: str | None, overwrite: bool) -> torch.dtype:
        """Device, precision, run folder, process group, threads, determinism and seeds; the compute dtype."""
        t = self.config.train
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        try:
            self.device = resolve_device(t.device, local_rank)
            dtype = resolve_precision(t.precision, self.device)
        except SrganError as exc:
            raise SrganError(f"train: {exc}") from exc
        ckpt.prepare_run_dir(self.run_dir, resume=resume, overwrite=overwrite,
                             main=int(os.environ.get("RANK", "0")) == 0)
        self.dist = ddp.setup(self.config.distributed.backend, self.device)
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
        return dtype

    def _build_networks(self, resume: str | None) -> tuple[bool, tuple[Path, dict] | None]:
        """Generator (with `model.init` unless the run continues), EMA, rGAN stage 1 and discriminator,
        on the device and wrapped for DDP; whether the run continues, and the checkpoint `auto` found."""
        cfg = self.config
        gen = build(generator_config(cfg))
        # `--resume auto` resolved once: the newest checkpoint that loads, or None (a new run)
        newest = ckpt.latest_checkpoint(self.run_dir) if resume == "auto" else None
        continuing = bool(resume) and (resume != "auto" or newest is not None)
        if resume == "auto" and newest is None and self.dist.main:
            log.info("no checkpoint in %s: starting a new run", self.run_dir)
        if cfg.model.init and not continuing:  # a resumed run's weights come from its checkpoint
            self._load_generator_weights(gen, cfg.model.init, "model.init")
        gen = gen.to(self.device, memory_format=self.memory_format)
        self.ema = EMA(gen, cfg.train.ema) if cfg.train.ema > 0 else None
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
        return continuing, newest

    def _build_optimisers(self, dtype: torch.dtype) -> None:
        """Objectives, Adam and the learning-rate schedules of both networks, and the AMP scaler."""
        cfg = self.config
        gen = unwrap(self.generator)
        disc = unwrap(self.discriminator) if self.discriminator is not None else None
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

    def _build_data(self) -> None:
        """The training patches and, on the main rank, the validation (and NIQE) probes."""
        cfg, t = self.config, self.config.train
        self.data = TrainPatches(cfg.data.folders, hr_crop=cfg.data.hr_crop, scale=data_scale(cfg), seed=t.seed,
                                 flips=cfg.data.flips, rotations=cfg.data.rotations,
                                 jitter=dataclasses.asdict(cfg.data.color_jitter),
                                 small_images=cfg.data.small_images, cache_bytes=cfg.data.cache_mb << 20,
                                 quantize_lr=cfg.data.quantize_lr, degradation=self._degradation(),
                                 sharpen_hr=cfg.data.sharpen_hr, warn=self.dist.main)
        self.validator = self.niqe_probe = None
        if cfg.validation.folder and self.dist.main:
            from srgan.training.validation import NiqeProbe, Validator

            v = cfg.validation
            self.validator = Validator(v.folder, data_scale(cfg), v.max_images, lr_folder=v.lr_folder, crop=v.crop,
                                       lpips=v.lpips, lpips_weights=v.lpips_weights)
            if v.niqe_folder:
                self.niqe_probe = NiqeProbe(v.niqe_folder, data_scale(cfg), v.niqe_model, given_lr=v.niqe_lr)
        self.last_psnr: float | None = None

    def _degradation(self) -> Any:
        spec = self.config.data.degradation
        if spec is None:
            return None
        from srgan.data.degradations import DEGRADATIONS

        options = {k: v for k, v in spec.items() if k != "type"}
        return DEGRADATIONS.get(spec["type"])(**options)  # checked by config.validate

    def _seed(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _schedule(self, base_lr: float) -> Callable[[int], float]:
        planned = lr_lambda(self.config, base_lr)
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
