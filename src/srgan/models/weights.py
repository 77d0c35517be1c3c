"""Weight files: `.safetensors` with the network's architecture and config in its metadata, so a
file alone is enough to rebuild the network through the architecture registry. `.pth` files are
read with `weights_only=True`, never unpickled."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.files import atomic_write
from srgan.models.generator import Generator
from srgan.models.registry import build, build_from_dict, names, preset_config

FORMAT = "srgan-generator-1"
OLD_ARCHITECTURE = "srresnet"
"""What weight and ONNX files written before architectures were named (no architecture key) hold."""
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = "srresnet_x4"
"""The shipped weights `srgan upscale` uses by default: SRResNet x4 pre-trained with an L1 loss."""


def shipped_weights() -> list[str]:
    """Names of the trained weight files that ship inside the package."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.safetensors"))


def save_model(model: Generator, path: str | os.PathLike, **metadata: Any) -> Path:
    """Write `model` as `.safetensors` with its architecture, config and any JSON-able metadata
    (preset, scale, training summary, ...)."""
    from safetensors.torch import save_file

    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    if Path(path).suffix != ".safetensors":
        raise SrganError(f"weights are saved as .safetensors, got {path}")
    info = {"format": FORMAT, "architecture": model.architecture, "config": model.config.to_dict(),
            "scale": model.scale, **metadata}
    header = {key: json.dumps(value) for key, value in info.items()}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a damaged header
        raise SrganError(f"{path}: not a readable .safetensors file ({exc})") from None
    return {key: json.loads(value) for key, value in header.items()}


def load_model(path_or_name: str | os.PathLike, *, preset: str | None = None, device: str | torch.device = "cpu",
               ) -> Generator:
    """A generator in eval mode from a weights file, or from the name of weights shipped in the
    package. A plain `.pth` state dict needs `preset=` to know its architecture."""
    path = _resolve(path_or_name)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        meta = read_metadata(path)
        if "config" not in meta and preset is None:
            raise SrganError(f"{path} has no srgan config in its metadata: pass preset=NAME")
        model = _build(meta, preset, path)
        state = load_file(str(path))
    else:
        state, model = _load_pth(path, preset)
    _load_state(model, state, path)
    return model.to(device).eval()


def _resolve(path_or_name: str | os.PathLike) -> Path:
    path = Path(path_or_name)
    if path.is_file():
        return path
    name = str(path_or_name)
    shipped = SHIPPED_DIR / f"{name}.safetensors"
    if shipped.is_file():
        return shipped
    if name in names():
        have = ", ".join(shipped_weights()) or "none"
        raise SrganError(f"no trained weights ship for preset {name!r} (shipped: {have}); "
                         "train one with `srgan train` or pass a weights file")
    if path.suffix or os.sep in name:
        raise SrganError(f"weights file not found: {path}")
    raise SrganError(f"unknown model {name!r}: not a file, shipped weights ({', '.join(shipped_weights()) or 'none'}) "
                     f"or preset ({', '.join(names())})")


def _build(meta: dict[str, Any], preset: str | None, path: Path) -> Generator:
    """The untrained network a file's metadata describes ({"architecture", "config"}), else the preset's."""
    if not isinstance(meta.get("config"), dict):
        return build(preset_config(preset))
    try:
        return build_from_dict(meta.get("architecture", OLD_ARCHITECTURE), meta["config"])
    except SrganError as exc:
        raise SrganError(f"{path}: {exc}") from None


def _load_pth(path: Path, preset: str | None) -> tuple[dict[str, torch.Tensor], Generator]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - the safe unpickler refuses anything but tensors and containers
        raise SrganError(f"{path}: cannot be loaded safely as weights ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise SrganError(f"{path}: expected a state dict, found {type(obj).__name__}")
    meta = {"config": obj.get("config"), "architecture": obj.get("architecture", OLD_ARCHITECTURE)}
    for key in ("generator_ema", "params_ema", "generator", "params", "state_dict"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not (isinstance(meta["config"], dict) and "scale" in meta["config"]):
        if preset is None:
            raise SrganError(f"{path} does not say which network it holds: pass preset=NAME")
        meta = {}
    return obj, _build(meta, preset, path)


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise SrganError(f"{path}: weights do not fit the network ({first})") from None
