"""Weight files: `.safetensors` with the network's architecture and config in its metadata, so a
file alone is enough to rebuild the network through the architecture registry; community files
without a config are recognised by their tensor names and shapes (`srgan.models.foreign`). Other
files (`.pth`, `.pt`, `.ckpt`) are read with `weights_only=True`, never unpickled."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srgan.errors import SrganError, one_line
from srgan.files import atomic_write, existing_file
from srgan.models.foreign import detect
from srgan.models.generator import Generator, GeneratorConfig
from srgan.models.registry import build, config_from_dict, names, preset_config
from srgan.runfiles import resume_state
from srgan.runfiles.safe_load import safe_torch_load

FORMAT = "srgan-generator-1"
OLD_ARCHITECTURE = "srresnet"
"""What weight and ONNX files written before architectures were named (no architecture key) hold."""
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = "srgan_x4"
"""The shipped weights `srgan upscale` uses by default: the GAN-trained x4 model (realistic textures);
`srresnet_x4` is its PSNR-oriented starting point (smoother, higher PSNR)."""


def shipped_weights() -> list[str]:
    """Names of the trained weight files that ship inside the package."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.safetensors"))


def save_model(model: Generator, path: str | os.PathLike, *, overwrite: bool = False, **metadata: Any) -> Path:
    """Write `model` as `.safetensors` with its architecture, config and any JSON-able metadata
    (preset, scale, training summary, ...); an existing file is replaced only with `overwrite`."""
    from safetensors.torch import save_file

    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    if Path(path).suffix != ".safetensors":
        raise SrganError(f"weights are saved as .safetensors, got {path}")
    info = {"format": FORMAT, "architecture": model.architecture, "config": model.config.to_dict(),
            "scale": model.scale, **metadata}
    header = {key: json.dumps(value) for key, value in info.items()}
    tensors = _cpu_tensors(model)
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header), overwrite=overwrite)


