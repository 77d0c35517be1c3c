"""`srgan` command line: a thin layer over the Python API.

Each subcommand has a `_add_<name>` function that declares its arguments and a `_run_<name>`
function that calls the API. User mistakes (`SrganError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from srgan.errors import SrganError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


# ---------------------------------------------------------------- models
def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list generator presets and shipped weights")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from srgan.models import create, describe, names
    from srgan.models.weights import shipped_weights

    for name in names():
        params = sum(p.numel() for p in create(name).parameters())
        print(f"{name:14s} {params:>10,d}  {describe(name)}")
    print(f"shipped weights: {', '.join(shipped_weights()) or 'none'}")
    return 0


# ---------------------------------------------------------------- upscale
def _add_upscale(sub: argparse._SubParsersAction) -> None:
    from srgan.models.weights import DEFAULT_MODEL

    p = sub.add_parser(
        "upscale", help="super-resolve images",
        description="Super-resolve image files, folders and globs. Each output is written atomically next to "
                    "its input as STEM + SUFFIX + extension, or under -o. Outputs equal to an input, or existing "
                    "outputs without --overwrite, are refused before any work starts. Exit codes: 0 all done, "
                    "1 some files were skipped (each is named in a warning and in the summary; the others are "
                    "still written), 2 nothing could be done (the error says why), 130 interrupted.")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders of images or glob patterns")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file (one input) or folder (default: next to each input)")
    p.add_argument("--model", default=None, metavar="NAME|PATH",
                   help=f"shipped weights name or a weights file (default: {DEFAULT_MODEL})")
    p.add_argument("--outscale", type=float, metavar="FLOAT",
                   help="final size as a factor of the input (default: the model's scale)")
    p.add_argument("--tile", default="auto", metavar="auto|N",
                   help="LR tile side in pixels, 0 for the whole image (default: auto, fits memory)")
    p.add_argument("--tile-pad", type=int, metavar="N",
                   help="LR context around each tile (default: the receptive field, exact result)")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda:N", help="where the model runs")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto: fp32 on CPU, bf16/fp16 on CUDA")
    p.add_argument("--color-fix", default="none", choices=("none", "hist", "lowfreq"),
                   help="pull colours back to the input's: histogram matching or low-frequency fix")
    p.add_argument("--lowpass", default="none", metavar="SPEC",
                   help="FFT low-pass against patterns: none | ideal:R | gaussian:S | butterworth:C,N | "
                        "gradient:R0,R1, radii as fractions of Nyquist (e.g. gaussian:0.5)")
    p.add_argument("--alpha", default="model", choices=("model", "bicubic"),
                   help="upscale transparency with the model or bicubically")
    p.add_argument("--format", choices=("png", "jpg", "webp", "tiff"), help="output format (default: the input's)")
    p.add_argument("--quality", type=int, metavar="Q", help="JPEG/WebP quality 1-100 (default 95; WebP 100 = lossless)")
    p.add_argument("--suffix", metavar="SUFFIX", help="added to output names (default: _x{scale})")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--strip-metadata", action="store_true", help="do not copy ICC profile and EXIF")
    p.add_argument("--recursive", action="store_true", help="look into subfolders (and ** in globs)")
    p.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"), help="inference engine")
    p.add_argument("--demo", action="store_true",
                   help="upscale scikit-image's astronaut picture (no download) to -o (default astronaut_x4.png)")
    p.set_defaults(func=_run_upscale)


def _run_upscale(args: argparse.Namespace) -> int:
    from srgan.inference import batch
    from srgan.inference.upscale import DEFAULT_MODEL, get_runner, parse_tile

    if not args.inputs and not args.demo:
        raise SrganError("no INPUT given (files, folders or globs; or --demo)")
    if args.demo and args.inputs:
        raise SrganError("--demo takes no INPUT")
    from srgan.inference.lowpass import parse_lowpass

    tile = parse_tile(args.tile)
    parse_lowpass(args.lowpass)  # option mistakes fail once, before any file is read
    if args.quality is not None and not 1 <= args.quality <= 100:
        raise SrganError(f"--quality must be between 1 and 100, got {args.quality}")
    if args.outscale is not None and not 0 < args.outscale <= 16:
        raise SrganError(f"--outscale must be between 0 and 16, got {args.outscale:g}")
    runner = get_runner(args.model or DEFAULT_MODEL, device=args.device, precision=args.precision,
                        backend=args.backend)
    scale = args.outscale if args.outscale is not None else runner.scale
    suffix = args.suffix if args.suffix is not None else f"_x{scale:g}"
    if args.demo:
        jobs = [_demo_job(args, suffix)]
        batch.check_targets(jobs, overwrite=args.overwrite)
        missing: list[tuple[str, str]] = []
    else:
        files, missing = batch.collect_inputs(args.inputs, recursive=args.recursive)
        if not files:
            name, reason = missing[0]
            raise SrganError(f"{name}: {reason}" if len(missing) == 1 else f"no images found in {len(missing)} inputs")
        for name, reason in missing:
            logging.getLogger("srgan").warning("skipped %s: %s", name, reason)
        jobs = batch.plan_jobs(files, output=args.output, suffix=suffix, fmt=args.format, overwrite=args.overwrite)
    options = {"outscale": args.outscale, "tile": tile, "tile_pad": args.tile_pad, "color_fix": args.color_fix,
               "lowpass": args.lowpass, "alpha": args.alpha, "progress": True}
    summary = batch.run_jobs(jobs, runner, options=options, fmt=args.format, quality=args.quality,
                             strip_metadata=args.strip_metadata, strict=len(jobs) == 1 and not missing)
    summary.skipped[:0] = missing
    print("\n".join(summary.lines()))
    return 1 if summary.skipped else 0


def _demo_job(args: argparse.Namespace, suffix: str):  # -> batch.Job
    from pathlib import Path

    from PIL import Image
    from skimage import data

    from srgan.imaging.io import from_pil
    from srgan.inference.batch import Job

    target = Path(args.output or f"astronaut{suffix}.png")
    if target.is_dir():
        target = target / f"astronaut{suffix}.png"
    return Job(name="astronaut (scikit-image)", target=target, load=lambda: from_pil(Image.fromarray(data.astronaut())))


# ---------------------------------------------------------------- export
def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a generator to ONNX")
    p.add_argument("--model", required=True, help="weights file or shipped weights name")
    p.add_argument("--preset", help="architecture of a .pth file that does not record it")
    p.add_argument("--onnx", required=True, metavar="FILE", help="output .onnx file")
    p.add_argument("--dynamic", action="store_true", help="free batch, height and width (else fixed --size)")
    p.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"),
                   help="LR input size of a fixed-shape export (default 256 256)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from srgan.inference.onnx_backend import export_onnx
    from srgan.models.weights import load_model

    target = Path(args.onnx)
    if Path(args.model).is_file() and target.resolve() == Path(args.model).resolve():
        raise SrganError(f"output {target} is the input weights file")
    if target.exists() and not args.overwrite:
        raise SrganError(f"{target} exists: pass --overwrite to replace it")
    if min(args.size) < 1:
        raise SrganError(f"--size must be positive, got {args.size[0]} {args.size[1]}")
    model = load_model(args.model, preset=args.preset)
    export_onnx(model, target, dynamic=args.dynamic, opset=args.opset, sample_size=tuple(args.size))
    print(f"wrote {target} (x{model.config.scale}, {'dynamic' if args.dynamic else 'fixed'} shape, "
          f"opset {args.opset})")
    return 0


# ---------------------------------------------------------------- eval
def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="PSNR/SSIM (and NIQE) on benchmark folders",
                       description="Score models on folders of HR images under the published protocol: "
                                   "LR = MATLAB bicubic of the mod-cropped HR, PSNR/SSIM on Y, crop = scale.")
    p.add_argument("--model", action="append", required=True, metavar="PRESET|WEIGHTS|bicubic|lanczos",
                   help="model to score (repeat for several)")
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="folder of HR images (repeatable)")
    p.add_argument("--scale", type=int, required=True, choices=(2, 4, 8), help="upscaling factor")
    p.add_argument("--out", metavar="DIR", help="write results.csv, results.json and report.html here")
    p.add_argument("--niqe", metavar="MODEL.npz", help="also compute NIQE with this model (niqe_pris_params.npz)")
    p.add_argument("--crops", type=int, default=3, metavar="N",
                   help="images per dataset with zoomed side-by-side crops in the report (default 3)")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda:N", help="where models run")
    p.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16", "fp16"),
                   help="model precision (default fp32, so scores do not depend on the machine)")
    p.add_argument("--tile", default="auto", metavar="auto|N",
                   help="LR tile side in pixels, 0 for the whole image (default: auto, fits memory; "
                        "tiles carry the full receptive field, so scores do not change)")
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from srgan.evaluation import evaluate, format_table, write_report

    if args.crops < 0:
        raise SrganError(f"--crops must be >= 0, got {args.crops}")
    if args.out and any(Path(args.out).resolve() == Path(d).resolve() for d in args.data):
        raise SrganError(f"--out {args.out} is a --data folder: choose another folder for the report")
    results = evaluate(args.model, args.data, args.scale, niqe_model=args.niqe,
                       crops=args.crops if args.out else 0, device=args.device, precision=args.precision,
                       tile=args.tile)
    for ds in results.datasets:
        print(format_table(results, ds) + "\n")
    if results.skipped:
        print(f"skipped {len(results.skipped)} file(s) that are not readable images", file=sys.stderr)
    if args.out:
        paths = write_report(results, args.out)
        print(f"wrote {paths['csv']}, {paths['json']}, {paths['html']}")
    return 0


# ---------------------------------------------------------------- train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a generator (and discriminator) from a YAML config",
                       description="Train from a YAML config (see configs/). Any key can be overridden as "
                                   "section.key=value, e.g. train.iterations=1000 data.batch_size=8. "
                                   "Distributed: torchrun --nproc_per_node=N -m srgan train -c CONFIG.")
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--resume", metavar="auto|PATH",
                   help="continue from the newest checkpoint of the run folder (auto), a checkpoint file, or a compact "
                        "resume state (.safetensors: weights, EMA and iteration; see training/resume_state.py)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: train.out_dir or runs/<config name>)")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from srgan.training.config import load_config
    from srgan.training.trainer import train

    config = load_config(args.config, args.overrides)
    path = train(config, run_dir=args.out, resume=args.resume)
    if path is not None:
        print(path)
    return 0


# ---------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    from srgan import __version__

    parser = _Parser(prog="srgan", description="Single-image super-resolution with the SRGAN family.")
    parser.add_argument("--version", action="version", version=f"srgan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_upscale, _add_train, _add_eval, _add_export, _add_models):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except SrganError as exc:
        print(f"srgan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("srgan: interrupted", file=sys.stderr)
        return 130
