"""An `.onnx` file checked before a runtime sees it, and each input shape checked before it runs.

ONNX Runtime and OpenVINO trust the graph: a crafted file whose graph expands a tile to
100000x100000 makes OpenVINO crash the process (SIGSEGV) rather than raise, and a garbage file
makes it echo raw bytes. So srgan parses the file with `onnx` first (a protobuf parse, no
execution), reads its metadata through typed, bounded fields (the checks of a weights file's
config, `GeneratorConfig.from_dict`), and before running an input shape infers every tensor's
shape for it (`onnx.shape_inference` with data propagation): a tensor whose size is unknown or
above the memory budget, or an output that is not the input times the scale, is refused in one
line, as a weights file's network is checked on the meta device before it is built.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass
from typing import Any

from srgan.errors import SrganError, one_line
from srgan.files import existing_file
from srgan.hardware import available_memory
from srgan.models.weights import OLD_ARCHITECTURE

CONFIG_KEY = "srgan_config"
ARCHITECTURE_KEY = "srgan_architecture"
CONTEXT_KEY = "srgan_context"
GRID_KEY = "srgan_input_multiple"
PRECISION_KEY = "srgan_precision"  # "int8" for a quantised model (`srgan.export.quantize`)
MAX_VALUE_CHARS = 1 << 16
"""Longest metadata value read: srgan writes a few hundred characters."""
MAX_SCALE, MAX_GRID, MAX_CONTEXT = 16, 64, 1 << 16
TENSOR_MEMORY_FRACTION = 0.5
"""Share of the memory available now that one tensor of the graph may take for a planned input."""
FALLBACK_BUDGET = 1 << 32


@dataclass(frozen=True)
class OnnxMetadata:
    """srgan's metadata of an exported model, typed and in range; None where the file does not say."""

    scale: int | None
    architecture: str | None
    config: Any
    context: int | None
    grid: int
    precision: str


def parse_metadata(meta: dict[str, str], where: str) -> OnnxMetadata:
    """srgan's keys of an ONNX file's metadata, checked: one line naming the file and the key otherwise."""
    from srgan.models.registry import ARCHITECTURES, config_from_dict

    for key, value in meta.items():
        if (key.startswith("srgan") or key == "scale") and len(value) > MAX_VALUE_CHARS:
            raise SrganError(f"{where}: damaged srgan metadata: {key} is longer than {MAX_VALUE_CHARS} characters")
    scale = _whole(meta, "scale", 1, MAX_SCALE, where)
    grid = _whole(meta, GRID_KEY, 1, MAX_GRID, where)
    context = _whole(meta, CONTEXT_KEY, 0, MAX_CONTEXT, where, null=True)
    precision = meta.get(PRECISION_KEY, "fp32")
    if precision not in ("fp32", "int8"):
        raise SrganError(f"{where}: damaged srgan metadata: {PRECISION_KEY} must be fp32 or int8, got {precision!r}")
    architecture = meta.get(ARCHITECTURE_KEY, OLD_ARCHITECTURE) if CONFIG_KEY in meta else None
    config = None
    if architecture is not None and architecture in ARCHITECTURES.names():
        try:
            values = json.loads(meta[CONFIG_KEY])
        except (ValueError, RecursionError) as exc:
            raise SrganError(f"{where}: damaged srgan metadata: {CONFIG_KEY} is not JSON") from exc
        if not isinstance(values, dict):
            raise SrganError(f"{where}: damaged srgan metadata: {CONFIG_KEY} is not a JSON mapping")
        try:
            config = config_from_dict(architecture, values)
        except (SrganError, TypeError) as exc:
            raise SrganError(f"{where}: damaged srgan metadata: {one_line(exc)}") from exc
        if scale is not None and getattr(config, "scale", scale) != scale:
            raise SrganError(f"{where}: damaged srgan metadata: scale {scale} but the config says {config.scale}")
        if CONTEXT_KEY not in meta:  # exported before the context was stored: ask an empty network
            import torch

            with torch.device("meta"):
                context = ARCHITECTURES.get(architecture)(config).context()
    return OnnxMetadata(scale, architecture, config, context, grid or 1, precision)


