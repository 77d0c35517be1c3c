"""The MIT rGAN stages of a run (`recursive:` in the config): stage 1 learns LR (x4 down) -> HR x2 down;
when it ends, a frozen copy of the generator makes stage 2's inputs; the x4 result is the chain."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import torch
from torch import nn

from srgan.imaging.imresize import imresize
from srgan.imaging.quantize import round_to_8bit
from srgan.training.setup import unwrap

log = logging.getLogger("srgan.training")


class RecursiveStages:
    """The rGAN part of `Trainer` (a plain run passes through: `_pair` returns its input)."""

    def _end_stage1_if_due(self) -> None:
        if self.rec.enabled and self.stage1 is None and self.iteration >= self.rec.stage1_iterations:
            # stage 1 just ended (or a checkpoint taken exactly at its end was resumed)
            self.stage1 = self._frozen_copy_with()
            if self.dist.main:
                log.info("rGAN: stage 1 done at iteration %d; stage 2 trains on its outputs", self.iteration)

    def _frozen_copy_with(self, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        model = copy.deepcopy(unwrap(self.generator))
        if state is not None:
            model.load_state_dict(state)
        return model.eval().requires_grad_(False)

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

    def _upscale_fn(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
        model = self._eval_model()
        if self.rec.enabled and self.stage1 is not None:
            stage1 = self.stage1
            return (lambda x: model(round_to_8bit(stage1(x).float()))), "rGAN chain stage1 -> stage2, x4"
        if self.rec.enabled:
            return (lambda x: model(round_to_8bit(model(x).float()))), "rGAN stage 1 applied twice, x4"
        return model, f"x{self.scale}"
