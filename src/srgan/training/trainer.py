"""The training loop for every SRGAN variant: pixel-loss pre-training (no discriminator) and
adversarial training, one config away from each other.

Reproducible by construction: data randomness is a function of (seed, iteration) (see
srgan.data.dataset), and a checkpoint holds everything else that changes (weights, EMA, optimiser
and scheduler moments, AMP scaler, RNG states), so `--resume auto` continues the exact run.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srgan.data.dataset import make_loader
from srgan.hardware import NAMES
from srgan.models.weights import save_model
from srgan.training import distributed as ddp
from srgan.training.checkpointing import Checkpointing
from srgan.training.config import Config, generator_config
from srgan.training.monitor import Monitor
from srgan.training.recursive import RecursiveStages
from srgan.training.setup import EMA, NonFiniteLoss, TrainerSetup, unwrap
from srgan.training.setup import lr_lambda as _lr_lambda
from srgan.training.step import TrainStep

__all__ = ["EMA", "NonFiniteLoss", "Trainer", "_lr_lambda", "default_run_dir", "train"]

log = logging.getLogger("srgan.training")


def default_run_dir(config: Config) -> Path:
    return Path(config.train.out_dir) if config.train.out_dir else Path("runs") / config.name


class Trainer(TrainerSetup, Checkpointing, RecursiveStages, TrainStep):
    """`Trainer(config).fit()` trains and returns the exported generator's path. Its parts are read
    separately: building from the config (`setup.py`), one iteration (`step.py`), the rGAN stages
    (`recursive.py`) and checkpoints (`checkpointing.py`); the loop, validation and export are here."""

    def __init__(self, config: Config, *, run_dir: str | Path | None = None, resume: str | None = None,
                 overwrite: bool = False) -> None:
        self.config = config
        self.run_dir = Path(run_dir) if run_dir else default_run_dir(config)
        dtype = self._setup_runtime(resume, overwrite)
        self.scale = generator_config(config).scale
        self.rec = config.recursive
        continuing, newest = self._build_networks(resume)
        self._build_optimisers(dtype)
        self.iteration = 0
        self.last_checkpoint: Path | None = None
        if continuing:
            self._resume(resume, newest)
        self._build_data()

    # ------------------------------------------------------------ validation and export
    def _eval_model(self) -> nn.Module:
        return self.ema.model if self.ema is not None else unwrap(self.generator)

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
            self._end_stage1_if_due()
            # rGAN in-run stage 1 ends at stage1_iterations: the loader is rebuilt from there
            segment_end = self.rec.stage1_iterations if self._in_stage1(self.iteration) else stop
            pin = self.device.type == "cuda"
            loader = make_loader(self.data, batch_size=cfg.data.batch_size, start=self.iteration, stop=segment_end,
                                 rank=self.dist.rank, world_size=self.dist.world_size, workers=cfg.data.workers,
                                 pin_memory=pin)
            for batch in loader:
                stats = self.train_step(*batch)
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