def _whole(meta: dict[str, str], key: str, low: int, high: int, where: str, *, null: bool = False) -> int | None:
    """An integer field written as text (or JSON); None when absent (or JSON null where allowed)."""
    if key not in meta:
        return None
    text = meta[key].strip()
    if null and text == "null":
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 6 and low <= int(text) <= high):
        raise SrganError(f"{where}: damaged srgan metadata: {key} must be a whole number from {low} to {high}, "
                         f"got {text[:40]!r}")
    return int(text)


class CheckedGraph:
    """An ONNX file parsed and checked (one 4-D input, srgan's metadata): what the runtimes may load.
    `check_input(shape)` infers the graph's shapes for an input shape, once per shape."""

    def __init__(self, path: str | os.PathLike) -> None:
        import onnx

        self.path = existing_file(path, "ONNX file")
        try:
            self.proto = onnx.load(str(self.path), load_external_data=False)
        except Exception as exc:  # protobuf's DecodeError, and others for a truncated file
            raise SrganError(f"{self.path}: not an ONNX model (the file does not parse as one)") from exc
        graph = self.proto.graph
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer):
            raise SrganError(f"{self.path}: its weights are stored outside the file: srgan reads self-contained "
                             "ONNX files only")
        inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
        if len(inputs) != 1 or len(graph.output) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
            raise SrganError(f"{self.path}: not an image model: srgan runs models with one (N, C, H, W) input "
                             "and one output")
        self.input = inputs[0]
        self.dims = [d.dim_value if d.HasField("dim_value") else None for d in self.input.type.tensor_type.shape.dim]
        self.metadata = parse_metadata({p.key: p.value for p in self.proto.metadata_props}, str(self.path))
        self._checked: set[tuple[int, ...]] = set()
        self._lock = threading.Lock()

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """(height, width) of a fixed-shape model's input; None when they are free."""
        height, width = self.dims[2:]
        return (height, width) if height and width else None

    def probe_shape(self) -> tuple[int, ...]:
        """The input shape a load-time check uses: the fixed one, else a small tile on the model's grid."""
        batch, channels = self.dims[0] or 1, self.dims[1] or 3
        side = 8 * self.metadata.grid
        return (batch, channels, *(self.fixed_size or (side, side)))

    def check_input(self, shape: tuple[int, ...], budget_bytes: int | None = None) -> None:
        """Refuse `shape` unless every tensor's shape follows from it and fits `budget_bytes`, and the
        output is the input times the scale."""
        shape = tuple(int(s) for s in shape)
        with self._lock:
            if shape in self._checked:
                return
            self._infer(shape, _budget() if budget_bytes is None else budget_bytes)
            self._checked.add(shape)

    def _infer(self, shape: tuple[int, ...], budget: int) -> None:
        import onnx

        wanted = [d if d else s for d, s in zip(self.dims, shape)]
        if list(shape) != wanted:
            raise SrganError(f"{self.path}: takes only {describe_dims(self.dims)} inputs, got {describe_dims(shape)}")
        proto = onnx.ModelProto()
        proto.CopyFrom(self.proto)
        for dim, value in zip(proto.graph.input[list(proto.graph.input).index(self.input)].type.tensor_type.shape.dim,
                              shape):
            dim.Clear()
            dim.dim_value = value
        try:
            graph = fold_shape_arithmetic(proto).graph
        except Exception as exc:  # InferenceError, and ValidationError for a malformed graph
            raise SrganError(f"{self.path}: the graph is not consistent for a {describe_dims(shape)} input "
                             f"({one_line(exc)[:300]})") from exc
        for value in [*graph.value_info, *graph.output]:
            dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
            if value.type.HasField("tensor_type") and (None in dims or any(d < 0 for d in dims)):
                raise SrganError(f"{self.path}: the size of tensor {value.name[:80]} cannot be known before running "
                                 f"it on a {describe_dims(shape)} input: refused, as its memory cannot be bounded")
            size = math.prod(dims) * _item_bytes(value.type.tensor_type.elem_type)
            if size > budget:
                raise SrganError(f"{self.path}: tensor {value.name[:80]} would be {describe_dims(dims)} for a "
                                 f"{describe_dims(shape)} input ({size / 2**30:.1f} GiB), over the memory budget "
                                 f"of {budget / 2**30:.1f} GiB: refused before running")
        self._check_output(graph.output[0], shape)

    def _check_output(self, output: Any, shape: tuple[int, ...]) -> None:
        scale = self.metadata.scale
        dims = [d.dim_value for d in output.type.tensor_type.shape.dim]
        if scale is not None and (len(dims) != 4 or dims[0] != shape[0] or dims[2:] != [shape[2] * scale,
                                                                                       shape[3] * scale]):
            raise SrganError(f"{self.path}: its output would be {describe_dims(dims)} for a {describe_dims(shape)} "
                             f"input, not the input times {scale} (its metadata's scale)")