def save_basicsr(model: Generator, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write `model` in the layout of its BasicSR / Real-ESRGAN equivalent (`Generator.basicsr_class`),
    which Real-ESRGAN's scripts and spandrel-based tools (chaiNNer, ComfyUI, A1111) read: `.pth` as
    {"params_ema": state dict} (the key Real-ESRGAN's inference script loads first), `.safetensors`
    as the bare state dict. srgan's module names are those classes' names, so no tensor is renamed."""
    from safetensors.torch import save_file

    model = getattr(model, "module", model)
    if model.basicsr_class() is None:
        raise SrganError(f"{model.architecture} with {model.config} has no exact BasicSR / Real-ESRGAN "
                         "equivalent (they have RRDBNet x1/x2/x4, SRVGGNetCompact and MSRResNet; srgan's "
                         "SRResNet variants use PReLU and 9x9 convs where MSRResNet has LeakyReLU/ReLU and "
                         "3x3): export it with --onnx FILE (dynamic height and width) for other tools")
    tensors = _cpu_tensors(model)
    suffix = Path(path).suffix.lower()
    if suffix == ".safetensors":
        return atomic_write(path, lambda tmp: save_file(tensors, tmp), overwrite=overwrite)
    if suffix in (".pth", ".pt"):
        return atomic_write(path, lambda tmp: torch.save({"params_ema": tensors}, tmp), overwrite=overwrite)
    raise SrganError(f"BasicSR-layout weights are written as .pth or .safetensors, got {path}")


def _cpu_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """A `.safetensors` header's metadata, JSON values decoded (srgan writes JSON; other tools write
    plain strings such as {"format": "pt"}, kept as they are)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as exc:  # safetensors raises several types for a damaged header
        raise SrganError(f"{path}: not a readable .safetensors file ({one_line(exc)})") from exc
    return {key: _json_or_text(value) for key, value in header.items()}


def training_objective(metadata: dict[str, Any]) -> str:
    """"perceptual" for weights trained against a discriminator or a feature loss (a GAN: judged by
    how it looks, LPIPS), else "psnr" (judged by PSNR): read from the training config a srgan file
    records; files without one are taken as PSNR-oriented."""
    training = metadata.get("training")
    training = _json_or_text(training) if isinstance(training, str) else training
    config = training.get("config") if isinstance(training, dict) else metadata.get("training_config")
    losses = config.get("losses") if isinstance(config, dict) else None
    if not isinstance(losses, dict):
        return "psnr"
    kinds = {term.get("type") for term in losses.values() if isinstance(term, dict)}
    perceptual = {"perceptual", "bce", "lsgan", "hinge", "ragan"}
    return "perceptual" if kinds & perceptual or isinstance(config.get("discriminator"), dict) else "psnr"


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to be srgan's
        return value


@dataclass
class WeightsFile:
    """What a weight file holds, read without building or running the network: the architecture's
    config, the layout it was recognised by ("srgan" for srgan's own files), its tensors under the
    network's names, and its metadata (srgan's, or whatever a community .safetensors header holds)."""

    path: Path
    layout: str
    config: GeneratorConfig
    state: dict[str, torch.Tensor]
    metadata: dict[str, Any]


def read_weights(path_or_name: str | os.PathLike, *, preset: str | None = None) -> WeightsFile:
    """A weights file (or shipped name) read safely: `.safetensors`, or any other file with
    `torch.load(weights_only=True)`, which refuses everything but tensors and plain containers. The
    network comes from srgan's metadata (or, for srgan's training checkpoints and resume states, the
    run's config; their EMA weights are read), else from `preset`, else from the tensor names and
    shapes (`srgan.models.foreign`: ESRGAN, Real-ESRGAN, BSRGAN, Compact, MSRResNet)."""
    path = _resolve(path_or_name)
    if path.suffix.lower() == ".onnx":
        raise SrganError(f"{path}: an ONNX model, not a weights file (`srgan upscale --model {path}` runs it)")
    state, meta = _read_tensors(path)
    layout = "srgan"
    if meta.get("format") == FORMAT and not isinstance(meta.get("config"), dict):
        raise SrganError(f"{path}: damaged srgan metadata: 'config' is not a JSON mapping of the network's settings")
    if isinstance(meta.get("config"), dict):
        config = _build_config(meta, path)
    elif isinstance(meta.get("training_config"), dict):
        config = _config_of_run(meta["training_config"], path)
    elif preset is not None:
        config = preset_config(preset)
        with contextlib.suppress(SrganError):  # a community file named with its preset: srgan's names
            state = detect(state).state
    else:
        try:
            found = detect(state)
        except SrganError as exc:
            raise SrganError(f"{path}: {exc}") from exc
        layout, config, state = found.layout, found.config, found.state
    return WeightsFile(path, layout, config, state, meta)


def load_model(path_or_name: str | os.PathLike, *, preset: str | None = None, device: str | torch.device = "cpu",
               ) -> Generator:
    """A generator in eval mode from a weights file (srgan's own, or a community ESRGAN / Real-ESRGAN /
    BSRGAN / Compact / MSRResNet file, see `read_weights`), or from the name of weights shipped in the
    package. `preset` names the network of a bare srgan state dict, which does not record it."""
    weights = read_weights(path_or_name, preset=preset)
    with torch.device("meta"):  # shapes only, checked against the file before any memory is taken
        model = build(weights.config)
    check_fit(model, weights)
    check_finite(weights)
    if _all_saved(model):  # the file's tensors become the network's: no random initialisation, no copy
        model.load_state_dict(_own_tensors(weights.state, model.state_dict()), strict=True, assign=True)
    else:  # state the file does not hold (non-persistent buffers) is made by the constructor
        model = build(weights.config)
        model.load_state_dict(weights.state, strict=True)
    return model.to(device).eval()


def _all_saved(model: nn.Module) -> bool:
    """Whether every parameter and buffer of `model` is in its state dict."""
    return len(model.state_dict()) == len(list(model.parameters())) + len(list(model.buffers()))


def _own_tensors(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` in the network's dtypes, each tensor with memory of its own (a file may store views
    of one storage, which in-place rewrites such as batch-norm folding must not see through)."""
    owned, seen = {}, set()
    for key, tensor in state.items():
        tensor = tensor.to(expected[key].dtype)
        storage = tensor.untyped_storage()
        if storage.data_ptr() in seen or storage.nbytes() != tensor.numel() * tensor.element_size():
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        owned[key] = tensor
    return owned


def check_finite(weights: WeightsFile) -> None:
    """One line naming the first tensor of the file holding NaN or infinity once in float32, the
    dtype the network computes in (a float64 1e300 becomes infinity when cast): such a network's
    output is NaN, written as a black image."""
    for name, tensor in weights.state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor.float()).all()):
            bad = int((~torch.isfinite(tensor.float())).sum())
            raise SrganError(f"{weights.path}: tensor {name} holds {bad} NaN, infinite or (in float32) overflowing "
                             f"value(s) of {tensor.numel()}: the weights are damaged (a diverged training run?)")


def check_fit(model: nn.Module, weights: WeightsFile) -> None:
    """One line naming the first missing, unexpected and wrongly shaped tensor, if any (`model` may
    live on the meta device: only names and shapes are compared)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.state.items()}
    problems = []
    missing = [k for k in expected if k not in found]
    if missing:
        problems.append(f"missing {_first(missing)}")
    extra = sorted(k for k in found if k not in expected)
    if extra:
        problems.append(f"unexpected {_first(extra)}")
    wrong = [k for k in expected if k in found and found[k] != expected[k]]
    if wrong:
        k = wrong[0]
        problems.append(f"{k} has shape {found[k]} where the network needs {expected[k]}"
                        + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""))
    if problems:
        network = getattr(model, "architecture", type(model).__name__)
        raise SrganError(f"{weights.path}: the tensors do not fit the {weights.layout} {network} network: "
                         + "; ".join(problems))


def _first(keys: list[str]) -> str:
    return keys[0] + (f" (and {len(keys) - 1} more)" if len(keys) > 1 else "")


def _resolve(path_or_name: str | os.PathLike) -> Path:
    path = Path(path_or_name)
    if os.path.lexists(path):
        return existing_file(path, "weights file")
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


def _config_of_run(config: dict[str, Any], path: Path) -> GeneratorConfig:
    """The network a training config names: `model.preset` with its `model.generator` overrides."""
    model = config.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("preset"), str):
        raise SrganError(f"{path}: its training config names no model.preset")
    try:
        return preset_config(model["preset"], **(model.get("generator") or {}))
    except (SrganError, TypeError) as exc:
        raise SrganError(f"{path}: {one_line(exc)}") from exc


def _build_config(meta: dict[str, Any], path: Path) -> GeneratorConfig:
    """The config a file's srgan metadata describes ({"architecture", "config"})."""
    architecture = meta.get("architecture", OLD_ARCHITECTURE)
    if not isinstance(architecture, str):
        raise SrganError(f"{path}: damaged srgan metadata: architecture {architecture!r} is not a name")
    try:
        return config_from_dict(architecture, meta["config"])
    except SrganError as exc:
        raise SrganError(f"{path}: {exc}") from exc


CONTAINERS = ("params_ema", "generator", "params", "state_dict", "model")
"""Keys under which training code nests a generator's state dict, most wanted first: BasicSR /
Real-ESRGAN (`params_ema` before `params`, as their inference script prefers), Lightning and other
trainers (`generator`, `state_dict`, `model`). srgan's own checkpoints are read by their layout."""


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict of a file (containers unwrapped, DataParallel's `module.` prefix removed) and
    its metadata; for srgan's training checkpoints and resume states, the EMA weights (else the raw
    generator's) with the metadata an exported generator has (`_run_metadata`)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        meta = read_metadata(path)
        if meta.get("format") == resume_state.FORMAT:
            run = resume_state.load_resume_state(path)
            return run["ema"] or run["generator"], _run_metadata(run["config"], run["iteration"], path)
        try:
            obj: Any = load_file(str(path))
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise SrganError(f"{path}: not a readable .safetensors file ({one_line(exc)})") from exc
    else:
        obj, meta = safe_torch_load(path), {}
        if not isinstance(obj, dict):
            raise SrganError(f"{path}: expected a state dict, found {type(obj).__name__}")
        if isinstance(obj.get("config"), dict) and "scale" in obj["config"]:
            meta = {"config": obj["config"], "architecture": obj.get("architecture", OLD_ARCHITECTURE)}
        elif isinstance(obj.get("config"), dict) and isinstance(obj.get("generator"), dict):  # srgan's checkpoint
            meta = _run_metadata(obj["config"], obj.get("iteration"), path)
            obj = obj["ema"] if isinstance(obj.get("ema"), dict) else obj["generator"]
    while isinstance(obj, dict) and (key := next((k for k in CONTAINERS if isinstance(obj.get(k), dict)), None)):
        obj = obj[key]
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise SrganError(f"{path}: holds no tensors")
    return {k.removeprefix("module."): v for k, v in _checked_tensors(state, path).items()}, meta


def _checked_tensors(state: dict[Any, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """`state` if every key is a name and every tensor a dense real tensor with data and a positive
    size in every dimension (the layout detectors divide by channel counts), else one line naming
    the first that is not."""
    for key, tensor in state.items():
        name = repr(key)[:80]
        if not isinstance(key, str):
            raise SrganError(f"{path}: tensor key {name} is not a name: not a state dict of a network")
        problem = ("is on the meta device (no data)" if tensor.is_meta
                   else "is sparse" if tensor.layout != torch.strided
                   else f"is complex ({str(tensor.dtype).removeprefix('torch.')})" if tensor.is_complex()
                   else f"has an empty shape {tuple(tensor.shape)}" if tensor.dim() and 0 in tensor.shape
                   else None)
        if problem:
            raise SrganError(f"{path}: tensor {name} {problem}: not the weights of a network")
    return state


def _run_metadata(config: Any, iteration: Any, path: Path) -> dict[str, Any]:
    """What `Trainer.export` writes into generator.safetensors, for a run's checkpoint or resume state."""
    if not isinstance(config, dict):
        raise SrganError(f"{path}: damaged training state: its config is {type(config).__name__}, not a mapping")
    model = config.get("model")
    return {"preset": model.get("preset") if isinstance(model, dict) else None, "iterations": iteration,
            "training_config": config}
