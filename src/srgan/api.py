"""srgan's public API: everything the command line and the web server do goes through here.

    import srgan
    sr = srgan.upscale(Image.open("photo.jpg"))                      # PIL / numpy / tensor
    srgan.upscale_files(["scans/"], "out/", options=srgan.UpscaleOptions(tile=256))
    model = srgan.load_model("srresnet_x4"); srgan.list_models()
    results = srgan.evaluate(["bicubic", "srresnet_x4"], ["Set5"], scale=4)
    srgan.train("configs/srresnet_x4.yaml", ["train.iterations=1000"])

Options are validated once, where they are made (`UpscaleOptions`); models named by file or name are
loaded once per process in a thread-safe `ModelCache` (pass your own `cache=` to control it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srgan import __version__
from srgan.errors import SrganError, one_line
from srgan.inference.batch import Job, Summary
from srgan.inference.cache import ModelCache, Runner
from srgan.inference.options import UpscaleOptions
from srgan.models.weights import DEFAULT_MODEL, load_model, save_model

__all__ = [
    "DEFAULT_MODEL",
    "ModelCache",
    "ModelInfo",
    "Runner",
    "SrganError",
    "Summary",
    "UpscaleOptions",
    "__version__",
    "create_model",
    "evaluate",
    "export_int8",
    "export_onnx",
    "format_table",
    "list_models",
    "load_model",
    "one_line",
    "save_model",
    "train",
    "upscale",
    "upscale_demo",
    "upscale_files",
    "write_report",
]

log = logging.getLogger("srgan")
_CACHE = ModelCache()


def _options(options: UpscaleOptions | None, fields: dict[str, Any]) -> UpscaleOptions:
    options = options or UpscaleOptions()
    return options.replace(**fields) if fields else options


def get_runner(options: UpscaleOptions, cache: ModelCache | None = None) -> Runner:
    """The model of `options` ready to run, from `cache` (default: the process-wide one)."""
    return (cache or _CACHE).runner(options.model, device=options.device, precision=options.precision,
                                    backend=options.backend)


# ---------------------------------------------------------------- upscale
def upscale(image: Any, model: Any = None, *, options: UpscaleOptions | None = None, cache: ModelCache | None = None,
            progress: bool = False, **fields: Any) -> Any:
    """Super-resolve `image` and return the same kind of object.

    image: a PIL image (any mode; P becomes RGB/RGBA, CMYK becomes RGB, I;16 stays 16-bit), a numpy
        array HxW or HxWxC (C = 1-4; uint8, uint16 or float in [0, 1]) or a tensor (C, H, W) or
        (N, C, H, W) float in [0, 1]. The result has the same type, dtype and layout, clipped to [0, 1].
    model: a generator, a weights file, the name of shipped weights (default `DEFAULT_MODEL`), or an
        `.onnx` file from `export_onnx` / `export_int8` (run by OpenVINO or ONNX Runtime).
    options / fields: an `UpscaleOptions`, and any of its fields as keywords (`outscale=2`, `tile=256`).
    """
    from srgan.inference.upscale import upscale_image

    if model is not None:
        fields["model"] = model
    opts = _options(options, fields)
    return upscale_image(image, get_runner(opts, cache), opts, progress=progress)


def upscale_files(inputs: Sequence[str | Path], output: str | Path | None = None, *,
                  options: UpscaleOptions | None = None, suffix: str | None = None, overwrite: bool = False,
                  recursive: bool = False, progress: bool = False, on_file: Callable[[Job, str | None], None] | None = None,
                  cache: ModelCache | None = None) -> Summary:
    """Upscale image files, folders and glob patterns; write each output atomically next to its input
    as STEM + SUFFIX + extension (default suffix `_x{scale}`), or under `output` (a folder, or a file
    for one input). Every output is planned before any work starts: outputs that are inputs, that
    collide, or that exist without `overwrite` are refused. A file that fails is skipped and named in
    the returned `Summary` (the rest still run), unless it is the only input, whose error is raised.
    `on_file(job, error or None)` is called after each file."""
    from srgan.inference import batch

    opts = options or UpscaleOptions()
    files, missing = batch.collect_inputs([str(i) for i in inputs], recursive=recursive)
    if not files:
        if not missing:
            raise SrganError("no input given")
        name, reason = missing[0]
        raise SrganError(f"{name}: {reason}" if len(missing) == 1 else f"no images found in {len(missing)} inputs")
    for name, reason in missing:
        log.warning("skipped %s: %s", name, reason)
    runner = get_runner(opts, cache)
    jobs = batch.plan_jobs(files, output=None if output is None else str(output),
                           suffix=_suffix(suffix, opts, runner.scale), fmt=opts.format, overwrite=overwrite)
    summary = batch.run_jobs(jobs, runner, opts, strict=len(jobs) == 1 and not missing, progress=progress,
                             on_file=on_file)
    summary.skipped[:0] = missing
    return summary


def upscale_demo(output: str | Path | None = None, *, options: UpscaleOptions | None = None, overwrite: bool = False,
                 progress: bool = False, cache: ModelCache | None = None) -> Summary:
    """Upscale scikit-image's astronaut (512x512, shipped with scikit-image, no download) to `output`
    (default `astronaut_x{scale}.png`; a folder gets that name inside it)."""
    from PIL import Image
    from skimage import data

    from srgan.imaging.io import from_pil
    from srgan.inference import batch

    opts = options or UpscaleOptions()
    runner = get_runner(opts, cache)
    name = f"astronaut{_suffix(None, opts, runner.scale)}.png"
    target = Path(output) if output is not None else Path(name)
    if target.is_dir():
        target = target / name
    job = Job(name="astronaut (scikit-image)", target=target, load=lambda: from_pil(Image.fromarray(data.astronaut())))
    batch.check_targets([job], overwrite=overwrite)
    return batch.run_jobs([job], runner, opts, strict=True, progress=progress)


def _suffix(suffix: str | None, options: UpscaleOptions, scale: int) -> str:
    if suffix is None:
        return f"_x{options.outscale if options.outscale is not None else scale:g}"
    if "/" in suffix or "\\" in suffix or suffix in (".", ".."):
        raise SrganError(f"suffix {suffix!r} must not contain a path separator")
    return suffix


# ---------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelInfo:
    """A preset (architecture + settings) and, where trained weights ship for it, their scores."""

    name: str
    parameters: int
    scale: int
    description: str
    shipped: bool
    scores: dict[str, Any]


def create_model(name: str, **overrides: Any) -> Any:
    """An untrained generator of the named preset; `load_model(name)` gives the trained one."""
    from srgan.models.registry import create

    return create(name, **overrides)


def list_models() -> list[ModelInfo]:
    """Every preset, and every shipped weights file, with its scores where its metadata records them."""
    from srgan.models.registry import create, describe, names
    from srgan.models.weights import SHIPPED_DIR, read_metadata, shipped_weights

    shipped = set(shipped_weights())
    infos = []
    for name in sorted(set(names()) | shipped):
        if name in shipped:
            meta = read_metadata(SHIPPED_DIR / f"{name}.safetensors")
            model = load_model(name)
            scores = meta.get("scores") or ({"Set5": {"psnr": meta["val_psnr_y"]}} if "val_psnr_y" in meta else {})
            description = meta.get("description") or describe(meta.get("preset", name))
        else:
            model, scores, description = create(name), {}, describe(name)
        infos.append(ModelInfo(name, sum(p.numel() for p in model.parameters()), model.config.scale, description,
                               name in shipped, scores))
    return infos


def export_onnx(model: Any, path: str | Path, *, dynamic: bool = True, opset: int = 18,
                size: tuple[int, int] = (256, 256), overwrite: bool = False, preset: str | None = None) -> Path:
    """Write a generator (object, weights file or shipped name) as ONNX, with the load-time rewrites of
    the torch path (batch norm folded, SRResNet's tail moved); refuses to replace an input or, without
    `overwrite`, an existing file."""
    from srgan.inference.onnx_backend import export_onnx as write_onnx

    generator, target = _export_source(model, path, overwrite=overwrite, preset=preset)
    if min(size) < 1:
        raise SrganError(f"size must be positive, got {size[0]} {size[1]}")
    return write_onnx(generator, target, dynamic=dynamic, opset=opset, sample_size=tuple(size))


def export_int8(model: Any, path: str | Path, calibrate: str | Path, *, check: str | Path | None = None,
                max_loss: float = 0.1, crops: int = 40, overwrite: bool = False,
                preset: str | None = None) -> Any:
    """Write a generator as an int8 ONNX model (dynamic shape), statically quantised with calibration
    crops of the images in `calibrate`, after checking on `check` (or on held-out calibration images)
    that it loses at most `max_loss` dB PSNR-Y against fp32; see `srgan.inference.quantize`. Returns
    a `QuantizationReport` (its `line()` describes what was written)."""
    from srgan.inference.quantize import quantize_generator

    generator, target = _export_source(model, path, overwrite=overwrite, preset=preset)
    if target.suffix.lower() != ".onnx":
        raise SrganError(f"ONNX files end in .onnx, got {target}")
    return quantize_generator(generator, target, calibrate, check=check, max_loss=max_loss, crops=crops)


def _export_source(model: Any, path: str | Path, *, overwrite: bool, preset: str | None) -> tuple[Any, Path]:
    target = Path(path)
    if isinstance(model, (str, Path)) and Path(model).is_file() and target.resolve() == Path(model).resolve():
        raise SrganError(f"output {target} is the input weights file")
    if target.exists() and not overwrite:
        raise SrganError(f"{target} exists: pass --overwrite to replace it")
    generator = load_model(model, preset=preset) if isinstance(model, (str, Path)) else model
    return generator, target


# ---------------------------------------------------------------- evaluate and train
def evaluate(models: Sequence[str], datasets: Sequence[str | Path], scale: int, *,
             report_dir: str | Path | None = None, crops: int = 3, **options: Any) -> Any:
    """Score models ('bicubic', 'lanczos', shipped names, weights files) on folders of HR images under
    the published protocol; see `srgan.evaluation.evaluate` for the options. With `report_dir` (for
    `write_report`), `crops` images per dataset also get zoomed side-by-side windows."""
    from srgan.evaluation import evaluate as run

    if crops < 0:
        raise SrganError(f"crops must be >= 0, got {crops}")
    if report_dir is not None and any(Path(report_dir).resolve() == Path(d).resolve() for d in datasets):
        raise SrganError(f"report folder {report_dir} is a dataset folder: choose another folder for the report")
    return run(models, datasets, scale, crops=crops if report_dir is not None else 0, **options)


def format_table(results: Any, dataset: str) -> str:
    from srgan.evaluation import format_table as table

    return table(results, dataset)


def write_report(results: Any, out_dir: str | Path) -> dict[str, Path]:
    from srgan.evaluation import write_report as write

    return write(results, out_dir)


def train(config: Any, overrides: Sequence[str] = (), *, run_dir: str | Path | None = None,
          resume: str | None = None) -> Path | None:
    """Train from a YAML config file (with `section.key=value` overrides) or a `Config`; returns the
    exported generator on rank 0 (None on other ranks of a torchrun job)."""
    from srgan.training.config import load_config
    from srgan.training.trainer import train as run

    if isinstance(config, (str, Path)) or config is None:
        config = load_config(config, list(overrides))
    elif overrides:
        raise SrganError("overrides apply to a config file; edit the Config object instead")
    return run(config, run_dir=run_dir, resume=resume)
