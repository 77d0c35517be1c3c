"""Inference speed of srresnet_x4 against this machine's own limits, every path measured in one run.

    python benchmarks/upscale_speed.py            # speed table, working set, then the memory check
    python benchmarks/upscale_speed.py --no-memory
    python benchmarks/upscale_speed.py --memory   # only the 2000x2000 memory check (own process)

The machine's limit is its 3x3-convolution rate: one conv 64->64 on a 1x64x256x256 tensor (the
network's dominant layer) in fp32 and, where the CPU has it natively, bf16 (PyTorch, channels_last),
and in int8 (OpenVINO, a one-conv QDQ model). Each path is reported as a fraction of the rate of
its own precision and as a speed-up over plain eager PyTorch, what every SRGAN repository does
(`model(x)`, NCHW, batch norm unfolded). Beside srgan's paths stand what a user would pick instead:
ONNX Runtime and OpenVINO with their defaults on a plain export of the same model. The int8 models
are `srgan export --int8` of each shipped x4 model (srresnet_x4 and srresnet_real_x4, gated on PSNR-Y; srgan_x4, gated
on LPIPS), calibrated on T91 and checked on Set5 (from ../shared, or SRGAN_SHARED); each one's
OpenVINO int8 speed is reported over its own torch fp32 path. Whether int8 pays depends on the
CPU's int8 dot product, which the CPU line names (VNNI or AMX; "none" on AVX2-only CPUs). Every configuration runs in each of `--rounds` interleaved rounds and its
fastest round is kept, so other processes on a shared machine slow all of them alike and the
ratios stay meaningful; absolute seconds are this run's only.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from machine import conv_rates, count_flops, rate_of
from torch import nn

from srgan.errors import SrganError
from srgan.hardware import cpu_has_native_bf16, describe_cpu
from srgan.inference.engine import prepare_model
from srgan.inference.tiling import activation_bytes_per_pixel, auto_tile, tiled_forward
from srgan.models import create
from srgan.models.weights import load_model

SHARED = Path(os.environ.get("SRGAN_SHARED", Path(__file__).resolve().parents[2] / "shared"))
TARGETS = {  # name: (goal, higher is better)
    "fp32 of fp32 conv rate": (0.60, True),
    "fp32 over plain eager": (1.5, True),
    "bf16 over fp32": (1.8, True),
    "int8 over fp32": (2.0, True),
    "int8 Set5 loss (dB)": (0.1, False),
    "int8 Set5 LPIPS change (srgan_x4)": (0.01, False),
    "OpenVINO fp32 over fp32": (1.0, True),
    "ONNX Runtime fp32 over fp32": (0.9, True),
}


def fastest(runs: dict[str, Callable[[], object]], rounds: int) -> tuple[dict[str, float], dict]:
    best = dict.fromkeys(runs, float("inf"))
    outputs = {}
    with torch.inference_mode():
        for name, run in runs.items():  # warm-up: kernels picked, allocators grown, shapes compiled
            outputs[name] = run()
        for _ in range(rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                result = run()
                elapsed = time.perf_counter() - start
                best[name] = min(best[name], result if isinstance(result, float) else elapsed)
    return best, outputs


def natural_image(size: int) -> torch.Tensor:
    """The centre of scikit-image's astronaut (512x512, shipped with scikit-image), so the level
    differences between paths are those of a photograph, not of noise."""
    from skimage import data

    pixels = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float().div(255)[None]
    if size > 512:
        return torch.nn.functional.interpolate(pixels, size=(size, size), mode="bicubic").clamp(0, 1)
    top = (512 - size) // 2
    return pixels[..., top:top + size, top:top + size].contiguous()


def plain_onnx(model: nn.Module, path: Path) -> Path:
    """What a user exports without srgan: the network as trained, batch norm and all."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        dim = torch.export.Dim
        torch.onnx.export(model, (torch.rand(1, 3, 64, 64),), str(path), input_names=["lr"], output_names=["sr"],
                          dynamic_shapes=({2: dim("h", min=1, max=8192), 3: dim("w", min=1, max=8192)},),
                          dynamo=True, verbose=False)
        logging.disable(logging.NOTSET)
    return path


