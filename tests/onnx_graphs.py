"""Hand-made ONNX graphs for the hardening and fuzz tests: srgan's metadata on graphs that a careless
or hostile user could hand to `srgan upscale --model FILE.onnx`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import srgan

TINY = {"preset": "srresnet_x4", "blocks": 1, "width": 8}


def srgan_metadata(**changes: str) -> dict[str, str]:
    """What `export_onnx` writes for a tiny srresnet_x4, with `changes` (None removes a key)."""
    model = srgan.create_model(TINY["preset"], blocks=TINY["blocks"], width=TINY["width"])
    meta = {"srgan_architecture": model.architecture, "srgan_config": json.dumps(model.config.to_dict()),
            "scale": "4", "srgan_context": "10", "srgan_input_multiple": "1"}
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


def expanding_graph(path: Path, side: int = 100_000, metadata: dict[str, str] | None = None) -> Path:
    """A x4 'upscaler' that on the way expands its input to side x side (3 x 4 x side^2 bytes)."""
    nodes = [helper.make_node("ReduceMean", ["lr", "axes"], ["pixel"], keepdims=1),
             helper.make_node("Expand", ["pixel", "big_shape"], ["big"]),
             helper.make_node("ReduceMean", ["big", "axes"], ["mean"], keepdims=1),
             helper.make_node("Resize", ["lr", "", "scales"], ["up"], mode="nearest"),
             helper.make_node("Add", ["up", "mean"], ["sr"])]
    inits = [numpy_helper.from_array(np.array([1, 3, side, side], np.int64), "big_shape"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
             numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "scales")]
    return _save(path, nodes, inits, metadata)


def upscaling_graph(path: Path, metadata: dict[str, str] | None = None) -> Path:
    """A well-behaved x4 nearest-neighbour upscaler: a valid file to edit the metadata of."""
    nodes = [helper.make_node("Resize", ["lr", "", "scales"], ["sr"], mode="nearest")]
    inits = [numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "scales")]
    return _save(path, nodes, inits, metadata)


def _save(path: Path, nodes: list, inits: list, metadata: dict[str, str] | None) -> Path:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("lr", TensorProto.FLOAT, [1, 3, "h", "w"])],
                              [helper.make_tensor_value_info("sr", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    for key, value in (srgan_metadata() if metadata is None else metadata).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path
