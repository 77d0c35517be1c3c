"""Turn a training run into weights shipped inside the package, with their scores in the metadata.

    python tools/ship_weights.py runs/srresnet_x4/checkpoints/ckpt_000020000.pt srresnet_x4 \
        --description "SRResNet x4 without batch norm, L1" --hardware "2-core AMD EPYC (Zen 4), bf16" \
        --wall-hours 9.5

SOURCE is a training checkpoint (.pt), a compact resume state or an exported generator
(.safetensors); the EMA weights are used where the file has them. Before anything is written:
- the weights are stored in fp16 only if that changes no 8-bit output on Set5 by more than one level
  (else fp32);
- Set5, Set14 and BSD100 are scored under the published protocol (PSNR / SSIM on Y, crop = scale,
  MATLAB-bicubic LR, fp32 on the CPU), and NIQE on BSD100 with the authors' model.
The scores go into the file's metadata (`srgan models` shows them; a test checks that Set5 still
reproduces them) and a Markdown row is printed for MODELS.md. Needs ../shared (or SRGAN_SHARED).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from srgan import api
from srgan.models.registry import build
from srgan.models.weights import SHIPPED_DIR, read_weights

SHARED = Path(os.environ.get("SRGAN_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
DATASETS = ("Set5", "Set14", "BSD100")


def load_source(path: Path) -> tuple[torch.nn.Module, dict]:
    """The generator (EMA weights where present) and what is known of its training."""
    weights = read_weights(path)
    model = build(weights.config)
    model.load_state_dict(weights.state)
    meta = weights.metadata
    return model.eval(), {"preset": meta.get("preset"), "iterations": meta.get("iterations"),
                          "config": meta.get("training_config")}


def fp16_max_level_change(model: torch.nn.Module) -> int:
    """Largest change of any 8-bit output pixel on Set5 (MATLAB-bicubic LR) when the weights are rounded to fp16."""
    from srgan.data.degradation import benchmark_hr, degrade
    from srgan.imaging.folders import list_images

    half = build(model.config)
    half.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    worst = 0
    for path in list_images(SHARED / "datasets" / "Set5"):
        lr = degrade(benchmark_hr(path, model.scale), model.scale).permute(1, 2, 0).numpy()
        a, b = (api.upscale(lr, m.eval(), tile=None, device="cpu", precision="fp32").astype(int) for m in (model, half))
        worst = max(worst, int(np.abs(a - b).max()))
    return worst


def score(weights: Path, scale: int) -> dict[str, dict[str, float]]:
    results = api.evaluate([str(weights)], [SHARED / "datasets" / d for d in DATASETS], scale, device="cpu",
                           precision="fp32", metrics="psnr,ssim,niqe")
    scores = {}
    for dataset in DATASETS:
        s = results.summary(dataset, str(weights))
        scores[dataset] = {"psnr": round(s["psnr"], 4), "ssim": round(s["ssim"], 4)}
        if dataset == "BSD100" and s["niqe"] is not None:
            scores[dataset]["niqe"] = round(s["niqe"], 4)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("name", help="shipped name, e.g. srresnet_x4 (replaces src/srgan/weights/NAME.safetensors)")
    parser.add_argument("--description", required=True)
    parser.add_argument("--hardware", required=True, help="where it was trained, e.g. '2-core AMD EPYC, bf16'")
    parser.add_argument("--wall-hours", type=float, required=True, help="training wall time in hours")
    parser.add_argument("--data", default="T91 + BSD200 + BSDS500test200 (491 images)")
    args = parser.parse_args()

    model, info = load_source(args.source)
    levels = fp16_max_level_change(model)
    storage = "fp16" if levels <= 1 else "fp32"
    print(f"fp16 weights change Set5 outputs by at most {levels} level(s): storing {storage}")
    if storage == "fp16":
        model = model.half()
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / f"{args.name}.safetensors"
        metadata = {"preset": info["preset"], "description": args.description, "storage": storage,
                    "training": {"iterations": info["iterations"], "data": args.data, "hardware": args.hardware,
                                 "wall_hours": args.wall_hours, "config": info["config"]}}
        api.save_model(model, staged, **metadata)
        scores = score(staged, model.scale)
        target = api.save_model(model, SHIPPED_DIR / f"{args.name}.safetensors", overwrite=True, scores=scores,
                                **metadata)
    row = " | ".join(f"{scores[d]['psnr']:.2f} / {scores[d]['ssim']:.4f}" for d in DATASETS)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
    print(f"| {args.name} | {row} | {scores['BSD100'].get('niqe', float('nan')):.2f} | {info['iterations']} |")


if __name__ == "__main__":
    main()
