"""This machine's own limits, shared by the speed benchmarks: its 3x3-convolution rate per precision
and the FLOPs of a network, so every path can be reported as a fraction of what the machine can do.

The reference is one 3x3 conv 64->64 on a 1x64x256x256 tensor, the dominant layer of SRResNet:
PyTorch (oneDNN, channels_last) in fp32 and, where the CPU has it natively, bf16; OpenVINO for int8
(a chain of QDQ convs in the form `srgan export --int8` writes).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from srgan.hardware import cpu_has_native_bf16
from srgan.models import create

INT8_CONVS = 8
CONV_FLOP = 2 * 64 * 64 * 9 * 256 * 256


def count_flops(preset: str, size: tuple[int, int]) -> int:
    """2 x multiply-accumulates of every (transposed) convolution of the network as defined (not
    of srgan's rewritten graph, whose moved tail has 1.23x the tail's MACs): shapes are traced on
    the meta device, so nothing is computed."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.weight.shape[2] * module.weight.shape[3]
        if isinstance(module, nn.ConvTranspose2d):  # every input value meets every kernel tap
            total += 2 * inputs[0].numel() * module.out_channels // module.groups * kernel
        else:
            total += 2 * output.numel() * module.in_channels // module.groups * kernel

    meta = create(preset).to("meta")
    handles = [m.register_forward_hook(hook) for m in meta.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        meta(torch.empty(1, meta.config.in_channels, *size, device="meta"))
    for handle in handles:
        handle.remove()
    return total


def _repeat(fn: Callable[[], object], times: int = 5, per_call: int = 1) -> Callable[[], float]:
    """The fastest of a few calls of a short kernel (divided by the convs one call runs), as one
    entry of `fastest`."""
    def run() -> float:
        best = float("inf")
        for _ in range(times):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        return best / per_call
    return run


def conv_rates(ov_core) -> dict[str, Callable[[], float]]:
    """The machine's 3x3-conv rate per precision: entries of `fastest` returning seconds."""
    conv = nn.Conv2d(64, 64, 3, padding=1).eval().to(memory_format=torch.channels_last)
    features = torch.rand(1, 64, 256, 256).contiguous(memory_format=torch.channels_last)
    runs = {"conv fp32": _repeat(lambda: conv(features))}
    if cpu_has_native_bf16():
        conv16, features16 = copy.deepcopy(conv).to(torch.bfloat16), features.to(torch.bfloat16)
        runs["conv bf16"] = _repeat(lambda: conv16(features16))
    if ov_core is not None:
        compiled = ov_core.compile_model(ov_core.read_model(_int8_convs_onnx()), "CPU",
                                         {"INFERENCE_NUM_THREADS": torch.get_num_threads()})
        array = np.random.default_rng(0).random((1, 64, 256, 256), dtype=np.float32)
        runs["conv int8"] = _repeat(lambda: compiled(array), per_call=INT8_CONVS)
    return runs


def _int8_convs_onnx() -> bytes:
    """`INT8_CONVS` 3x3 convs 64->64 in a row in the QDQ form of `srgan export --int8` (uint8 input,
    int8 weights per channel, float output), which OpenVINO runs as integer convolutions: the int8
    counterpart of the fp32 reference conv (a chain, so the one-off layout change of the input
    does not count as convolution time)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.full(64, 0.002, np.float32), "w_s"),
             numpy_helper.from_array(np.zeros(64, np.int8), "w_z"), numpy_helper.from_array(np.float32(1 / 255), "x_s"),
             numpy_helper.from_array(np.uint8(0), "x_z"), numpy_helper.from_array(np.zeros(64, np.float32), "b")]
    nodes, source = [], "x"
    for k in range(INT8_CONVS):
        inits.append(numpy_helper.from_array(rng.integers(-127, 128, (64, 64, 3, 3), dtype=np.int8), f"w{k}"))
        nodes += [helper.make_node("QuantizeLinear", [source, "x_s", "x_z"], [f"q{k}"]),
                  helper.make_node("DequantizeLinear", [f"q{k}", "x_s", "x_z"], [f"d{k}"]),
                  helper.make_node("DequantizeLinear", [f"w{k}", "w_s", "w_z"], [f"wd{k}"], axis=0),
                  helper.make_node("Conv", [f"d{k}", f"wd{k}", "b"], [f"y{k}"], pads=[1, 1, 1, 1])]
        source = f"y{k}"
    shape = [1, 64, 256, 256]
    graph = helper.make_graph(nodes, "convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(source, TensorProto.FLOAT, shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def rate_of(seconds: dict[str, float]) -> dict[str, float]:
    """GFLOP/s per precision from the `conv_rates` entries of a `fastest` result."""
    return {name.split()[1]: CONV_FLOP / seconds[name] / 1e9 for name in seconds if name.startswith("conv ")}
