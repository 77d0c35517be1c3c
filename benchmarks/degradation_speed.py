"""Can the data keep up with the trainer? Degraded training pairs per second on one data-loader
worker (one thread, as DataLoader workers run) against the step time of the real-world PSNR stage
(configs/srresnet_real_x4.yaml: SRResNet x4, batch 16, HR crop 128, fp32 or `auto` precision, two
threads), both measured in this one run on this machine.

    python benchmarks/degradation_speed.py [--samples 64] [--steps 4]

One worker keeps up when a batch takes less time to degrade than a step takes to train: the line
"worker time per batch / step time" is that fraction (below 1.0: training never waits for data).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from srgan.hardware import describe_cpu

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def pairs_per_second(name: str, samples: int) -> float:
    from srgan.data.dataset import TrainPatches
    from srgan.data.degradations import build_degradation

    data = TrainPatches(SHARED / "datasets" / "T91", hr_crop=128, scale=4, sharpen_hr=name != "bicubic",
                        degradation=build_degradation({"type": name}), warn=False)
    data[0]
    start = time.perf_counter()
    for i in range(samples):
        data[i]
    return samples / (time.perf_counter() - start)


def step_seconds(steps: int, out: Path) -> float:
    from srgan.training.config import load_config
    from srgan.training.trainer import Trainer

    config = load_config(ROOT / "configs" / "srresnet_real_x4.yaml",
                         [f"data.folders={SHARED / 'datasets' / 'T91'}", "model.init=null", "validation.folder=null",
                          "validation.lr_folder=null", "validation.lpips=false", "validation.lpips_weights=null",
                          "data.workers=0", "train.ema=0"])
    trainer = Trainer(config, run_dir=out)
    lr, hr, _ = (torch.stack(t) for t in zip(*(trainer.data[i] for i in range(16))))
    trainer.train_step(lr, hr)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(lr, hr)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    import tempfile

    print(f"CPU: {describe_cpu()}")
    torch.set_num_threads(1)
    rates = {name: pairs_per_second(name, args.samples) for name in ("bicubic", "realesrgan", "bsrgan")}
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        step = step_seconds(args.steps, Path(tmp))
    print(f"trainer step (srresnet_real_x4, batch 16, crop 128, 2 threads): {step:.2f} s")
    for name, rate in rates.items():
        print(f"{name:>10}: {rate:6.1f} pairs/s per worker; worker time per batch / step time = "
              f"{16 / rate / step:.2f}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
