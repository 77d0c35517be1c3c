"""Models made ready to run (`Runner`), and a thread-safe cache of them.

`build_runner` turns what a user names (a loaded generator, a weights file, shipped weights, an
`.onnx` file) into a `Runner` on a device and precision. `ModelCache` keeps the last few, keyed by
the file's identity (path, size, mtime) and the run settings, so a CLI batch or a web server loads a
model once. One lock guards the table and the loading, so threads asking for the same model at
once load it once; the server owns one cache, `srgan.api` a default one.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.hardware import resolve_device, resolve_precision
from srgan.inference.backends import build_on, register_backend, resolve_backend
from srgan.inference.engine import prepare_model
from srgan.inference.tiling import FEATHER_PAD, tiled_forward
from srgan.models.interpolation import blended_model
from srgan.models.weights import DEFAULT_MODEL


@dataclass
class Runner:
    """A model ready to run: the callable `tiled_forward` drives, its scale, device and dtype."""

    model: Callable[[torch.Tensor], torch.Tensor]
    scale: int
    device: torch.device
    dtype: torch.dtype
    in_channels: int = 3
    name: str = ""

    @classmethod
    def wrap(cls, model: Any, device: torch.device, dtype: torch.dtype, name: str = "") -> Runner:
        """A runner for a callable that says its scale and channels (`.config` or `.scale`)."""
        return cls(model, _scale_of(model), device, dtype, _in_channels(model), name)

    def __call__(self, image: torch.Tensor, *, tile: int | str | None, tile_pad: int | None,
                 progress: bool = False) -> torch.Tensor:
        """(C, H, W) CPU float in [0, 1] -> (C, sH, sW) float32, unclamped. A fixed-shape exported
        model runs in windows of its input size (`ExportedModel.run_in_windows`)."""
        if getattr(self.model, "fixed_size", None) is not None:
            context = self.model.context()
            pad = tile_pad if tile_pad is not None else FEATHER_PAD if context is None else context
            return self.model.run_in_windows(image[None].float(), pad)[0]
        return tiled_forward(self.model, image[None], scale=self.scale, tile=tile, tile_pad=tile_pad,
                             device=self.device, dtype=self.dtype, progress=progress)[0]


def build_runner(model: Any = None, *, device: str | torch.device = "auto", precision: str = "auto",
                 backend: str = "auto") -> Runner:
    """A `Runner` for a `Generator`, an exported-model runner, a weights file, an `.onnx` file or a
    shipped name, on a registered backend (`srgan.inference.backends`). Backend `auto`: OpenVINO for
    `.onnx` files where it is installed (it runs int8 models fast, see `openvino_backend`), else ONNX
    Runtime; torch for everything else."""
    if isinstance(model, Runner):
        return model
    model = DEFAULT_MODEL if model is None else model
    return build_on(resolve_backend(backend, model), model, device=device, precision=precision)


@register_backend("torch")
def torch_runner(model: Any, *, device: str | torch.device, precision: str) -> Runner:
    """A generator (or weights file, or shipped name) made ready by `engine.prepare_model`."""
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    if isinstance(model, (str, os.PathLike)):
        from srgan.models.weights import load_model

        name, model = str(model), load_model(model)
    elif isinstance(model, nn.Module):
        name = type(model).__name__
    else:
        raise SrganError(f"model must be a generator, a weights file or a name, got {type(model).__name__}")
    return Runner(prepare_model(model, dev, dtype), _scale_of(model), dev, dtype, _in_channels(model), name)


class ModelCache:
    """The last `size` runners built from names or files (models passed as objects are not cached)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._runners: OrderedDict[tuple, Runner] = OrderedDict()
        self._lock = threading.Lock()

    def runner(self, model: Any = None, *, device: str | torch.device = "auto", precision: str = "auto",
               backend: str = "auto", strength: float | None = None) -> Runner:
        """The runner of `model` (`strength`: a shipped GAN model blended with its PSNR partner,
        `srgan.models.interpolation`), built once per model file, device, precision, backend and strength."""
        if not isinstance(model, (str, os.PathLike, type(None))):
            return build_runner(model, device=device, precision=precision, backend=backend)
        model = DEFAULT_MODEL if model is None else model
        key = (*_file_key(model), str(device), str(precision), backend, strength)
        with self._lock:
            if key in self._runners:
                self._runners.move_to_end(key)
                return self._runners[key]
            source = model if strength is None else blended_model(str(model), strength)
            runner = build_runner(source, device=device, precision=precision, backend=backend)
            self._runners[key] = runner
            while len(self._runners) > self.size:
                self._runners.popitem(last=False)
            return runner

    def clear(self) -> None:
        with self._lock:
            self._runners.clear()

    def __len__(self) -> int:
        return len(self._runners)


def _scale_of(model: Any) -> int:
    config = getattr(model, "config", None)
    scale = getattr(config, "scale", None) or getattr(model, "scale", None)
    if not isinstance(scale, int):
        raise SrganError("cannot tell the model's scale: give it a `.config.scale` or `.scale`")
    return scale


def _in_channels(model: Any) -> int:
    return int(getattr(getattr(model, "config", None), "in_channels", 3))


def _file_key(model: str | os.PathLike) -> tuple:
    path = Path(model)
    if path.is_file():
        stat = path.stat()
        return str(path.resolve()), stat.st_mtime_ns, stat.st_size
    return (str(model),)
