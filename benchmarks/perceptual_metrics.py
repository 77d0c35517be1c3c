"""What LPIPS and DISTS add to an evaluation (issue 23): seconds to score pairs of 512x512 images,
against the time the shipped srgan_x4 takes to make one such output (128x128 LR -> 512x512).

    python benchmarks/perceptual_metrics.py              # 4 pairs, each metric, then srgan_x4
    python benchmarks/perceptual_metrics.py --pairs 100 --device cuda

A pair is scored as `srgan eval` scores it: the reference's features once (`reference`), the
output's features and the comparison (`score`). The inputs are 512x512 crops of BSD200 and noisy
copies (read in place from ../shared or SRGAN_SHARED); the metric weights come from
../shared/weights (or SRGAN_WEIGHTS_DIR). Prints seconds per pair, the projection to 100 pairs and
the ratio to the model's time per image, all measured in this run, and names the CPU.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from srgan.hardware import describe_cpu, resolve_device
from srgan.imaging.io import read_8bit
from srgan.metrics.feature_distance import build_metric

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRGAN_SHARED", ROOT.parent / "shared"))


def crops(count: int, size: int = 512) -> list[torch.Tensor]:
    """512x512 crops (BSD200 images are 481x321, so two side by side, cut to size)."""
    images = [read_8bit(p) for p in sorted((SHARED / "datasets" / "BSD200").glob("*.png"))[:2 * count]]
    out = []
    for a, b in zip(images[0::2], images[1::2], strict=True):
        a, b = (t.expand(3, -1, -1) for t in (a, b))
        h = min(a.shape[1], b.shape[1])
        wide = torch.cat([a[:, :h], b[:, :h]], dim=2)
        tall = torch.cat([wide, wide.flip(1)], dim=1)
        out.append(tall[:, :size, :size].contiguous())
    return out


def timed(fn, items) -> tuple[float, float]:
    """(wall, CPU) seconds per item: on a shared machine the CPU time says what the work costs."""
    wall, cpu = time.perf_counter(), time.process_time()
    for item in items:
        fn(*item)
    return (time.perf_counter() - wall) / len(items), (time.process_time() - cpu) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    hrs = crops(args.pairs)
    gen = torch.Generator().manual_seed(0)
    srs = [(hr.float() + 8 * torch.randn(hr.shape, generator=gen)).clamp(0, 255).round().byte() for hr in hrs]
    weights = os.environ.get("SRGAN_WEIGHTS_DIR", str(SHARED / "weights"))
    print(f"{describe_cpu()}, torch threads {torch.get_num_threads()}, device {device}; {len(hrs)} pairs of 512x512")
    per_pair = {}
    for name in ("lpips", "dists"):
        metric = build_metric(name, weights).to(device)
        metric.score(srs[0], metric.reference(hrs[0]))  # warm-up
        per_pair[name] = timed(lambda hr, sr, m=metric: m.score(sr, m.reference(hr)), list(zip(hrs, srs, strict=True)))
    from srgan.evaluation.runner import model_upscaler

    upscale = model_upscaler("srgan_x4", 4, device=str(device), precision="fp32", tile=0)
    lrs = [hr[:, ::4, ::4].contiguous() for hr in hrs]
    upscale(lrs[0])
    model, model_cpu = timed(upscale, [(lr,) for lr in lrs])
    print(f"srgan_x4 128x128 -> 512x512: {model:.3f} s/image (CPU {model_cpu:.3f} s)")
    for name, (wall, cpu) in per_pair.items():
        print(f"{name}: {wall:.3f} s/pair (CPU {cpu:.3f} s), {100 * wall:.0f} s per 100 pairs, "
              f"{wall / model:.2f}x the model's time")


if __name__ == "__main__":
    main()
