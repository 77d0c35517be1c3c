"""Checkpoints that survive a crash at any moment and load without unpickling code.

Each checkpoint is one `torch.save` file written to a temporary name and renamed into place
(`atomic_write`), so a file named `ckpt_*.pt` is always complete. Everything inside is tensors and
plain containers (RNG states included), so `torch.load(weights_only=True)` reads it.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srgan.errors import SrganError
from srgan.files import atomic_write, existing_file, remove_stale_temps, writable_folder
from srgan.runfiles.safe_load import safe_torch_load

log = logging.getLogger(__name__)
_NAME = re.compile(r"^ckpt_(\d+)\.pt$")


EXPORTS = ("generator.safetensors", "stage1.safetensors")
"""What a finished run exports into its run folder (`Trainer.export`)."""


def prepare_run_dir(run_dir: Path, *, resume: str | None, overwrite: bool, main: bool = True) -> None:
    """Check a run folder before any work: it must be writable, and a folder holding a run (its
    checkpoints or exported generator) is only continued (`resume`) or, with `overwrite`, emptied of
    that run (on the `main` rank): a new run never silently mixes its checkpoints with another's or
    replaces its weights. Temporary files of checkpoints killed mid-write are deleted."""
    run_dir = Path(run_dir)
    writable_folder(run_dir, "run folder")
    if resume and overwrite:
        raise SrganError("--resume continues the run in the run folder and --overwrite deletes it: choose one")
    checkpoints = list_checkpoints(run_dir)
    exports = [run_dir / name for name in EXPORTS if (run_dir / name).exists()]
    continues = resume is not None and (resume != "auto" or bool(checkpoints))
    if (checkpoints or exports) and not continues:
        held = ", ".join(([f"{len(checkpoints)} checkpoint(s)"] if checkpoints else []) + [p.name for p in exports])
        if not overwrite:
            how = "continue it with --resume auto, " if checkpoints else ""
            raise SrganError(f"run folder {run_dir} holds a previous run ({held}): {how}start over with --overwrite "
                             "(deletes it), or choose another --out")
        if main:
            for path in checkpoints + exports:
                path.unlink(missing_ok=True)
            log.info("--overwrite: deleted the previous run in %s (%s)", run_dir, held)
    if main:
        remove_stale_temps(checkpoint_dir(run_dir), lambda name: _NAME.match(name) is not None)
        remove_stale_temps(run_dir, EXPORTS.__contains__)


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: Path, iteration: int) -> Path:
    return checkpoint_dir(run_dir) / f"ckpt_{iteration:09d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _NAME.match(p.name)), key=checkpoint_iteration)


def checkpoint_iteration(path: Path) -> int:
    """The iteration a checkpoint file (`checkpoint_path`'s name) was written at."""
    return int(_NAME.match(Path(path).name).group(1))


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    return atomic_write(path, lambda tmp: torch.save(state, tmp), overwrite=True)  # the same iteration, saved again


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = existing_file(path, "checkpoint")
    state = safe_torch_load(path, "srgan checkpoint")
    if not isinstance(state, dict) or "iteration" not in state or "generator" not in state:
        raise SrganError(f"{path}: not an srgan training checkpoint")
    return state


def latest_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; a damaged newest one is reported and the previous one used."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load_checkpoint(path)
        except SrganError as exc:
            log.warning("ignoring %s", exc)
    return None


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    for path in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        path.unlink(missing_ok=True)


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) generator states as tensors and lists."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
