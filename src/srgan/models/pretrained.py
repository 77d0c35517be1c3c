"""Finding and reading pretrained files srgan does not ship: ImageNet trunks (VGG, AlexNet) and the
weights of the perceptual metrics (LPIPS, DISTS).

Where a file is looked for, in order: the file or folder the caller names (a `weights` option),
the folder named by the environment variable `SRGAN_WEIGHTS_DIR`, and torch hub's checkpoint
folder (`<torch.hub.get_dir()>/checkpoints`), where torchvision and the authors' code cache their
downloads. The first file there that holds the wanted tensors is used. There is never a
random-weights fallback: a loss or metric on an untrained network silently measures nothing, so a
missing file is a `MissingWeights` error, one line naming the file and where to put it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from srgan.errors import SrganError, one_line

ENV_VAR = "SRGAN_WEIGHTS_DIR"


class MissingWeights(SrganError):
    """No file holding a network's pretrained weights was found (as opposed to a corrupt one)."""


def hub_checkpoints() -> Path:
    """Torch hub's download folder: torchvision's `vgg19-dcbb9e9d.pth` and the like are cached here."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def read_state_dict(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    """The tensors of a `.safetensors` file or a `.pth` state dict (loaded with `weights_only`, so a
    pickle cannot run code); a `{"state_dict": ...}` wrapper is unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeights(f"{what} weights file not found: {path}")
    stat = path.stat()
    return dict(_read_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, what))


@lru_cache(maxsize=4)  # evaluation and validation build a metric more than once; a changed file is read again
def _read_cached(path: str, mtime_ns: int, size: int, what: str) -> tuple[tuple[str, torch.Tensor], ...]:
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say which one
        raise SrganError(f"cannot read {what} weights {path}: {one_line(exc)}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise SrganError(f"{path} does not hold a state dict")
    return tuple((k, v) for k, v in state.items() if isinstance(v, torch.Tensor))


@dataclass(frozen=True)
class WeightsPart:
    """One group of tensors a network needs: `what` names it in messages, `prefixes` mark its keys,
    `names` are the file names it comes under (the first is the one the error advises)."""

    what: str
    prefixes: tuple[str, ...]
    names: tuple[str, ...]


def search_folders(given: str | os.PathLike | None) -> list[Path]:
    """The folders searched, in order: `given` (or the folder of a given file), $SRGAN_WEIGHTS_DIR, torch hub's."""
    folders = []
    if given is not None:
        path = Path(given).expanduser()
        folders.append(path if path.is_dir() else path.parent)
    if os.environ.get(ENV_VAR):
        folders.append(Path(os.environ[ENV_VAR]).expanduser())
    folders.append(hub_checkpoints())
    return folders


def find_part(part: WeightsPart, given: str | os.PathLike | None = None) -> tuple[Path, dict[str, torch.Tensor]]:
    """(file, its tensors whose keys start with one of `part.prefixes`) from the first file that has any."""
    candidates = []
    if given is not None and not Path(given).expanduser().is_dir():
        if not Path(given).expanduser().is_file():
            raise MissingWeights(f"{part.what} weights file not found: {given}")
        candidates.append(Path(given).expanduser())
    candidates += [folder / name for folder in search_folders(given) for name in part.names]
    for path in candidates:
        if path.is_file():
            state = {k: v for k, v in read_state_dict(path, part.what).items() if k.startswith(part.prefixes)}
            if state:
                return path, state
    also = f" (or {', '.join(part.names[1:])})" if len(part.names) > 1 else ""
    raise MissingWeights(f"no {part.what} weights: put {part.names[0]}{also} in {hub_checkpoints()}, or in the "
                         f"folder ${ENV_VAR} names, or name its folder (srgan eval --metric-weights DIR)")
