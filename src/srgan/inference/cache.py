"""Models made ready to run (`Runner`), and a thread-safe cache of them.

`build_runner` turns what a user names (a loaded generator, a weights file, shipped weights, an
`.onnx` file) into a `Runner` on a device and precision. `ModelCache` keeps the last few, keyed by
the file's identity (path, size, mtime) and the run settings, so a CLI batch or a web server loads a
model once. One lock guards the table and the loading, so threads asking for the same model at
once load it once; the server owns one cache, `srgan.api` a default one.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
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
from srgan.inference.engine import prepare_model
from srgan.inference.options import BACKENDS
from srgan.inference.tiling import FEATHER_PAD, tiled_forward
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
    shipped name. Backend `auto`: OpenVINO for `.onnx` files where it is installed (it runs int8
    models fast, see `openvino_backend`), else ONNX Runtime; torch for everything else."""
    if isinstance(model, Runner):
        return model
    model = DEFAULT_MODEL if model is None else model
    backend = resolve_backend(backend, model)
    if backend != "torch":
        return _exported_runner(model, backend, device, precision)
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


def resolve_backend(backend: str, model: Any) -> str:
    """`auto` made concrete for `model`; an `.onnx` file cannot run on torch."""
    from srgan.inference.onnx_backend import ExportedModel

    exported = isinstance(model, ExportedModel) or (isinstance(model, (str, os.PathLike))
                                                    and str(model).lower().endswith(".onnx"))
    if backend == "auto":
        if not exported:
            return "torch"
        return "openvino" if importlib.util.find_spec("openvino") is not None else "onnxruntime"
    if backend not in BACKENDS:
        raise SrganError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "torch" and exported:
        raise SrganError(f"{model}: an ONNX model runs on the onnxruntime or openvino backend, not torch")
    return backend


class ModelCache:
    """The last `size` runners built from names or files (models passed as objects are not cached)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._runners: OrderedDict[tuple, Runner] = OrderedDict()
        self._lock = threading.Lock()

    def runner(self, model: Any = None, *, device: str | torch.device = "auto", precision: str = "auto",
               backend: str = "auto") -> Runner:
        if not isinstance(model, (str, os.PathLike, type(None))):
            return build_runner(model, device=device, precision=precision, backend=backend)
        model = DEFAULT_MODEL if model is None else model
        key = (*_file_key(model), str(device), str(precision), backend)
        with self._lock:
            if key in self._runners:
                self._runners.move_to_end(key)
                return self._runners[key]
            runner = build_runner(model, device=device, precision=precision, backend=backend)
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


def _exported_runner(model: Any, backend: str, device: str | torch.device, precision: str) -> Runner:
    """ONNX Runtime (fp32, on the CPU or its CUDA provider if installed) or OpenVINO (CPU, fp32 or
    bf16). An `.onnx` file is used as is; a generator or weights file is exported to a temporary
    `.onnx`, which the runtime has read once it exists, so the file is removed at once."""
    from srgan.inference.onnx_backend import ExportedModel, OnnxRunner, export_onnx

    cpu = torch.device("cpu")
    if backend == "onnxruntime":
        if precision not in ("auto", "fp32"):
            raise SrganError(f"the onnxruntime backend runs fp32 models; got precision {precision!r}")
        load = OnnxRunner
    else:
        from srgan.inference.openvino_backend import OpenVinoRunner

        if str(device) not in ("auto", "cpu"):
            raise SrganError(f"the openvino backend runs on the CPU; got device {device!r}")
        dtype = resolve_precision(precision, cpu)
        load = lambda path: OpenVinoRunner(path, dtype=dtype)
    if isinstance(model, ExportedModel):
        session, name = model, type(model).__name__
    elif isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".onnx"):
        session, name = load(model), str(model)
        if session.scale is None:
            raise SrganError(f"{model}: ONNX file without srgan metadata (export it with `srgan export`)")
    else:
        if isinstance(model, nn.Module):
            generator, name = model, type(model).__name__
        else:
            from srgan.models.weights import load_model

            generator, name = load_model(model), str(model)
        with tempfile.TemporaryDirectory(prefix="srgan-onnx-") as tmp:
            session = load(export_onnx(generator, Path(tmp) / "model.onnx"))
    # tiles go in as float32 whatever the runtime computes in (bf16 would round the 8-bit input)
    return Runner(session, session.scale or _scale_of(session), cpu, torch.float32, _in_channels(session), name)