def speed(args: argparse.Namespace) -> bool:
    from srgan.inference.onnx_backend import OnnxRunner, export_onnx

    torch.manual_seed(0)
    model = load_model("srresnet_x4").eval()
    size = args.size
    image = natural_image(size)
    array = np.ascontiguousarray(image.numpy())
    flops = count_flops("srresnet_x4", (size, size))
    has_ov = importlib.util.find_spec("openvino") is not None
    has_ort = importlib.util.find_spec("onnxruntime") is not None
    ov_core = None
    if has_ov:
        import openvino as ov

        ov_core = ov.Core()
    print(f"CPU: {describe_cpu()}")
    print(f"torch {torch.__version__}" + (f", onnxruntime {_version('onnxruntime')}" if has_ort else "")
          + (f", openvino {_version('openvino')}" if has_ov else ""))
    fp32 = prepare_model(model, "cpu", "fp32")
    runs: dict[str, Callable[[], object]] = conv_rates(ov_core)
    runs["plain eager fp32"] = lambda: model(image)
    runs["srgan torch fp32"] = lambda: tiled_forward(fp32, image, scale=4)
    if cpu_has_native_bf16():
        bf16 = prepare_model(model, "cpu", "bf16")
        runs["srgan torch bf16"] = lambda: tiled_forward(bf16, image, scale=4)
    runs[f"srgan torch fp32, tiles of {args.tile}"] = lambda: tiled_forward(fp32, image, scale=4, tile=args.tile)
    loss = None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        exported = export_onnx(model, tmp / "srgan.onnx")
        print(f"srgan export (dynamo, rewrites applied): {time.perf_counter() - start:.1f} s")
        plain = plain_onnx(model, tmp / "plain.onnx")
        int8s = int8_exports(tmp) if has_ort and not args.no_int8 else {}
        int8 = int8s["srresnet_x4"].path if "srresnet_x4" in int8s else None
        loss = int8s["srresnet_x4"].loss if int8 is not None else None
        if has_ort:
            import onnxruntime as ort

            default = ort.InferenceSession(str(plain), providers=["CPUExecutionProvider"])
            runs["ONNX Runtime defaults, plain export"] = lambda: default.run(None, {"lr": array})
            ort_fp32 = OnnxRunner(exported)
            runs["ONNX Runtime fp32, srgan export"] = lambda: tiled_forward(ort_fp32, image, scale=4)
            if int8 is not None:
                ort_int8 = OnnxRunner(int8)
                runs["ONNX Runtime int8, srgan export"] = lambda: tiled_forward(ort_int8, image, scale=4)
        if has_ov:
            from srgan.inference.openvino_backend import OpenVinoRunner

            ov_default = ov_core.compile_model(ov_core.read_model(str(plain)), "CPU")
            hint = ov_default.get_property("INFERENCE_PRECISION_HINT").to_string()
            default_precision = {"f32": "fp32"}.get(hint, hint)
            runs[f"OpenVINO defaults ({default_precision}), plain export"] = lambda: ov_default(array)
            ov_fp32 = OpenVinoRunner(exported)
            runs["OpenVINO fp32, srgan export"] = lambda: tiled_forward(ov_fp32, image, scale=4)
            if int8 is not None:
                ov_int8 = OpenVinoRunner(int8)
                runs["OpenVINO int8, srgan export"] = lambda: tiled_forward(ov_int8, image, scale=4)
            for name, report in int8s.items():  # every shipped model: its own fp32 path against its int8
                if name != "srresnet_x4":
                    other, quantised = prepare_model(load_model(name).eval(), "cpu", "fp32"), OpenVinoRunner(report.path)
                    runs[f"{name}: srgan torch fp32"] = lambda m=other: tiled_forward(m, image, scale=4)
                    runs[f"{name}: OpenVINO int8"] = lambda r=quantised: tiled_forward(r, image, scale=4)
        print(f"srresnet_x4 (shipped weights) on {size}x{size} -> {4 * size}x{4 * size}: {flops / 1e9:.1f} GFLOP "
              f"counted; fastest of {args.rounds} interleaved rounds, {torch.get_num_threads()} threads")
        seconds, outputs = fastest(runs, args.rounds)
    rates = rate_of(seconds)
    for precision, rate in rates.items():
        print(f"machine's 3x3 conv rate, {precision}: {rate:.0f} GFLOP/s"
              + (" (OpenVINO, QDQ conv)" if precision == "int8" else " (PyTorch, channels_last)"))
    eager = seconds["plain eager fp32"]
    reference = outputs["srgan torch fp32"]
    print("\n| path | of its conv rate | vs plain eager | seconds | output MP/s | max diff vs fp32 (levels) |")
    print("|---|---|---|---|---|---|")
    megapixels = (4 * size) ** 2 / 1e6
    for name, sec in seconds.items():
        if name.startswith("conv ") or ": " in name:
            continue
        precision = "int8" if "int8" in name else "bf16" if "bf16" in name else "fp32"
        if "OpenVINO defaults" in name:
            precision = default_precision if default_precision in rates else "fp32"
        fraction = flops / sec / 1e9 / rates[precision] if precision in rates else float("nan")
        out = outputs[name]  # a tensor, ONNX Runtime's list of arrays or OpenVINO's dict of them
        out = out if isinstance(out, torch.Tensor) else torch.from_numpy(np.asarray(out[0]))
        levels = int((_levels(out) - _levels(reference)).abs().max())
        print(f"| {name} | {fraction:.0%} of {precision} | {eager / sec:.2f}x | {sec:.3f} | "
              f"{megapixels / sec:.2f} | {levels} |")
    figures = {
        "fp32 of fp32 conv rate": flops / seconds["srgan torch fp32"] / 1e9 / rates["fp32"],
        "fp32 over plain eager": eager / seconds["srgan torch fp32"],
    }
    if "srgan torch bf16" in seconds:
        figures["bf16 over fp32"] = seconds["srgan torch fp32"] / seconds["srgan torch bf16"]
    if "OpenVINO int8, srgan export" in seconds:
        figures["int8 over fp32"] = seconds["srgan torch fp32"] / seconds["OpenVINO int8, srgan export"]
    if loss is not None:
        figures["int8 Set5 loss (dB)"] = loss
    if "srgan_x4" in int8s:
        figures["int8 Set5 LPIPS change (srgan_x4)"] = int8s["srgan_x4"].loss
    _int8_table(int8s, seconds)
    if "OpenVINO fp32, srgan export" in seconds:
        figures["OpenVINO fp32 over fp32"] = seconds["srgan torch fp32"] / seconds["OpenVINO fp32, srgan export"]
    if "ONNX Runtime fp32, srgan export" in seconds:
        figures["ONNX Runtime fp32 over fp32"] = seconds["srgan torch fp32"] / seconds["ONNX Runtime fp32, srgan export"]
    padded = _padded_area(size, args.tile, 40) / size**2
    print(f"\ntiles of {args.tile}: {seconds[f'srgan torch fp32, tiles of {args.tile}'] / seconds['srgan torch fp32']:.2f}x "
          f"the whole image's time (the tiles cover {padded:.2f}x its pixels with the 40-pixel exact context)")
    met = True
    print("\n| target | measured | goal | |\n|---|---|---|---|")
    for name, value in figures.items():
        goal, higher = TARGETS[name]
        ok = value >= goal if higher else value <= goal
        met &= ok
        print(f"| {name} | {value:.3g} | {'>=' if higher else '<='} {goal} | {'met' if ok else 'MISSED'} |")
    if args.profile:
        _profile(fp32, image)
    return met


