"""Training speed of the srgan trainer against a plain, minimal PyTorch loop and against this
machine's own 3x3-conv rate, and memory over a run.

    python benchmarks/train_speed.py                 # everything (a few minutes on a 2-core CPU)
    python benchmarks/train_speed.py --skip-rss      # speed ratios only

Speed: iterations/s for srresnet_x4 (MSE) and srgan_x4 (VGG relu3_4 from the shared partial VGG19
file + BCE adversarial) at batch 16, crop 96, as a ratio to a plain loop over the same networks and
the same batches (ratio >= 1.0: the trainer adds no overhead), and for srresnet_x4 as a fraction of
the machine's 3x3-conv rate (`machine.py`; a training step counted as 3x the forward FLOPs:
forward, and backward to inputs and to weights). The trainer is timed in fp32 (channels_last and
contiguous), in bf16 autocast, and with `precision: auto`, what the configs use (bf16 only where
the CPU has it natively); bf16's accuracy is the PSNR of the bf16 generator output against the
fp32 one. Memory: RSS after 20 and after 500 iterations of configs/tiny.yaml (growth should stay
under 5%). All numbers come from this one run; the CPU is printed first.
"""

from __future__ import annotations

import argparse
import logging
import math
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from srgan.hardware import NAMES

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
VGG = SHARED / "weights" / "vgg19_features_conv1_1-conv3_4_imagenet.safetensors"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _config(name: str, overrides: list[str]):
    from srgan.training.config import load_config

    base = [f"data.folders={SHARED / 'datasets' / 'T91'}", "model.init=null", "validation.folder=null",
            "data.batch_size=16", "data.hr_crop=96", "train.checkpoint_every=1000000", "train.log_every=1000000",
            "train.ema=0", "train.precision=fp32"]
    if name == "srgan_x4":  # the shared partial VGG19 file reaches relu3_4
        base += [f"losses.perceptual.weights_path={VGG}", "losses.perceptual.layers={relu3_4: 1.0}"]
    return load_config(ROOT / "configs" / f"{name}.yaml", base + overrides)


def time_trainer(name: str, overrides: list[str], warmup: int, steps: int, out: Path) -> float:
    from srgan.training.monitor import Monitor
    from srgan.training.trainer import Trainer

    config = _config(name, [f"train.iterations={warmup}", *overrides])
    trainer = Trainer(config, run_dir=out)
    monitor = Monitor(out, start=0, total=warmup + steps, log_every=10**9, tensorboard=False, enabled=False)
    trainer._loop(monitor)
    trainer.config.train.iterations = warmup + steps
    start = time.perf_counter()
    trainer._loop(monitor)
    return steps / (time.perf_counter() - start)


def time_plain(name: str, warmup: int, steps: int) -> float:
    """The loop anyone would write: same networks, same batches, Adam, no extras."""
    from srgan.data.dataset import TrainPatches, make_loader
    from srgan.losses.adversarial import BCELoss
    from srgan.losses.perceptual import PerceptualLoss
    from srgan.models.discriminators import build_discriminator
    from srgan.models.registry import build
    from srgan.training.config import data_scale, generator_config

    config = _config(name, [])
    torch.manual_seed(0)
    gen = build(generator_config(config))
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-4, betas=(0.9, 0.999))
    gan = config.gan
    if gan:
        disc = build_discriminator(config.discriminator["type"])
        opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.9, 0.999))
        vgg = PerceptualLoss({"relu3_4": 1.0}, weights=VGG)
        adv = BCELoss()
    data = TrainPatches(config.data.folders, hr_crop=96, scale=data_scale(config), seed=0)
    loader = make_loader(data, batch_size=16, start=0, stop=warmup + steps)
    start = 0.0
    for i, (lr, hr) in enumerate(loader):
        if i == warmup:
            start = time.perf_counter()
        sr = gen(lr)
        if gan:
            d_loss = adv.d_loss(disc(hr), disc(sr.detach()))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            loss = vgg(sr, hr) + 1e-3 * adv.g_loss(None, disc(sr))
        else:
            loss = F.mse_loss(sr, hr)
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        loss.item()
    return steps / (time.perf_counter() - start)


