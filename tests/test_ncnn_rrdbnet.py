"""tools/ncnn_rrdbnet.py: an RRDBNet written in ncnn's layout (fp16 weights with their tag, fp32
biases, the .param's Convolution lines) comes back as the same network under BasicSR's names, which
srgan recognises as a community file; a mismatched pair is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tool_scripts import load_tool

from srgan.models import create
from srgan.models.foreign import detect
from srgan.models.registry import build


def _tool():
    return load_tool("ncnn_rrdbnet")


def _to_ncnn(state: dict[str, torch.Tensor]) -> tuple[str, bytes]:
    """ncnn's files for a state dict in module order, as the ncnn converter writes them."""
    lines, blob = ["7767517", "0 0"], bytearray()
    for i, name in enumerate(k[:-7] for k in state if k.endswith(".weight")):
        w = state[f"{name}.weight"].numpy().astype(np.float16)
        lines.append(f"Convolution Conv_{i} 1 1 a{i} b{i} 0={w.shape[0]} 1={w.shape[2]} 4=1 5=1 6={w.size} 9=2 -23310=1,2.0e-01")
        data = np.uint32(0x01306B47).tobytes() + w.tobytes()
        blob += data + b"\0" * (-len(data) % 4) + state[f"{name}.bias"].numpy().astype(np.float32).tobytes()
    return "\n".join(lines), bytes(blob)


def test_an_ncnn_rrdbnet_converts_to_the_same_network():
    torch.manual_seed(0)
    model = create("esrgan_x4", width=8, blocks=2, growth=4).eval()
    param, blob = _to_ncnn(model.state_dict())
    state = _tool().convert(param, blob)
    assert list(state) == list(model.state_dict())
    for key, value in model.state_dict().items():
        expected = value.half().float() if key.endswith(".weight") else value  # biases stay fp32
        torch.testing.assert_close(state[key], expected, rtol=0, atol=0)
    detected = detect(state)
    rebuilt = build(detected.config).eval()
    rebuilt.load_state_dict(detected.state)
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), atol=5e-3, rtol=0)


def test_a_mismatched_pair_is_refused():
    model = create("esrgan_x4", width=8, blocks=1, growth=4)
    param, blob = _to_ncnn(model.state_dict())
    tool = _tool()
    with pytest.raises(ValueError, match="left over"):
        tool.convert(param, blob + b"\0\0\0\0")
    with pytest.raises(ValueError, match="not an RRDBNet"):
        tool.convert("\n".join(param.splitlines()[:-1]), blob)