SHIPPED_X4 = ("srresnet_x4", "srgan_x4", "srresnet_real_x4", "srgan_real_x4")  # the PSNR and the GAN models


def int8_exports(tmp: Path) -> dict:
    """`srgan export --int8` of each shipped x4 model, calibrated on T91 and checked on Set5 with
    the gate of what the model is for (PSNR-Y or LPIPS; LPIPS weights from ../shared/weights)."""
    from srgan.api import export_int8

    reports = {}
    if not (SHARED / "datasets" / "T91").is_dir():
        print(f"int8 skipped: needs {SHARED / 'datasets' / 'T91'}")
        return reports
    for name in SHIPPED_X4:
        try:
            reports[name] = export_int8(name, tmp / f"{name}_int8.onnx", SHARED / "datasets" / "T91",
                                        check=SHARED / "datasets" / "Set5", metric_weights=str(SHARED / "weights"))
        except SrganError as exc:
            print(f"{name} int8: {exc}")
            continue
        print(f"{name}: " + reports[name].line().replace(str(reports[name].path), "srgan export --int8"))
    return reports


def _int8_table(reports: dict, seconds: dict[str, float]) -> None:
    """Per shipped model: its gate's score fp32 -> int8 on Set5 and OpenVINO int8 over its torch fp32 path."""
    print("\n| model | gate (Set5) | fp32 | int8 | loss (PSNR-Y) or change (LPIPS) | OpenVINO int8 over srgan torch fp32 |\n|---|---|---|---|---|---|")
    for name, r in reports.items():
        fp32, int8 = ((seconds["srgan torch fp32"], seconds.get("OpenVINO int8, srgan export")) if name == "srresnet_x4"
                      else (seconds.get(f"{name}: srgan torch fp32"), seconds.get(f"{name}: OpenVINO int8")))
        ratio = f"{fp32 / int8:.2f}x" if fp32 and int8 else "-"
        digits = 2 if r.gate.higher_is_better else 4
        print(f"| {name} | {r.gate.name} | {r.score_fp32:.{digits}f} | {r.score_int8:.{digits}f} | "
              f"{r.loss:.{digits + 1}f}{r.gate.unit} | {ratio} |")