def bf16_accuracy() -> float:
    """PSNR (dB) of an SRResNet's bf16-autocast output against its fp32 output on a T91 crop."""
    from srgan.data.dataset import TrainPatches
    from srgan.models import create

    torch.manual_seed(0)
    model = create("srresnet_x4").eval()
    lr = torch.stack([TrainPatches(SHARED / "datasets" / "T91", hr_crop=96, scale=4)[i][0] for i in range(4)])
    with torch.no_grad():
        ref = model(lr)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(lr).float()
    peak = float(ref.max() - ref.min())
    return 10 * math.log10(peak**2 / float(F.mse_loss(low, ref)))


def rss_run(iterations: int, out: Path) -> tuple[float, float, float]:
    from srgan.training.config import load_config
    from srgan.training.monitor import Monitor
    from srgan.training.trainer import Trainer

    config = load_config(ROOT / "configs" / "tiny.yaml",
                         [f"data.folders={SHARED / 'datasets' / 'T91'}", "validation.folder=null",
                          "train.iterations=20", "train.checkpoint_every=1000000"])
    trainer = Trainer(config, run_dir=out)
    monitor = Monitor(out, start=0, total=iterations, log_every=10**9, tensorboard=False, enabled=False)
    trainer._loop(monitor)
    start = _rss_mb()
    trainer.config.train.iterations = iterations
    trainer._loop(monitor)
    end = _rss_mb()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return start, end, peak


def _fraction(name: str, its: float, step_flops: int, rates: dict[str, float], precision: str) -> str:
    if name != "srresnet_x4" or precision not in rates:
        return "-"
    return f"{its * step_flops / 1e9 / rates[precision]:.0%} of {precision}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed iterations per measurement")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rss-iterations", type=int, default=500)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="scratch run folder (default: a temporary one)")
    args = parser.parse_args()
    if args.out is None:
        import tempfile

        args.out = Path(tempfile.mkdtemp(prefix="srgan_bench_"))
    logging.basicConfig(level=logging.WARNING)
    from machine import conv_rates, count_flops, rate_of

    from srgan.hardware import auto_precision, describe_cpu

    print(f"CPU: {describe_cpu()}; torch {torch.__version__}; `precision: auto` trains in "
          f"{NAMES[auto_precision(torch.device('cpu'))]} here")
    rates = {}
    with torch.inference_mode():
        for name, run in conv_rates(None).items():
            run()
            rates.update(rate_of({name: min(run() for _ in range(3))}))
    print("machine's 3x3 conv rate: " + ", ".join(f"{p} {r:.0f} GFLOP/s" for p, r in rates.items()))
    print(f"batch 16, crop 96, {args.steps} timed iterations after {args.warmup} warm-up\n")
    step_flops = 3 * 16 * count_flops("srresnet_x4", (24, 24))
    print("| model | path | vs plain loop | of its conv rate | it/s |\n|---|---|---|---|---|")
    for name in ("srresnet_x4", "srgan_x4"):
        plain = time_plain(name, args.warmup, args.steps)
        rows = [("trainer fp32 channels_last", ["train.channels_last=true"], "fp32"),
                ("trainer fp32 contiguous", ["train.channels_last=false"], "fp32"),
                ("trainer bf16 channels_last", ["train.channels_last=true", "train.precision=bf16"], "bf16"),
                ("trainer precision auto", ["train.channels_last=true", "train.precision=auto"],
                 NAMES[auto_precision(torch.device("cpu"))])]
        print(f"| {name} | plain loop (fp32, contiguous) | 1.00x | {_fraction(name, plain, step_flops, rates, 'fp32')} "
              f"| {plain:.3f} |")
        for label, overrides, precision in rows:
            speed = time_trainer(name, overrides, args.warmup, args.steps, args.out / name)
            print(f"| {name} | {label} | {speed / plain:.2f}x | "
                  f"{_fraction(name, speed, step_flops, rates, precision)} | {speed:.3f} |")
    print(f"bf16 autocast: SRResNet x4 output PSNR vs fp32 output {bf16_accuracy():.1f} dB")
    if not args.skip_rss:
        start, end, peak = rss_run(args.rss_iterations, args.out / "rss")
        print(f"tiny config, {args.rss_iterations} iterations: RSS {start:.0f} MB after 20, {end:.0f} MB at the end "
              f"({100 * (end - start) / start:+.1f}%), peak {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
