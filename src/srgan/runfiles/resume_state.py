"""A small resume state for training that spans sessions or machines: the generator and its EMA in
fp16, the iteration and the config, and nothing else (one `.safetensors` file of ~6 MB for SRResNet
instead of a 25 MB checkpoint with Adam moments and a discriminator).

What is dropped and how it comes back: Adam's moments restart from zero, so the learning rate is
warmed up linearly over `WARMUP` iterations after a compact resume (the first Adam steps from empty
moments move every weight by about the learning rate, which a trained network should not take at
full rate); the schedule continues from the stored iteration; the data order is a function of
(seed, iteration) (srgan.data.dataset), so the run sees the same batches it would have. A GAN
discriminator is kept too (fp16, so choose a small one: e.g. `{type: vgg, width: 32, pool_size: 1,
dense: 256}` is 1.2M parameters where Ledig's dense head alone is 18.9M); its Adam moments restart and
it re-warms together with the generator's learning rate.
fp16 keeps 11 significant bits, far finer than one Adam step at the learning rates used here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from srgan.errors import SrganError, one_line
from srgan.files import atomic_write, existing_file
from srgan.runfiles.checkpoint import load_checkpoint

FORMAT = "srgan-resume-1"
WARMUP = 500


def save_resume_state(path: str | Path, *, iteration: int, config: dict[str, Any],
                      generator: dict[str, torch.Tensor], ema: dict[str, torch.Tensor] | None,
                      discriminator: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the compact state; float tensors are stored in fp16."""
    from safetensors.torch import save_file

    def half(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().cpu()
        return (t.half() if t.is_floating_point() else t).contiguous()

    tensors = {f"generator.{k}": half(v) for k, v in generator.items()}
    for prefix, part in (("ema", ema), ("discriminator", discriminator)):
        if part is not None:
            tensors.update({f"{prefix}.{k}": half(v) for k, v in part.items()})
    meta = {"format": FORMAT, "iteration": str(int(iteration)), "config": json.dumps(config)}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta), overwrite=True)  # kept in place


def is_resume_state(path: str | Path) -> bool:
    return Path(path).suffix == ".safetensors"


def load_resume_state(path: str | Path) -> dict[str, Any]:
    """{'iteration', 'config', 'generator', 'ema', 'discriminator' (None when absent)}, tensors in fp32."""
    from safetensors import safe_open

    path = existing_file(path, "resume state")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iteration
        if meta.get("format") != FORMAT:
            raise SrganError(f"{path}: not an srgan resume state (format {meta.get('format')!r})")
        iteration, config = int(meta["iteration"]), json.loads(meta["config"])
        if not isinstance(config, dict) or iteration < 0:
            raise SrganError(f"{path}: damaged resume state: its config is not a mapping or its iteration is negative")
    except SrganError:
        raise
    except Exception as exc:  # a damaged header raises several types
        raise SrganError(f"{path}: not a readable resume state ({one_line(exc)})") from exc

    def part(prefix: str) -> dict[str, torch.Tensor] | None:
        found = {k[len(prefix):]: (v.float() if v.is_floating_point() else v)
                 for k, v in tensors.items() if k.startswith(prefix)}
        return found or None

    generator = part("generator.")
    if generator is None:
        raise SrganError(f"{path}: holds no generator weights")
    return {"iteration": iteration, "config": config, "generator": generator, "ema": part("ema."),
            "discriminator": part("discriminator.")}


def warmup_factor(iteration: int, start: int | None, length: int = WARMUP) -> float:
    """Learning-rate factor of a linear warm-up over `length` iterations from `start` (1 when there is none)."""
    if start is None:
        return 1.0
    return min(1.0, (iteration - start + 1) / length)


def main(argv: list[str] | None = None) -> int:
    """`python -m srgan.runfiles.resume_state CHECKPOINT OUT.safetensors`: compact a full checkpoint."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    try:
        state = load_checkpoint(args.checkpoint)
        path = save_resume_state(args.out, iteration=state["iteration"], config=state["config"],
                                 generator=state["generator"], ema=state.get("ema"),
                                 discriminator=state.get("discriminator"))
    except SrganError as exc:
        parser.exit(2, f"srgan: {exc}\n")
    print(f"{path}: iteration {state['iteration']}, {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
