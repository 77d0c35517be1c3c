"""Throughput of `srgan upscale` on a folder of small images (issue 13): reading and writing
overlapped with the model or not, and one rank against two torchrun ranks.

    python benchmarks/batch_throughput.py                   # shipped srresnet_x4, bf16, 200 crops
    python benchmarks/batch_throughput.py --images 50 --precision fp32 --model runs/tiny/generator.safetensors

The inputs are 128x128 centre crops of BSD200 (read in place from ../shared or SRGAN_SHARED, the
crops written to a temporary folder). Each configuration is a real `python -m srgan upscale` run
(a torchrun launch for two ranks) on the first two CPUs, one PyTorch thread per process. Its
throughput is output megapixels over the wall-clock time in which some file was being read,
upscaled or written (from the run's manifest, so start-up and model loading are left out).
Before the runs, a few images are timed step by step to show the share of reading and writing:
overlap can at best hide it, a ceiling of 1 / (1 - share).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRGAN_SHARED", ROOT.parent / "shared"))
TARGETS = {"overlap / no overlap": 1.3, "2 ranks / 1 rank": 1.7}  # 1 rank: one thread, no overlap


def make_crops(folder: Path, count: int, size: int = 128) -> list[Path]:
    sources = sorted((SHARED / "datasets" / "BSD200").glob("*.png"))
    if len(sources) < count:
        raise SystemExit(f"need {count} images in {SHARED / 'datasets' / 'BSD200'}, found {len(sources)}")
    folder.mkdir(parents=True)
    crops = []
    for source in sources[:count]:
        with Image.open(source) as im:
            left, top = (im.width - size) // 2, (im.height - size) // 2
            crops.append(folder / source.name)
            im.convert("RGB").crop((left, top, left + size, top + size)).save(crops[-1])
    return crops


def step_shares(crops: list[Path], model_name: str, precision: str, out: Path) -> tuple[float, float, float]:
    """Seconds per image to read, upscale and write, on one thread, for the first few crops."""
    import torch

    from srgan.api import UpscaleOptions, get_runner
    from srgan.imaging.io import read_image, write_image
    from srgan.inference.upscale import upscale_loaded

    torch.set_num_threads(1)
    options = UpscaleOptions(model=model_name, precision=precision, device="cpu")
    runner = get_runner(options)
    upscale_loaded(read_image(crops[0]), runner, options)  # warm-up
    spent = [0.0, 0.0, 0.0]
    sample = crops[:8]
    for crop in sample:
        t0 = time.perf_counter()
        image = read_image(crop)
        t1 = time.perf_counter()
        result = upscale_loaded(image, runner, options)
        t2 = time.perf_counter()
        write_image(out / crop.name, result)
        t3 = time.perf_counter()
        for i, seconds in enumerate((t1 - t0, t2 - t1, t3 - t2)):
            spent[i] += seconds / len(sample)
    return spent[0], spent[1], spent[2]


def run(name: str, crops_dir: Path, work: Path, model: str, precision: str, io_threads: int, ranks: int) -> dict:
    out, manifest = work / f"out_{name}", work / f"{name}.jsonl"
    upscale = ["-m", "srgan", "upscale", str(crops_dir), "-o", str(out), "--model", model, "--precision", precision, "--device", "cpu",
               "--io-threads", str(io_threads), "--manifest", str(manifest)]
    if ranks > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
                   *upscale]
    else:
        command = [sys.executable, *upscale]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT / "src"),
                                                                              os.environ.get("PYTHONPATH", "")]))
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    from srgan.api import manifest_summary

    totals = manifest_summary([manifest])
    if totals.done != len(list(crops_dir.iterdir())) or totals.failures:
        raise SystemExit(f"{name}: {totals.lines()}")
    rate = totals.out_megapixels / totals.busy_seconds
    print(f"{name:28s} {totals.done:5d} {totals.out_megapixels:8.1f} {totals.busy_seconds:8.1f} {wall:8.1f} "
          f"{rate:8.3f}", flush=True)
    return {"rate": rate}


def cpu_name() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name")]
        return names[0] if names else platform.processor()
    except (OSError, subprocess.CalledProcessError):
        return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--model", default="srresnet_x4", help="shipped name or weights file (a x4 model)")
    args = parser.parse_args()

    cpus = sorted(os.sched_getaffinity(0))[:2]
    os.sched_setaffinity(0, cpus)  # inherited by every run: two ranks get one thread each
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    print(f"CPU: {cpu_name()}, avx512_bf16: {'yes' if 'avx512_bf16' in flags else 'no'}, using CPUs {cpus}, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="srgan-batch-bench-") as tmp:
        work = Path(tmp)
        crops = make_crops(work / "crops", args.images)
        (work / "steps").mkdir()
        read, model, write = step_shares(crops, args.model, args.precision, work / "steps")
        share = (read + write) / (read + model + write)
        print(f"{args.model} {args.precision}, {len(crops)} crops 128x128 -> 512x512 PNG; one image, one thread: "
              f"read {read * 1e3:.0f} ms, upscale {model * 1e3:.0f} ms, write {write * 1e3:.0f} ms "
              f"(I/O {share:.0%}: overlap ceiling {1 / (1 - share):.2f}x)")
        print(f"{'configuration':28s} {'files':>5s} {'out MP':>8s} {'busy s':>8s} {'wall s':>8s} {'MP/s':>8s}")
        plain = run("1 rank, no overlap", work / "crops", work, args.model, args.precision, io_threads=0, ranks=1)
        overlap = run("1 rank, overlap", work / "crops", work, args.model, args.precision, io_threads=2, ranks=1)
        ranks = run("2 ranks, overlap", work / "crops", work, args.model, args.precision, io_threads=2, ranks=2)
    ratios = {"overlap / no overlap": overlap["rate"] / plain["rate"],
              "2 ranks / 1 rank": ranks["rate"] / plain["rate"]}
    for name, value in ratios.items():
        verdict = "met" if value >= TARGETS[name] else "missed"
        print(f"{name}: {value:.2f}x (target {TARGETS[name]}x, {verdict})")
    print(f"2 ranks / 1 rank, both overlapped: {ranks['rate'] / overlap['rate']:.2f}x "
          "(the single overlapped rank already keeps part of the second core busy)")

if __name__ == "__main__":
    main()