SHAPE_OPS = frozenset({"Constant", "Identity", "Cast", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Concat",
                       "Gather", "Slice", "Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Floor", "Ceil", "Max",
                       "Min", "Equal", "Less", "Greater", "Not", "Where", "ReduceProd", "ReduceSum", "Size"})
"""Operators folded when their inputs are known small tensors: the arithmetic a graph does on shapes
(none of them makes an output larger than the product of its inputs' sizes)."""
FOLD_LIMIT = 1 << 12
"""Largest input (in elements) of a folded node: shape tensors hold a handful."""


def fold_shape_arithmetic(proto: Any, rounds: int = 16) -> Any:
    """`proto` (with a concrete input shape) with its shapes inferred after folding the arithmetic it
    does on tensor shapes into constants (`Shape` of a known shape, then `SHAPE_OPS` on small known
    tensors), which `onnx.shape_inference` alone leaves unknown (a `Pad` whose pads are computed
    from the input size with `Mod`, as torch's exporter writes for pixel unshuffle)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper, shape_inference

    for _ in range(rounds):
        inferred = shape_inference.infer_shapes(proto, strict_mode=True, data_prop=True)
        graph = inferred.graph
        shapes = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
                  for v in [*graph.input, *graph.value_info, *graph.output]}
        known = {t.name: numpy_helper.to_array(t) for t in graph.initializer if math.prod(t.dims) <= FOLD_LIMIT}
        folded = {}
        for node in graph.node:
            value = _fold(node, known, shapes)
            if value is not None:
                known[node.output[0]] = folded[node.output[0]] = np.asarray(value)
        if not folded:
            return inferred
        proto = onnx.ModelProto()
        proto.CopyFrom(inferred)
        kept = [n for n in proto.graph.node if not (len(n.output) == 1 and n.output[0] in folded)]
        del proto.graph.node[:]
        proto.graph.node.extend(kept)
        del proto.graph.value_info[:]
        proto.graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in folded.items())
    return shape_inference.infer_shapes(proto, strict_mode=True, data_prop=True)


def _fold(node: Any, known: dict[str, Any], shapes: dict[str, list]) -> Any:
    """The value of `node`'s single output if it can be computed from small known tensors, else None."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    if len(node.output) != 1 or node.output[0] in known:
        return None
    if node.op_type == "Shape":
        dims = shapes.get(node.input[0])
        if dims is None or None in dims:
            return None
        attrs = {a.name: a.i for a in node.attribute}
        return np.array(dims[attrs.get("start", 0):attrs.get("end", len(dims)) or None], dtype=np.int64)
    names = [name for name in node.input if name]
    if node.op_type not in SHAPE_OPS or not all(name in known for name in names) or node.domain not in ("", "ai.onnx"):
        return None
    if any(known[name].size > FOLD_LIMIT for name in names) or math.prod(known[n].size for n in names) > 1 << 22:
        return None
    try:
        return ReferenceEvaluator(node).run(None, {name: known[name] for name in names})[0]
    except Exception:  # noqa: BLE001 - a node that does not evaluate stays unknown, and is refused later
        return None


def describe_dims(dims: Any) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)


def _item_bytes(elem_type: int) -> int:
    from onnx.helper import tensor_dtype_to_np_dtype

    try:
        return max(1, tensor_dtype_to_np_dtype(elem_type).itemsize)
    except (KeyError, TypeError, ValueError):  # an undefined or string element type: count it as the widest
        return 8


def _budget() -> int:
    available = available_memory()
    return FALLBACK_BUDGET if available is None else int(available * TENSOR_MEMORY_FRACTION)
