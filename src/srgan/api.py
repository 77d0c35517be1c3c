"""srgan's public API: everything the command line and the web server do goes through here.

    import srgan
    sr = srgan.upscale(Image.open("photo.jpg"))                      # PIL / numpy / tensor
    srgan.upscale_files(["scans/"], "out/", options=srgan.UpscaleOptions(tile=256))
    srgan.upscale_files(["big/"], "out/", shard="auto", manifest="run.jsonl")   # under torchrun
    srgan.upscale_video("clip.mp4", codec="h265", crf=20)             # sound, timing, colours kept
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
from srgan.files import writable_folder
from srgan.inference.batch import Job, Summary
from srgan.inference.cache import ModelCache, Runner
from srgan.inference.manifest import ManifestTotals
from srgan.inference.options import UpscaleOptions, option_choices
from srgan.inference.upscale import output_size
from srgan.models.weights import DEFAULT_MODEL, load_model, save_model

__all__ = [
    "DEFAULT_MODEL",
    "ManifestTotals",
    "ModelCache",
    "ModelInfo",
    "Runner",
    "SrganError",
    "Summary",
    "UpscaleOptions",
    "WeightsInfo",
    "__version__",
    "create_model",
    "evaluate",
    "export_int8",
    "export_onnx",
    "export_weights",
    "format_table",
    "inspect_weights",
    "is_video_job",
    "list_models",
    "load_model",
    "manifest_summary",
    "one_line",
    "option_choices",
    "output_size",
    "save_model",
    "train",
    "upscale",
    "upscale_demo",
    "upscale_files",
    "upscale_video",
    "write_report",
]

log = logging.getLogger("srgan")
_CACHE = ModelCache()


def _options(options: UpscaleOptions | None, fields: dict[str, Any]) -> UpscaleOptions:
    options = options or UpscaleOptions()
    return options.replace(**fields) if fields else options


def get_runner(options: UpscaleOptions, cache: ModelCache | None = None) -> Runner:
    """The model of `options` ready to run, from `cache` (default: the process-wide one)."""
    return (cache if cache is not None else _CACHE).runner(options.model, device=options.device, precision=options.precision,
                                    backend=options.backend, strength=options.strength)


# ---------------------------------------------------------------- upscale
def upscale(image: Any, model: Any = None, *, options: UpscaleOptions | None = None, cache: ModelCache | None = None,
            runner: Runner | None = None, progress: bool = False, **fields: Any) -> Any:
    """Super-resolve `image` and return the same kind of object.

    image: a PIL image (any mode; P becomes RGB/RGBA, CMYK becomes RGB, I;16 stays 16-bit), a numpy
        array HxW or HxWxC (C = 1-4; uint8, uint16 or float in [0, 1]) or a tensor (C, H, W) or
        (N, C, H, W) float in [0, 1], or a `LoadedImage` (`srgan.imaging.io`: 16-bit colour, ICC
        profile and EXIF kept, as the web server reads uploads). The result has the same type, dtype
        and layout, clipped to [0, 1]. Refused (`SrganError`): empty images, NaN or infinite values,
        and float values far outside [0, 1] (0-255 data: divide by 255 first).
    model: a generator, a weights file, the name of shipped weights (default `DEFAULT_MODEL`), or an
        `.onnx` file from `export_onnx` / `export_int8` (run by OpenVINO or ONNX Runtime).
    options / fields: an `UpscaleOptions`, and any of its fields as keywords (`outscale=2`, `tile=256`).
    runner: the model already looked up with `get_runner(options)` (the web server checks the output
        size with it first), instead of looking it up again.
    """
    from srgan.inference.upscale import upscale_image

    if model is not None:
        fields["model"] = model
    opts = _options(options, fields)
    return upscale_image(image, runner or get_runner(opts, cache), opts, progress=progress)


def upscale_files(inputs: Sequence[str | Path], output: str | Path | None = None, *,
                  options: UpscaleOptions | None = None, suffix: str | None = None, overwrite: bool = False,
                  skip_existing: bool | None = None, recursive: bool = False, progress: bool = False,
                  on_file: Callable[[Job, str | None], None] | None = None, cache: ModelCache | None = None,
                  shard: str | None = None, manifest: str | Path | None = None, io_threads: int = 2) -> Summary:
    """Upscale image files, folders and glob patterns; write each output atomically next to its input
    as STEM + SUFFIX + extension (default suffix `_x{scale}`), or under `output` (a folder, or a file
    for one input). Every output is planned before any work starts: outputs that are inputs or that
    collide are refused; an existing output is refused, replaced (`overwrite`) or kept as done
    (`skip_existing`; None: keep when `output` is a folder, so a killed run resumes). A file that
    fails is skipped and named in the returned `Summary` (the rest still run), unless it is the only
    input, whose error is raised. `on_file(job, error or None)` is called after each file.

    Big jobs: `shard` "I/N" does part I of N (balanced by pixels), "auto" the part of this torchrun
    rank (on its own GPU, or on CPU with cores / local ranks threads), None everything; `manifest`
    appends one JSON line per file (`{rank}` in the name gives each rank its own file);
    `io_threads` read and write images while the model runs (0: no overlap)."""
    from srgan.inference import batch
    from srgan.inference.manifest import Manifest, manifest_path
    from srgan.inference.shard import resolve_shard

    opts = options or UpscaleOptions()
    part = resolve_shard(shard)
    if manifest is not None:
        manifest_path(manifest, part.index)  # checked before the model loads
    if not part.whole:
        opts = opts.replace(device=part.device(opts.device))
        if part.local_count > 1 and opts.backend == "torch" and not opts.device.startswith("cuda"):
            import torch

            torch.set_num_threads(part.cpu_threads())
    runner = get_runner(opts, cache)
    plan = batch.plan([str(i) for i in inputs], output=None if output is None else str(output),
                      suffix=batch.output_suffix(suffix, opts, runner.scale), fmt=opts.format, recursive=recursive,
                      overwrite=overwrite, skip_existing=skip_existing, shard=part)
    journal = Manifest(manifest, rank=part.index) if manifest is not None else None
    try:
        summary = batch.run_jobs(plan.jobs, runner, opts, strict=plan.single, progress=progress, on_file=on_file,
                                 io_threads=io_threads, record=journal.write if journal else None,
                                 label=part.label, position=part.local_rank, overwrite=overwrite)
    finally:
        if journal is not None:
            journal.close()
    summary.skipped[:0] = plan.missing
    summary.existing = len(plan.existing)
    summary.torchrun = part.torchrun
    done, skipped, kept, megapixels = part.meet_at_the_end(
        [len(summary.done), len(summary.skipped) - len(plan.missing), summary.existing, summary.megapixels])
    if part.torchrun and part.index == 0:
        summary.job_totals = (f"all {part.count} ranks: upscaled {done:.0f} image(s), skipped {skipped:.0f}, "
                              f"{kept:.0f} already done, {megapixels:.2f} output MP"
                              + (" (INCOMPLETE: every rank exits 0 under torchrun; the skipped files are named "
                                 "above and in the manifest)" if skipped else ""))
    return summary


def upscale_video(inputs: str | Path | Sequence[str | Path], output: str | Path | None = None, *,
                  model: Any = None, options: UpscaleOptions | None = None, video: Any = None, suffix: str | None = None,
                  overwrite: bool = False, recursive: bool = False, progress: bool = False,
                  cache: ModelCache | None = None, shard: str | None = None, **fields: Any) -> Any:
    """Upscale video files (or folders / globs of them) with sound, timing and colours kept; each
    output is STEM + SUFFIX + the input's extension next to it, under `output` (a folder), or
    `output` itself for one input. `model` and `options` as in `upscale`; `video`: a `VideoOptions`;
    `fields`: any field of either (`tile=256`, `codec="h265"`, `crf=20`, `start=10`, `frames=100`). Animated
    GIF / PNG become animated PNG and animated WebP stays animated WebP (Pillow: lossless unless
    `quality`); an `output` ending in .webp makes any input an animated WebP. A killed run
    rerun with the same arguments resumes from its last finished segment. `shard` splits whole
    files as in `upscale_files`. A failing file is skipped and named in the returned
    `VideoSummary`, unless it is the only input, whose error is raised."""
    from srgan.inference import batch, video_files
    from srgan.inference import video as vid
    from srgan.inference.options import field_names
    from srgan.inference.shard import resolve_shard

    upscale_fields = {k: fields.pop(k) for k in list(fields) if k in field_names()}
    opts = _options(options, upscale_fields | ({} if model is None else {"model": model}))
    settings = vid.with_fields(video, **fields)
    names = [str(inputs)] if isinstance(inputs, (str, Path)) else [str(i) for i in inputs]
    part = resolve_shard(shard)
    runner = get_runner(opts.replace(device=part.device(opts.device)), cache)
    jobs = video_files.plan_videos(names, output, batch.output_suffix(suffix, opts, runner.scale),
                                   recursive=recursive)
    summary = video_files.VideoSummary(label=part.label)
    for job in (jobs[i] for i in part.select([j.source for j in jobs])):
        if job.target.exists() and not overwrite and len(jobs) > 1:
            summary.existing += 1
            continue
        try:
            summary.done.append(vid.upscale_video_file(job.source, job.target, runner, opts, settings,
                                                       overwrite=overwrite, progress=progress))
        except SrganError as exc:
            if len(jobs) == 1:
                raise
            log.warning("skipped %s: %s", job.name, exc)
            summary.skipped.append((job.name, str(exc)))
    part.meet_at_the_end([len(summary.done), len(summary.skipped)])  # torchrun: no rank exits while others work
    return summary


def is_video_job(inputs: Sequence[str | Path], *, recursive: bool = False) -> bool:
    """Whether `srgan upscale INPUTS` means videos: a video file is named, or a folder holds videos
    and no images."""
    from srgan.inference.video_files import is_video_job as videos

    return videos([str(i) for i in inputs], recursive=recursive)


def manifest_summary(manifests: Sequence[str | Path]) -> ManifestTotals:
    """Totals of one or more manifests (file names or globs): files, pixels, MP/s, failures."""
    from srgan.inference.manifest import read_manifest, summarize

    return summarize(*read_manifest(manifests))


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
    name = f"astronaut{batch.output_suffix(None, opts, runner.scale)}.png"
    target = Path(output) if output is not None else Path(name)
    if target.is_dir():
        target = target / name
    job = Job(name="astronaut (scikit-image)", target=target, load=lambda: from_pil(Image.fromarray(data.astronaut())))
    batch.check_targets([job], overwrite=overwrite)
    return batch.run_jobs([job], runner, opts, strict=True, progress=progress, overwrite=overwrite)


# ---------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelInfo:
    """A preset (architecture + settings) and, where trained weights ship for it, their scores."""

    name: str
    architecture: str
    parameters: int
    scale: int
    description: str
    shipped: bool
    scores: dict[str, Any]


@dataclass(frozen=True)
class WeightsInfo:
    """What a weights file holds, found without running it (`inspect_weights`)."""

    path: Path
    layout: str  # "srgan", or the community layout it was recognised by
    architecture: str
    preset: str | None  # the preset whose network this is, if any
    scale: int
    parameters: int
    config: dict[str, Any]
    context: int | None  # LR pixels each tile carries for an exact result; None: tiles are blended
    tensors: int
    dtypes: tuple[str, ...]
    metadata: dict[str, Any]


def create_model(name: str, **overrides: Any) -> Any:
    """An untrained generator of the named preset; `load_model(name)` gives the trained one."""
    from srgan.models.registry import create

    return create(name, **overrides)


def list_models() -> list[ModelInfo]:
    """Every preset, and every shipped weights file, with its scores where its metadata records them."""
    import torch

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
            with torch.device("meta"):  # shapes only: no memory, no random initialisation
                model = create(name)
            scores, description = {}, describe(name)
        infos.append(ModelInfo(name, model.architecture, sum(p.numel() for p in model.parameters()),
                               model.config.scale, description, name in shipped, scores))
    return infos


def inspect_weights(path: str | Path, *, preset: str | None = None) -> WeightsInfo:
    """What a weights file (srgan's, or a community ESRGAN / Real-ESRGAN / BSRGAN / Compact /
    MSRResNet file) holds: layout, architecture, matching preset, scale, parameters, tiling context
    and metadata, read safely and checked against the network, which is never run or even allocated."""
    import torch

    from srgan.models.registry import build, names, preset_config
    from srgan.models.weights import check_fit, read_weights

    weights = read_weights(path, preset=preset)
    with torch.device("meta"):
        model = build(weights.config)
    check_fit(model, weights)
    match = next((n for n in names() if preset_config(n) == weights.config), None)
    return WeightsInfo(weights.path, weights.layout, model.architecture, match, model.scale,
                       sum(p.numel() for p in model.parameters()), weights.config.to_dict(), model.context(),
                       len(weights.state), tuple(sorted({str(t.dtype).removeprefix("torch.") for t in weights.state.values()})),
                       weights.metadata)


def export_weights(model: Any, path: str | Path, *, layout: str = "basicsr", overwrite: bool = False,
                   preset: str | None = None) -> Path:
    """Write a generator (object, weights file or shipped name) in a community layout that other tools
    read: `basicsr` (BasicSR / Real-ESRGAN keys; `.pth` with `params_ema`, or bare `.safetensors`).
    Refuses to replace an input or, without `overwrite`, an existing file."""
    from srgan.models.weights import save_basicsr

    if layout != "basicsr":
        raise SrganError(f"layout must be basicsr, got {layout!r} (for any other tool use ONNX: --onnx FILE)")
    generator, target = _export_source(model, path, overwrite=overwrite, preset=preset)
    try:
        return save_basicsr(generator, target, overwrite=overwrite)
    except SrganError as exc:
        raise SrganError(f"{model if isinstance(model, (str, Path)) else type(model).__name__}: {exc}") from exc


def export_onnx(model: Any, path: str | Path, *, dynamic: bool = True, opset: int = 18,
                size: tuple[int, int] = (256, 256), overwrite: bool = False, preset: str | None = None) -> Path:
    """Write a generator (object, weights file or shipped name) as ONNX, with the load-time rewrites of
    the torch path (batch norm folded, SRResNet's tail moved); refuses to replace an input or, without
    `overwrite`, an existing file."""
    from srgan.inference.onnx_backend import export_onnx as write_onnx

    generator, target = _export_source(model, path, overwrite=overwrite, preset=preset)
    if min(size) < 1:
        raise SrganError(f"size must be positive, got {size[0]} {size[1]}")
    return write_onnx(generator, target, dynamic=dynamic, opset=opset, sample_size=tuple(size), overwrite=overwrite)


def export_int8(model: Any, path: str | Path, calibrate: str | Path, *, check: str | Path | None = None,
                max_loss: float | None = None, crops: int = 40, overwrite: bool = False,
                preset: str | None = None, objective: str | None = None,
                metric_weights: str | None = None) -> Any:
    """Write a generator as an int8 ONNX model (dynamic shape), statically quantised with calibration
    crops of the images in `calibrate`, after checking on `check` (or on held-out calibration images)
    that it keeps what the model is for: at most `max_loss` (default 0.1 dB) PSNR-Y lost for a
    PSNR-oriented model, at most `max_loss` (default 0.01) LPIPS added for a GAN (LPIPS weights from
    `metric_weights` or $SRGAN_WEIGHTS_DIR). `objective` ("psnr" or "perceptual") defaults to the one
    the weights file records; see `srgan.export.quantize`. Returns a `QuantizationReport` (its
    `line()` describes what was written)."""
    from srgan.export.quantize import quantize_generator
    from srgan.models.weights import read_weights, training_objective

    generator, target = _export_source(model, path, overwrite=overwrite, preset=preset)
    if target.suffix.lower() != ".onnx":
        raise SrganError(f"ONNX files end in .onnx, got {target}")
    if objective is None:
        recorded = read_weights(model, preset=preset).metadata if isinstance(model, (str, Path)) else {}
        objective = training_objective(recorded)
    return quantize_generator(generator, target, calibrate, objective=objective, check=check, max_loss=max_loss,
                              crops=crops, metric_weights=metric_weights, overwrite=overwrite)


def _export_source(model: Any, path: str | Path, *, overwrite: bool, preset: str | None) -> tuple[Any, Path]:
    """The generator to export and its output path, refused if it is the input weights file or exists
    without `overwrite`."""
    target = Path(path)
    if isinstance(model, (str, Path)) and Path(model).is_file() and target.resolve() == Path(model).resolve():
        raise SrganError(f"output {target} is the input weights file")
    if target.is_dir():
        raise SrganError(f"output {target} is a folder: give a file name")
    if target.exists() and not overwrite:
        raise SrganError(f"{target} exists: pass --overwrite to replace it")
    writable_folder(target.parent, f"output {target}: folder")  # before the work, not after it
    generator = load_model(model, preset=preset) if isinstance(model, (str, Path)) else model
    return generator, target


# ---------------------------------------------------------------- evaluate and train
def evaluate(models: Sequence[str], datasets: Sequence[str | Path], scale: int, *,
             report_dir: str | Path | None = None, crops: int = 3, **options: Any) -> Any:
    """Score models ('bicubic', 'lanczos', shipped names, weights files) on folders of HR images under
    the published protocol, on real LR/HR pairs (`lr_folders=`) or on LR images alone (`datasets=[]`,
    `lr_folders=`: no reference); `metrics="psnr,ssim,lpips,dists,niqe"`, `crop=`, `metric_weights=`:
    see `srgan.evaluation.evaluate` for these and the other options. With `report_dir` (for
    `write_report`), `crops` images per dataset also get zoomed side-by-side windows."""
    from srgan.evaluation import evaluate as run

    if crops < 0:
        raise SrganError(f"crops must be >= 0, got {crops}")
    folders = [*datasets, *(options.get("lr_folders") or ())]
    if report_dir is not None and any(Path(report_dir).resolve() == Path(d).resolve() for d in folders):
        raise SrganError(f"report folder {report_dir} is a dataset folder: choose another folder for the report")
    if report_dir is not None:
        writable_folder(report_dir, "report folder")  # before the work, not after it
    return run(models, datasets, scale, crops=crops if report_dir is not None else 0, **options)


def format_table(results: Any, dataset: str) -> str:
    from srgan.evaluation import format_table as table

    return table(results, dataset)


def write_report(results: Any, out_dir: str | Path) -> dict[str, Path]:
    from srgan.evaluation import write_report as write

    return write(results, out_dir)


def degrade_files(sources: Sequence[str | Path], output: str | Path, *, degradation: Any = "realesrgan",
                  scale: int = 4, seed: int = 0, overwrite: bool = False) -> list[Path]:
    """Degraded LR copies of images (a training degradation by name or `{type: ..., options}`),
    seeded per file name: see what a model trains on, or make a fixed validation set."""
    from srgan.data.degrade_files import degrade_files as degrade

    return degrade(sources, output, degradation=degradation, scale=scale, seed=seed, overwrite=overwrite)


def train(config: Any, overrides: Sequence[str] = (), *, run_dir: str | Path | None = None,
          resume: str | None = None, overwrite: bool = False) -> Path | None:
    """Train from a YAML config file (with `section.key=value` overrides) or a `Config`; returns the
    exported generator on rank 0 (None on other ranks of a torchrun job). A run folder that holds a
    run (checkpoints, exported generator) is refused unless `resume` ("auto" or a checkpoint)
    continues it or `overwrite` deletes it first."""
    from srgan.training.config import load_config
    from srgan.training.trainer import train as run

    if isinstance(config, (str, Path)) or config is None:
        config = load_config(config, list(overrides))
    elif overrides:
        raise SrganError("overrides apply to a config file; edit the Config object instead")
    return run(config, run_dir=run_dir, resume=resume, overwrite=overwrite)