def _version(module: str) -> str:
    return str(getattr(__import__(module), "__version__", "?")).split("-")[0]


def _levels(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(0, 1) * 255).round()


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


def working_set(precision: str, size: int) -> None:
    """Peak RSS of one whole-image pass per LR pixel against `activation_bytes_per_pixel` (+ the float32
    output), printed by a fresh process so nothing else is in its peak."""
    torch.set_num_threads(1)
    model = prepare_model(create("srresnet_x4").eval(), "cpu", precision)
    tiled_forward(model, torch.rand(1, 3, 16, 16), scale=4)
    base = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # restart the peak (VmHWM) from here
    tiled_forward(model, torch.rand(1, 3, size, size), scale=4)
    measured = (_status("VmHWM") - base) / size**2
    estimate = activation_bytes_per_pixel(model, next(model.parameters()).dtype) + 3 * 16 * 4
    print(f"working set {precision}: {measured:.0f} bytes per LR pixel measured ({measured / 16:.0f} per output "
          f"pixel), {estimate:.0f} estimated by auto tile")


def memory(args: argparse.Namespace) -> bool:
    """A 2000x2000 image at x4 in bf16 tiles sized for a 1 GiB budget (a machine with little memory
    free); peak RSS of this process."""
    torch.manual_seed(0)
    model = prepare_model(create("srresnet_x4").eval(), "cpu", "bf16")
    image = torch.rand(1, 3, args.memory_size, args.memory_size)
    tile = auto_tile(model, image.shape[-2:], scale=4, tile_pad=40, device="cpu", dtype=torch.bfloat16,
                     budget_bytes=1 << 30)
    start = time.perf_counter()
    out = tiled_forward(model, image, scale=4, tile=tile, progress=True)
    seconds = time.perf_counter() - start
    peak_gb = _status("VmHWM") / 1e9
    ok = peak_gb <= 2.5
    print(f"memory: {args.memory_size}x{args.memory_size} -> {out.shape[-2]}x{out.shape[-1]} bf16, 1 GiB budget, "
          f"tile {tile}: {seconds:.1f} s, peak RSS {peak_gb:.2f} GB (goal <= 2.5) {'met' if ok else 'MISSED'}")
    return ok


def _status(key: str) -> int:
    """A /proc/self/status size in bytes. VmHWM rather than ru_maxrss: Linux carries ru_maxrss over
    `exec` from the process that spawned us, so a child of a big parent reports the parent's."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="LR input side (default 256)")
    parser.add_argument("--tile", type=int, default=128, help="tile of the tiled run (default 128)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the profile of the fp32 pass")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 export and its rows")
    parser.add_argument("--memory", action="store_true", help="only the memory check (own process)")
    parser.add_argument("--working-set", choices=("fp32", "bf16"), help="only this working-set measurement")
    parser.add_argument("--no-memory", dest="run_memory", action="store_false")
    parser.add_argument("--memory-size", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.memory:
        return 0 if memory(args) else 1
    if args.working_set:
        working_set(args.working_set, 256)
        return 0
    ok = speed(args)
    if args.run_memory:  # fresh processes, so each peak RSS is that measurement's alone
        sys.stdout.flush()
        print(f"\nauto tile here (memory available now, fp32): 512x512 -> "
              f"{auto_tile(prepare_model(create('srresnet_x4')), (512, 512), scale=4, tile_pad=40, device='cpu') or 'whole'}, "
              f"2000x2000 -> {auto_tile(prepare_model(create('srresnet_x4')), (2000, 2000), scale=4, tile_pad=40, device='cpu') or 'whole'}")
        sys.stdout.flush()
        for precision in ("fp32", "bf16"):
            subprocess.call([sys.executable, __file__, "--working-set", precision])
        code = subprocess.call([sys.executable, __file__, "--memory", "--memory-size", str(args.memory_size)])
        ok = ok and code == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
