"""Inference speed and memory of srresnet_x4, as ratios measured in one run (issue 4).

    python benchmarks/upscale_speed.py            # speed table, then the 2000x2000 memory check
    python benchmarks/upscale_speed.py --no-memory
    python benchmarks/upscale_speed.py --memory   # only the memory check (run in its own process)

Every configuration is timed in each of `--rounds` interleaved rounds and its fastest round is
kept, so other processes on a shared machine slow all of them alike and the ratios stay
meaningful. The reference "peak" is one 3x3 conv 64->64 on a 1x64x256x256 channels_last fp32
tensor, the network's dominant layer, timed in the same rounds.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from srgan.inference.engine import prepare_model
from srgan.inference.tiling import auto_tile, tiled_forward
from srgan.models import create

TARGETS = {"fp32 / peak": 0.75, "bf16 speed-up": 2.0, "tiled / whole": 1.3, "fp32 / plain eager": 1.5}


def count_flops(preset: str, size: tuple[int, int]) -> int:
    """2 x multiply-accumulates of every (transposed) convolution, from the module structure:
    shapes are traced on the meta device, so nothing is computed."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.weight.shape[2] * module.weight.shape[3]
        if isinstance(module, nn.ConvTranspose2d):  # every input value meets every kernel tap
            total += 2 * inputs[0].numel() * module.out_channels // module.groups * kernel
        else:
            total += 2 * output.numel() * module.in_channels // module.groups * kernel

    meta = create(preset).to("meta")
    convs = [m for m in meta.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    handles = [m.register_forward_hook(hook) for m in convs]
    with torch.no_grad():
        meta(torch.empty(1, meta.config.in_channels, *size, device="meta"))
    for handle in handles:
        handle.remove()
    return total


def fastest(runs: dict[str, Callable[[], torch.Tensor]], rounds: int) -> tuple[dict[str, float], dict]:
    best = dict.fromkeys(runs, float("inf"))
    outputs = {}
    with torch.inference_mode():
        for name, run in runs.items():  # warm-up: oneDNN picks kernels, the allocator grows
            outputs[name] = run()
        for _ in range(rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                result = run()
                elapsed = time.perf_counter() - start
                best[name] = min(best[name], result if isinstance(result, float) else elapsed)
    return best, outputs


def _seconds(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    start = time.perf_counter()
    fn(x)
    return time.perf_counter() - start


def levels(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(0, 1) * 255).round()


def speed(args: argparse.Namespace) -> bool:
    torch.manual_seed(0)
    model = create("srresnet_x4").eval()
    size = args.size
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    flops = count_flops("srresnet_x4", (size, size))
    fp32 = prepare_model(model, "cpu", "fp32")
    bf16 = prepare_model(model, "cpu", "bf16")
    conv = nn.Conv2d(64, 64, 3, padding=1).eval().to(memory_format=torch.channels_last)
    features = torch.rand(1, 64, 256, 256).contiguous(memory_format=torch.channels_last)
    runs = {
        "peak conv": lambda: min(_seconds(conv, features) for _ in range(5)),  # short: needs repeats
        "plain eager fp32": lambda: model(image),
        "fp32": lambda: tiled_forward(fp32, image, scale=4),
        "bf16": lambda: tiled_forward(bf16, image, scale=4, dtype=torch.bfloat16),
        "bf16 autocast": lambda: _autocast(fp32, image),
        f"fp32 tiled {args.tile}": lambda: tiled_forward(fp32, image, scale=4, tile=args.tile),
    }
    if args.onnx:
        runs["onnxruntime fp32"] = _onnx_runner(model, image)
    print(f"srresnet_x4 on {size}x{size} -> {4 * size}x{4 * size}: {flops / 1e9:.1f} GFLOP counted "
          f"(2 x MACs of every conv); fastest of {args.rounds} interleaved rounds, "
          f"{torch.get_num_threads()} threads")
    seconds, outputs = fastest(runs, args.rounds)
    peak = 2 * 64 * 64 * 9 * 256 * 256 / seconds["peak conv"] / 1e9
    label = "peak: 3x3 conv 64->64, 1x64x256x256 CL fp32"
    print(f"{label:48s} {seconds['peak conv']:8.4f} s {peak:8.1f} GFLOP/s")
    megapixels = (4 * size) ** 2 / 1e6
    for name, sec in seconds.items():
        if name == "peak conv":
            continue
        rate = flops / sec / 1e9
        print(f"{name:48s} {sec:8.3f} s {rate:8.1f} GFLOP/s {rate / peak:6.1%} of peak "
              f"{megapixels / sec:6.2f} output MP/s")
    reference = outputs["fp32"]
    for name in ("plain eager fp32", "bf16", "bf16 autocast", f"fp32 tiled {args.tile}", "onnxruntime fp32"):
        if name in outputs:
            diff = outputs[name].float() - reference
            print(f"  {name:46s} vs fp32: max |diff| {diff.abs().max():.2e}, "
                  f"max {int((levels(outputs[name]) - levels(reference)).abs().max())} level(s) of 255")
    figures = {
        "fp32 / peak": flops / seconds["fp32"] / 1e9 / peak,
        "bf16 speed-up": seconds["fp32"] / seconds["bf16"],
        "tiled / whole": seconds[f"fp32 tiled {args.tile}"] / seconds["fp32"],
        "fp32 / plain eager": seconds["plain eager fp32"] / seconds["fp32"],
    }
    bf16_levels = int((levels(outputs["bf16"]) - levels(reference)).abs().max())
    padded = _padded_area(size, args.tile, 40) / size**2
    met = True
    for name, value in figures.items():
        goal = TARGETS[name]
        ok = value <= goal if name == "tiled / whole" else value >= goal
        if name == "bf16 speed-up":
            ok = ok and bf16_levels <= 1
        met &= ok
        note = ""
        if name == "tiled / whole":
            note = f" (tiles cover {padded:.2f}x the pixels with 40-pixel context)"
        print(f"target {name:20s} {value:6.2f} (goal {'<=' if name == 'tiled / whole' else '>='} {goal}) "
              f"{'met' if ok else 'MISSED'}{note}")
    if not met or args.profile:
        _profile(fp32, image)
    return met


def _autocast(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return model(image.contiguous(memory_format=torch.channels_last)).float()


def _onnx_runner(model: nn.Module, image: torch.Tensor) -> Callable[[], torch.Tensor]:
    import tempfile
    from pathlib import Path

    from srgan.inference.onnx_backend import OnnxRunner, export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        runner = OnnxRunner(export_onnx(model, Path(tmp) / "g.onnx"))
    return lambda: tiled_forward(runner, image, scale=4)


def _padded_area(size: int, tile: int, pad: int) -> int:
    from srgan.inference.tiling import _bounds

    spans = _bounds(size, tile)
    side = sum(min(size, b + pad) - max(0, a - pad) for a, b in spans)
    return side * side


def _profile(model: nn.Module, image: torch.Tensor) -> None:
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        tiled_forward(model, image, scale=4)
    print("profile of the fp32 whole-image pass (self CPU time):")
    print(prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=10, max_name_column_width=28, max_shapes_column_width=60))


def memory(args: argparse.Namespace) -> bool:
    """A 2000x2000 image at x4 through bf16 tiles of the automatic size; peak RSS of this process."""
    torch.manual_seed(0)
    model = prepare_model(create("srresnet_x4").eval(), "cpu", "bf16")
    image = torch.rand(1, 3, args.memory_size, args.memory_size)
    tile = auto_tile(model, image.shape[-2:], scale=4, tile_pad=40, device="cpu", dtype=torch.bfloat16)
    start = time.perf_counter()
    out = tiled_forward(model, image, scale=4, tile=tile, dtype=torch.bfloat16, progress=True)
    seconds = time.perf_counter() - start
    peak_gb = _peak_rss_bytes() / 1e9
    ok = peak_gb <= 2.5
    print(f"memory: {args.memory_size}x{args.memory_size} -> {out.shape[-2]}x{out.shape[-1]} bf16, "
          f"tile {tile}: "
          f"{seconds:.1f} s, {out.shape[-2] * out.shape[-1] / 1e6 / seconds:.2f} output MP/s, "
          f"peak RSS {peak_gb:.2f} GB (goal <= 2.5) {'met' if ok else 'MISSED'}")
    return ok


def _peak_rss_bytes() -> int:
    """This process's peak resident memory. VmHWM rather than ru_maxrss: Linux carries ru_maxrss
    over `exec` from the process that spawned us, so a child of a big parent reports the parent's."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="LR input side (default 256)")
    parser.add_argument("--tile", type=int, default=128, help="tile of the tiled run (default 128)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the profile even when targets are met")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX Runtime row")
    parser.add_argument("--memory", action="store_true", help="only the memory check (own process)")
    parser.add_argument("--no-memory", dest="run_memory", action="store_false")
    parser.add_argument("--memory-size", type=int, default=2000)
    args = parser.parse_args()
    if args.memory:
        return 0 if memory(args) else 1
    ok = speed(args)
    if args.run_memory:  # a fresh process, so its peak RSS is the memory check's alone
        sys.stdout.flush()
        code = subprocess.call([sys.executable, __file__, "--memory", "--memory-size", str(args.memory_size)])
        ok = ok and code == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
