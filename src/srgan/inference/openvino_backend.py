"""An OpenVINO runner for exported models (`--backend openvino`), used by `tiled_forward` like a
torch model.

OpenVINO reads srgan's ONNX files directly (its metadata arrives as the model's `framework`
runtime info), so one exported file, fp32 or int8, runs on ONNX Runtime and on OpenVINO alike.
Why a second runtime: on the CPU it runs an int8 QDQ model with fused integer convolutions
(measured 3-4x its fp32 speed on the 2-core AVX-512 CPU), where ONNX Runtime cannot fuse the
convolutions whose outputs srgan keeps in float (`srgan.export.quantize` says why it does).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np
import torch

from srgan.errors import SrganError, one_line
from srgan.hardware import NAMES, resolve_precision
from srgan.inference.backends import register_backend
from srgan.inference.cache import Runner
from srgan.inference.onnx_backend import ExportedModel, exported_runner
from srgan.inference.onnx_check import CheckedGraph

_HINTS = {torch.float32: "f32", torch.bfloat16: "bf16"}


class OpenVinoRunner(ExportedModel):
    """A tensor -> tensor callable over an OpenVINO model compiled for the CPU.

    dtype: the precision OpenVINO computes the float layers in (`INFERENCE_PRECISION_HINT`), set
    explicitly because OpenVINO's own default is bf16 on CPUs that have it. Thread-safe: each call
    has its own infer request."""

    def __init__(self, path: str | os.PathLike, *, dtype: torch.dtype = torch.float32,
                 threads: int | None = None) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise SrganError("the openvino backend needs `pip install srgan[openvino]`") from exc
        if dtype not in _HINTS:
            raise SrganError(f"the openvino backend runs on the CPU in fp32 or bf16, not {NAMES.get(dtype, dtype)}")
        self.graph = CheckedGraph(path)  # parsed and checked before OpenVINO reads a byte of it
        self.name = str(self.graph.path)
        self.graph.check_input(self.graph.probe_shape())
        core = ov.Core()
        try:
            model = core.read_model(self.name)
            config = {"INFERENCE_PRECISION_HINT": _HINTS[dtype], "PERFORMANCE_HINT": "LATENCY",
                      "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise SrganError(f"{self.name}: not a usable model for OpenVINO ({one_line(exc)[:300]})") from exc
        self.dtype = dtype
        self._read_metadata(self.graph.metadata, self.graph.dims[1])

    def _run(self, array: np.ndarray) -> np.ndarray:
        request = self.compiled.create_infer_request()
        result = request.infer({0: array})
        return np.array(result[self.compiled.output(0)], copy=True)


@register_backend("openvino", takes_onnx=True, auto=0, available=lambda: importlib.util.find_spec("openvino") is not None)
def openvino_runner(model: Any, *, device: str | torch.device, precision: str) -> Runner:
    """OpenVINO on the CPU, fp32 or bf16."""
    if str(device) not in ("auto", "cpu"):
        raise SrganError(f"the openvino backend runs on the CPU; got device {device!r}")
    dtype = resolve_precision(precision, torch.device("cpu"))
    return exported_runner(model, lambda path: OpenVinoRunner(path, dtype=dtype))
