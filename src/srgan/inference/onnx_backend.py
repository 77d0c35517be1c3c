"""ONNX export with dynamic height and width, and an ONNX Runtime runner that plugs into
`tiled_forward` like a torch model (`--backend onnxruntime`).

The exported graph is the one the torch path runs: batch norm folded and the architecture's exact
load-time rewrites applied (`engine.prepare_model`: SRResNet's 9x9 tail conv moved before the last
PixelShuffle), so ONNX Runtime and OpenVINO get the fast graph too. Its metadata carries the
generator's architecture, config, scale and context (receptive field), so a runner tiles exactly
without the weights file or the architecture's code.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srgan.errors import SrganError, one_line
from srgan.files import atomic_write
from srgan.inference.backends import register_backend
from srgan.inference.cache import Runner
from srgan.inference.onnx_check import (
    ARCHITECTURE_KEY,
    CONFIG_KEY,
    CONTEXT_KEY,
    GRID_KEY,
    PRECISION_KEY,
    CheckedGraph,
    OnnxMetadata,
    parse_metadata,
)
from srgan.models.generator import Generator
from srgan.models.weights import load_model

__all__ = ["PRECISION_KEY", "ExportedModel", "OnnxRunner", "export_onnx", "exported_runner"]

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18


def export_onnx(model: Generator, path: str | os.PathLike, *, dynamic: bool = True,
                opset: int = DEFAULT_OPSET, sample_size: tuple[int, int] = (64, 64), overwrite: bool = False) -> Path:
    """Write `model` (a registered `Generator`) as ONNX with input `lr` and output `sr`, both (N, C, H, W);
    with `dynamic` the batch, height and width are free. Written atomically; an existing file is
    replaced only with `overwrite`.

    The dynamo exporter (`torch.export`), as the TorchScript one is deprecated: measured on the
    2-core CPU for srresnet_x4 it keeps dynamic height and width (the output is declared `4*height`)
    and the same outputs (max |diff| 2e-6 against torch on 37x29, 16x51 and 256x256 inputs), and
    takes about 6 s to export against 3 s for the TorchScript exporter."""
    import onnx

    from srgan.inference.engine import prepare_model

    if Path(path).suffix.lower() != ".onnx":
        raise SrganError(f"ONNX files end in .onnx, got {path}")
    if opset < 18:
        raise SrganError(f"opset must be 18 or newer (the dynamo exporter's oldest), got {opset}")
    metadata = {ARCHITECTURE_KEY: model.architecture, CONFIG_KEY: json.dumps(model.config.to_dict()),
                "scale": str(model.scale), CONTEXT_KEY: json.dumps(model.context()),
                GRID_KEY: str(model.input_multiple())}
    prepared = prepare_model(model, "cpu", "fp32").to(memory_format=torch.contiguous_format)
    sample = torch.rand(1, model.in_channels, *sample_size)
    dynamic_shapes = None
    if dynamic:
        dim = torch.export.Dim
        dynamic_shapes = ({0: dim("batch", min=1, max=4096), 2: dim("height", min=1, max=1 << 16),
                           3: dim("width", min=1, max=1 << 16)},)

    def write(tmp: str) -> None:
        with _quiet("torch.onnx", "onnxscript", "onnx_ir"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "torchvision is not installed", progress and pass reports
            program = torch.onnx.export(prepared, (sample,), input_names=["lr"], output_names=["sr"],
                                        dynamic_shapes=dynamic_shapes, opset_version=opset, dynamo=True,
                                        verbose=False)
        graph = program.model_proto
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, tmp)

    return atomic_write(path, write, overwrite=overwrite)


class ExportedModel:
    """What srgan's metadata tells about an exported model, shared by the ONNX Runtime and OpenVINO
    runners: the interface of the generator (`scale`, `in_channels`, `context()`, and
    `architecture` + `config` where the architecture is registered here), so `tiled_forward`
    treats the runner like a torch model. Each input shape is checked against the graph before it
    runs (`onnx_check.CheckedGraph`); a fixed-shape model runs in windows of its size
    (`run_in_windows`); a runtime's failure is one line."""

    exported = True  # what `backends.is_exported` asks
    scale: int | None
    in_channels: int | None
    architecture: str | None
    config: Any
    precision: str
    graph: CheckedGraph | None = None
    name: str = "ONNX model"

    def _read_metadata(self, meta: OnnxMetadata, in_channels: Any) -> None:
        self.in_channels = in_channels if isinstance(in_channels, int) and in_channels > 0 else None
        self.scale, self.precision, self.architecture = meta.scale, meta.precision, meta.architecture
        self.config, self._grid, self._context = meta.config, meta.grid, meta.context

    def input_multiple(self) -> int:
        """The pixel grid tiles must follow (`Generator.input_multiple`); 1 for files that do not say."""
        return self._grid

    @property
    def out_channels(self) -> int | None:
        return getattr(self.config, "out_channels", None)

    def context(self) -> int | None:
        """The exported generator's receptive field in LR pixels; None when the file does not say
        (not exported by srgan) or it is unbounded, and tiles are blended."""
        return self._context

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """(height, width) of a fixed-shape model's input; None when it takes any size."""
        return self.graph.fixed_size if self.graph is not None else None

    def run_in_windows(self, image: torch.Tensor, context: int) -> torch.Tensor:
        """A fixed-shape model over a (1, C, H, W) image of any size: windows of its input size slide
        over the image, each keeping the part of its output at least `context` pixels from its
        cut edges, so the result is the whole-image result (exact where the image is at least the
        window; a smaller image is padded by repeating its edge, inexact only within `context`)."""
        (h0, w0), (height, width) = self.fixed_size, image.shape[-2:]
        if height < h0 or width < w0:
            padded = torch.nn.functional.pad(image, (0, max(0, w0 - width), 0, max(0, h0 - height)), mode="replicate")
            return self.run_in_windows(padded, context)[..., :height * self.scale, :width * self.scale]
        rows, cols = _windows(height, h0, context, self.name), _windows(width, w0, context, self.name)
        out = None
        for (y, top, bottom), (x, left, right) in itertools.product(rows, cols):
            result = self(image[..., y:y + h0, x:x + w0])
            if out is None:
                out = result.new_empty((1, result.shape[1], height * self.scale, width * self.scale))
            s = self.scale
            out[..., (y + top) * s:(y + bottom) * s, (x + left) * s:(x + right) * s] = \
                result[..., top * s:bottom * s, left * s:right * s]
        return out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.graph is not None:
            self.graph.check_input(tuple(x.shape))
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        try:
            result = self._run(array)
        except Exception as exc:  # the runtimes raise their own types (RuntimeError, Fail, ...)
            raise SrganError(f"{self.name}: the model failed on a {height}x{width} input "
                             f"({one_line(exc)[:300]})") from exc
        return torch.from_numpy(result)

    def _run(self, array: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _windows(length: int, window: int, context: int, name: str) -> list[tuple[int, int, int]]:
    """(start, first kept, end kept) of windows of `window` pixels covering [0, length) (length >=
    window) whose kept parts, `context` from each cut edge, tile it."""
    step = window - 2 * context
    if step < 1 and length > window:
        raise SrganError(f"{name}: a fixed-shape model of side {window} is too small for its {context} pixels "
                         "of context: export it again with dynamic shape (`srgan export --onnx FILE`)")
    spans, start = [], 0
    while True:
        start = min(start, length - window)
        first = 0 if start == 0 else (spans[-1][0] + spans[-1][2]) - start
        if start + window >= length:
            spans.append((start, first, window))
            return spans
        spans.append((start, first, window - context))
        start += step


class OnnxRunner(ExportedModel):
    """A tensor -> tensor callable over an ONNX Runtime session (CPU, or its CUDA provider if
    installed). Thread-safe: ONNX Runtime sessions may run concurrently."""

    def __init__(self, path_or_session: str | os.PathLike | Any, *, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise SrganError("the onnxruntime backend needs `pip install srgan[onnx]`") from exc
        if isinstance(path_or_session, (str, os.PathLike)):
            self.graph = CheckedGraph(path_or_session)
            self.name = str(self.graph.path)
            self.graph.check_input(self.graph.probe_shape())
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = threads or torch.get_num_threads()
            try:
                session = ort.InferenceSession(self.graph.proto.SerializeToString(), options,
                                               providers=_providers(ort))
            except Exception as exc:
                raise SrganError(f"{self.name}: not a usable ONNX model ({one_line(exc)[:300]})") from exc
        else:
            session = path_or_session
        self.session = session
        self.input_name = session.get_inputs()[0].name
        meta = session.get_modelmeta().custom_metadata_map
        self._read_metadata(parse_metadata(meta, self.name), session.get_inputs()[0].shape[1])

    def _run(self, array: np.ndarray) -> np.ndarray:
        (result,) = self.session.run(None, {self.input_name: array})
        return result


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Only errors from these libraries' loggers while the block runs."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _providers(ort: Any) -> list[str]:
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


@register_backend("onnxruntime", takes_onnx=True, auto=1)
def onnxruntime_runner(model: Any, *, device: str | torch.device, precision: str) -> Runner:
    """ONNX Runtime: fp32, on the CPU or its CUDA provider if installed."""
    if precision not in ("auto", "fp32"):
        raise SrganError(f"the onnxruntime backend runs fp32 models; got precision {precision!r}")
    return exported_runner(model, OnnxRunner)


def exported_runner(model: Any, load: Callable[[str | os.PathLike], ExportedModel]) -> Runner:
    """A `Runner` over an exported model made by `load` (path -> runner). An `.onnx` file is used as is;
    a generator or weights file is exported to a temporary `.onnx`, which the runtime has read once it
    exists, so the file is removed at once. Tiles go in as float32 whatever the runtime computes in
    (bf16 would round the 8-bit input)."""
    if isinstance(model, ExportedModel):
        session, name = model, type(model).__name__
    elif isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".onnx"):
        session, name = load(model), str(model)
        if session.scale is None:
            raise SrganError(f"{model}: ONNX file without srgan metadata (export it with `srgan export`)")
    else:
        if isinstance(model, torch.nn.Module):
            generator, name = model, type(model).__name__
        else:
            generator, name = load_model(model), str(model)
        with tempfile.TemporaryDirectory(prefix="srgan-onnx-") as tmp:
            session = load(export_onnx(generator, Path(tmp) / "model.onnx"))
    return Runner.wrap(session, torch.device("cpu"), torch.float32, name)
