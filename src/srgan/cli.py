"""`srgan` command line: a thin layer over `srgan.api` (and `srgan.serve` for `srgan serve`), which
validate everything.

Each subcommand has a `_add_<name>` function that declares its arguments and a `_run_<name>`
function that turns them into API calls. User mistakes (`SrganError`) print one line and exit 2;
`--verbose` adds the chain of causes. Ctrl-C (SIGINT) and SIGTERM (`kill`, a job scheduler's
time limit, `docker stop`) both stop the run the same way, so files being written are finished or
removed: exit 130 after SIGINT, 143 after SIGTERM (128 + the signal's number, as shells report it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Iterator

from srgan import api, serve
from srgan.api import SrganError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


# ---------------------------------------------------------------- models
def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list architectures, generator presets and shipped weights")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    infos = api.list_models()
    print("architectures: " + ", ".join(sorted({info.architecture for info in infos})))
    for info in infos:
        scores = "  ".join(f"{ds} {_score(v)}" for ds, v in info.scores.items())
        kind = "weights" if info.shipped else "preset "
        print(f"{info.name:26s} {kind} {info.architecture:13s} x{info.scale} {info.parameters:>10,d}  "
              f"{info.description}" + (f"  [{scores}]" if scores else ""))
    return 0


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="say what a weights file holds, without running it",
                       description="Read a weights file safely (srgan's own, or a community ESRGAN, Real-ESRGAN, "
                                   "BSRGAN, Compact or MSRResNet .pth/.safetensors) and print its layout, "
                                   "architecture, scale, parameters, tiling and metadata.")
    p.add_argument("file", metavar="FILE", help="weights file or shipped weights name")
    p.add_argument("--preset", help="architecture of a bare srgan state dict that does not record it")
    p.set_defaults(func=_run_inspect)


def _run_inspect(args: argparse.Namespace) -> int:
    info = api.inspect_weights(args.file, preset=args.preset)
    settings = " ".join(f"{k}={v}" for k, v in info.config.items())
    tiling = (f"exact, {info.context} LR pixels of context per tile" if info.context is not None
              else "blended overlaps (receptive field too large to carry)")
    rows = [("file", str(info.path)), ("layout", info.layout),
            ("architecture", info.architecture + (f" (preset {info.preset})" if info.preset else "")),
            ("scale", f"x{info.scale}"),
            ("parameters", f"{info.parameters:,d} in {info.tensors} tensors ({', '.join(info.dtypes)})"),
            ("config", settings), ("tiling", tiling)]
    rows += [(f"meta.{k}", v if isinstance(v, str) else json.dumps(v)) for k, v in info.metadata.items()
             if k not in ("config", "architecture")]
    for key, value in rows:
        if len(value) > 100 and not args.verbose:
            value = value[:96] + " ..."  # --verbose prints it whole
        print(f"{key:13s} {value}")
    return 0


_DIGITS = {"psnr": 2, "ssim": 4, "niqe": 2}  # as the tables of MODELS.md print them


def _score(value: object) -> str:
    if isinstance(value, dict):
        return " / ".join(f"{v:.{_DIGITS.get(k, 4)}f}" if isinstance(v, float) else str(v) for k, v in value.items())
    return str(value)


# ---------------------------------------------------------------- upscale
def _add_upscale(sub: argparse._SubParsersAction) -> None:
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
                   help=f"shipped weights name, a weights file (also a training checkpoint or resume state: "
                        f"its EMA weights) or an .onnx file from `srgan export` (default: {api.DEFAULT_MODEL})")
    p.add_argument("--outscale", type=float, metavar="FLOAT",
                   help="final size as a factor of the input (default: the model's scale)")
    p.add_argument("--strength", type=float, metavar="0..1",
                   help="GAN texture strength: the GAN model's weights blended with those of the PSNR model it was "
                        "trained from (1: the GAN model, 0: smooth; srgan_x4 and srgan_real_x4 only)")
    p.add_argument("--tile", default="auto", metavar="auto|N",
                   help="LR tile side in pixels, 0 for the whole image (default: auto, fits memory)")
    p.add_argument("--tile-pad", type=int, metavar="N",
                   help="LR context around each tile (default: the receptive field, exact result)")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda:N", help="where the model runs")
    p.add_argument("--precision", default="auto", choices=api.option_choices("precision"),
                   help="auto: bf16 on a CPU with native bf16 (AVX512-BF16/AMX), else fp32; bf16/fp16 on CUDA")
    p.add_argument("--color-fix", default="none", choices=api.option_choices("color_fix"),
                   help="pull colours back to the input's: histogram matching or low-frequency fix")
    p.add_argument("--lowpass", default="none", metavar="SPEC",
                   help="FFT low-pass against patterns: none | ideal:R | gaussian:S | butterworth:C,N | "
                        "gradient:R0,R1, radii as fractions of Nyquist (e.g. gaussian:0.5)")
    p.add_argument("--alpha", default="model", choices=api.option_choices("alpha"),
                   help="upscale transparency with the model or bicubically")
    p.add_argument("--format", choices=api.option_choices("format"), help="output format (default: the input's)")
    p.add_argument("--quality", type=int, metavar="Q", help="JPEG/WebP quality 1-100 (default 95; WebP 100 = lossless; "
                                                         "animated WebP: lossless unless given)")
    p.add_argument("--suffix", metavar="SUFFIX", help="added to output names (default: _x{scale})")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--skip-existing", action=argparse.BooleanOptionalAction, default=None,
                   help="keep existing outputs as done, so a killed run resumes (default: on for a folder given "
                        "with -o, off otherwise, where they are refused; --overwrite replaces them)")
    p.add_argument("--shard", metavar="I/N",
                   help="do part I of N (I from 0), balanced by pixels: Slurm arrays, cron jobs; under torchrun each "
                        "rank takes its part by itself (cuda:LOCAL_RANK, or cores / local ranks CPU threads)")
    p.add_argument("--manifest", metavar="FILE.jsonl",
                   help="append one JSON line per file (input, output, sizes, seconds, status, error); "
                        "{rank} in the name gives each rank its own file")
    p.add_argument("--summary", action="append", metavar="FILE.jsonl",
                   help="print the totals and failures of manifests (names or globs) and exit")
    p.add_argument("--io-threads", type=int, default=2, metavar="N",
                   help="threads that read and as many that write images while the model runs (default 2; 0: none)")
    p.add_argument("--strip-metadata", action="store_true", help="do not copy ICC profile and EXIF")
    p.add_argument("--recursive", action="store_true", help="look into subfolders (and ** in globs)")
    p.add_argument("--backend", default="auto", choices=api.option_choices("backend"),
                   help="inference engine (default auto: torch; for an .onnx model OpenVINO where installed, "
                        "else ONNX Runtime)")
    p.add_argument("--demo", action="store_true",
                   help="upscale scikit-image's astronaut picture (no download) to -o (default astronaut_x4.png)")
    _add_video_arguments(p)
    p.set_defaults(func=_run_upscale)


def _add_video_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("video", "for video inputs (.mp4 .mkv .mov .webm .avi, animated GIF / PNG written as "
                                      "animated PNG, animated WebP as animated WebP; needs the 'video' extra, "
                                      "but for WebP to WebP): sound "
                                      "and subtitles copied, every frame's timestamp, colour tags and rotation kept; "
                                      "a killed run resumes from its last finished segment when rerun")
    g.add_argument("--codec", choices=("h264", "h265", "vp9", "av1", "ffv1", "apng"),
                   help="video codec (default h264, vp9 for .webm, apng for .png; ffv1 and apng are lossless)")
    g.add_argument("--crf", type=int, metavar="N", help="encoder quality, lower is better (default: h264 18, "
                                                         "h265 20, vp9 31, av1 30)")
    g.add_argument("--preset", metavar="NAME", help="encoder speed preset (x264/x265: medium; svt-av1: 8)")
    g.add_argument("--pix-fmt", metavar="FMT", help="output pixel format (default yuv420p, or yuv420p10le for a "
                                                    "10-bit source)")
    g.add_argument("--start", type=float, metavar="SECONDS", help="start at this time of the input")
    g.add_argument("--end", type=float, metavar="SECONDS", help="stop before this time of the input")
    g.add_argument("--frames", type=int, metavar="N", help="upscale at most N frames (a quick preview)")
    g.add_argument("--segment-frames", type=int, default=240, metavar="N",
                   help="frames per resumable segment (default 240)")


def _run_video(args: argparse.Namespace, options: api.UpscaleOptions) -> int:
    if args.manifest or args.format:
        raise SrganError("--manifest and --format are for images; a video keeps its container (-o names another)")
    summary = api.upscale_video(args.inputs, args.output, options=options, suffix=args.suffix,
                                overwrite=args.overwrite, recursive=args.recursive, progress=True,
                                shard=args.shard or "auto", codec=args.codec, crf=args.crf, preset=args.preset,
                                pix_fmt=args.pix_fmt, start=args.start, end=args.end, frames=args.frames,
                                segment_frames=args.segment_frames)
    print("\n".join(summary.lines()))
    return 1 if summary.skipped else 0


def _run_upscale(args: argparse.Namespace) -> int:
    if args.summary:
        if args.inputs or args.demo:
            raise SrganError("--summary reads manifests and takes no INPUT")
        totals = api.manifest_summary(args.summary)
        print("\n".join(totals.lines()))
        return 1 if totals.failures else 0
    if not args.inputs and not args.demo:
        raise SrganError("no INPUT given (files, folders or globs; or --demo)")
    if args.demo and args.inputs:
        raise SrganError("--demo takes no INPUT")
    options = api.UpscaleOptions(
        model=args.model, outscale=args.outscale, tile=args.tile, tile_pad=args.tile_pad, device=args.device,
        precision=args.precision, backend=args.backend, color_fix=args.color_fix, lowpass=args.lowpass,
        alpha=args.alpha, format=args.format, quality=args.quality, strip_metadata=args.strip_metadata,
        strength=args.strength)
    if not args.demo and api.is_video_job(args.inputs, recursive=args.recursive):
        return _run_video(args, options)
    if args.demo:
        summary = api.upscale_demo(args.output, options=options, overwrite=args.overwrite, progress=True)
    else:
        summary = api.upscale_files(args.inputs, args.output, options=options, suffix=args.suffix,
                                    overwrite=args.overwrite, skip_existing=args.skip_existing,
                                    recursive=args.recursive, progress=True, shard=args.shard or "auto",
                                    manifest=args.manifest, io_threads=args.io_threads)
    print("\n".join(summary.lines()))
    return 1 if summary.skipped and not summary.torchrun else 0  # torchrun prints a traceback for exit 1


# ---------------------------------------------------------------- export
def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a generator to ONNX (fp32, or int8) or to the BasicSR / Real-ESRGAN layout",
                       description="--onnx FILE writes ONNX (any architecture) with the load-time rewrites of the "
                                   "torch path; with --int8 it is quantised statically (calibrated on crops of "
                                   "--calibrate images) and written only if, against fp32 on --check images "
                                   "(default: every fifth calibration image, held out), it loses at most --max-loss "
                                   "dB PSNR-Y (PSNR-oriented models) or adds at most --max-loss LPIPS (GAN models). --layout basicsr OUT writes the weights as BasicSR / Real-ESRGAN name them "
                                   "(.pth with params_ema, or .safetensors), which Real-ESRGAN and spandrel-based "
                                   "tools (chaiNNer, ComfyUI, AUTOMATIC1111) load; architectures without an exact "
                                   "equivalent there are refused.")
    p.add_argument("output", nargs="?", metavar="OUT", help="output .pth or .safetensors file for --layout")
    p.add_argument("--model", required=True, help="weights file or shipped weights name")
    p.add_argument("--preset", help="architecture of a .pth file that does not record it")
    p.add_argument("-o", "--onnx", metavar="FILE", help="output .onnx file")
    p.add_argument("--layout", choices=("basicsr",), help="write weights in this community layout to OUT")
    p.add_argument("--dynamic", action="store_true",
                   help="free batch, height and width: the default, so the model takes images of any size")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                   help="export a fixed-shape model taking H x W inputs instead (srgan runs it in tiles that fit)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--int8", action="store_true", help="quantise to int8 (always dynamic shape)")
    p.add_argument("--calibrate", metavar="DIR", help="training images to calibrate int8 on (e.g. T91)")
    p.add_argument("--check", metavar="DIR",
                   help="HR images to check the int8 loss on (e.g. Set5; default: held-out calibration images)")
    p.add_argument("--max-loss", type=float, metavar="X",
                   help="largest loss of int8 against fp32 to accept: PSNR-Y dB for PSNR-oriented models "
                        "(default 0.1), LPIPS increase for GAN models (default 0.01)")
    p.add_argument("--objective", choices=("psnr", "perceptual"),
                   help="what the model is judged by (default: what its weights file records; else psnr)")
    p.add_argument("--metric-weights", metavar="DIR|FILE",
                   help="LPIPS weights file or folder for the GAN gate (default: $SRGAN_WEIGHTS_DIR, torch hub's cache)")
    p.add_argument("--calibration-crops", type=int, default=40, metavar="N",
                   help="64x64 calibration crops (default 40)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    if (args.onnx is None) == (args.layout is None):
        raise SrganError("give either --onnx FILE or --layout basicsr OUT")
    if args.layout is not None:
        if args.output is None:
            raise SrganError(f"--layout {args.layout} needs an output file OUT (.pth or .safetensors)")
        path = api.export_weights(args.model, args.output, layout=args.layout, overwrite=args.overwrite,
                                  preset=args.preset)
        print(f"wrote {path} ({args.layout} layout)")
        return 0
    if args.output is not None:
        raise SrganError(f"unexpected {args.output}: --onnx names the output file")
    if args.int8:
        if not args.calibrate:
            raise SrganError("--int8 needs --calibrate DIR: a folder of training images (e.g. T91)")
        report = api.export_int8(args.model, args.onnx, args.calibrate, check=args.check, max_loss=args.max_loss,
                                 crops=args.calibration_crops, overwrite=args.overwrite, preset=args.preset,
                                 objective=args.objective, metric_weights=args.metric_weights)
        print(report.line())
        return 0
    if args.calibrate or args.check:
        raise SrganError("--calibrate and --check belong to --int8")
    if args.dynamic and args.size:
        raise SrganError("--size makes a fixed-shape model and --dynamic a free one: choose one")
    dynamic = args.size is None
    path = api.export_onnx(args.model, args.onnx, dynamic=dynamic, opset=args.opset,
                           size=tuple(args.size or (64, 64)), overwrite=args.overwrite, preset=args.preset)
    print(f"wrote {path} ({'dynamic' if dynamic else 'fixed ' + 'x'.join(map(str, args.size))} shape, "
          f"opset {args.opset})")
    return 0


# ---------------------------------------------------------------- eval
def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="PSNR/SSIM, LPIPS, DISTS and NIQE on benchmark folders, real LR/HR pairs or "
                                    "LR-only folders",
                       description="Score models. --data alone: folders of HR images under the published protocol "
                                   "(LR = MATLAB bicubic of the mod-cropped HR, PSNR/SSIM on Y, crop = scale). "
                                   "--lr with --data: real pairs, LR given, matched to the HR by file name (crop 0). "
                                   "--lr alone: no reference (NIQE and output statistics). "
                                   "Exit codes: 0 every image scored, 1 some images were skipped (each is named "
                                   "with the reason; the others are scored), 2 nothing could be done, 130 "
                                   "interrupted.")
    p.add_argument("--model", action="append", required=True, metavar="PRESET|WEIGHTS|bicubic|lanczos",
                   help="model to score (repeat for several; a training checkpoint scores its EMA weights)")
    p.add_argument("--data", action="append", default=[], metavar="DIR", help="folder of HR images (repeatable)")
    p.add_argument("--lr", action="append", metavar="DIR",
                   help="folder of LR images given as the model input, paired by name with the --data folder of "
                        "the same position; without --data: no-reference evaluation (repeatable)")
    p.add_argument("--scale", type=int, required=True, choices=(2, 4, 8), help="upscaling factor")
    p.add_argument("--metrics", metavar="LIST",
                   help="comma-separated from psnr,ssim,lpips,dists,niqe (default: all that apply and whose "
                        "weights are found)")
    p.add_argument("--crop", type=int, metavar="N",
                   help="border pixels removed before scoring (default: the scale with --data alone, else 0)")
    p.add_argument("--out", metavar="DIR", help="write results.csv, results.json and report.html here")
    p.add_argument("--niqe", nargs="?", const="", metavar="MODEL.npz",
                   help="compute NIQE (with the shipped parameters, or this niqe_pris_params.npz)")
    p.add_argument("--metric-weights", metavar="DIR|FILE",
                   help="LPIPS / DISTS weights: a folder holding lpips_alex.safetensors, "
                        "vgg16_features_imagenet.safetensors and dists_weights.pt (default: $SRGAN_WEIGHTS_DIR, "
                        "then the torch hub cache)")
    p.add_argument("--crops", type=int, default=3, metavar="N",
                   help="images per dataset with zoomed side-by-side crops in the report (default 3)")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda:N", help="where models and LPIPS/DISTS run")
    p.add_argument("--precision", default="fp32", choices=api.option_choices("precision"),
                   help="model precision (default fp32, so scores do not depend on the machine)")
    p.add_argument("--tile", default="auto", metavar="auto|N",
                   help="LR tile side in pixels, 0 for the whole image (default: auto, fits memory; "
                        "tiles carry the full receptive field, so scores do not change)")
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    metrics = args.metrics
    if args.niqe is not None and metrics is not None:
        metrics += ",niqe"
    results = api.evaluate(args.model, args.data, args.scale, lr_folders=args.lr, metrics=metrics, crop=args.crop,
                           niqe_model=args.niqe or None, metric_weights=args.metric_weights, crops=args.crops,
                           report_dir=args.out, device=args.device, precision=args.precision, tile=args.tile)
    for ds in results.datasets:
        print(api.format_table(results, ds) + "\n")
    if args.out:
        paths = api.write_report(results, args.out)
        print(f"wrote {paths['csv']}, {paths['json']}, {paths['html']}")
    for path, reason in results.skipped:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return 1 if results.skipped else 0


# ---------------------------------------------------------------- degrade
def _add_degrade(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("degrade", help="write degraded LR copies of images, as a training degradation makes them",
                       description="Each file gets the LR its training degradation would give it, seeded by --seed "
                                   "and its file name (the same on any machine): to look at what a model learns "
                                   "from, or to make a fixed validation set. Outputs are PNGs named like the inputs.")
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders")
    p.add_argument("output", metavar="OUT", help="output folder")
    p.add_argument("--degradation", default="realesrgan", metavar="NAME|{type: NAME, ...}",
                   help="bicubic, realesrgan (default) or bsrgan, or a YAML mapping with options")
    p.add_argument("--scale", type=int, default=4, choices=(2, 4, 8), help="downscaling factor (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random degradations (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=_run_degrade)


def _run_degrade(args: argparse.Namespace) -> int:
    import yaml

    spec = args.degradation
    if spec.lstrip().startswith("{"):
        try:
            spec = yaml.safe_load(spec)
        except yaml.YAMLError as exc:
            raise SrganError(f"--degradation: not a YAML mapping ({str(exc).splitlines()[0]})") from exc
    if not isinstance(spec, (str, dict)):
        raise SrganError(f"--degradation: expected a name or a mapping with a type, got {args.degradation!r}")
    written = api.degrade_files(args.inputs, args.output, degradation=spec, scale=args.scale,
                                seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {len(written)} degraded images to {args.output}")
    return 0


# ---------------------------------------------------------------- train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a generator (and discriminator) from a YAML config",
                       description="Train from a YAML config (see configs/). Any key can be overridden as "
                                   "section.key=value, e.g. train.iterations=1000 data.batch_size=8 (before, "
                                   "between or after the options). A run folder that holds a run is refused "
                                   "unless --resume or --overwrite says what to do with it. Distributed: torchrun --nproc_per_node=N -m srgan train -c CONFIG.")
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--resume", metavar="auto|PATH",
                   help="continue from the newest checkpoint of the run folder (auto), a checkpoint file, or a compact "
                        "resume state (.safetensors: weights, EMA and iteration; see runfiles/resume_state.py)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: train.out_dir or runs/<config name>)")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in a run folder that holds one: its checkpoints and exported "
                        "generator are deleted (without it such a folder is refused; --resume continues it)")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    path = api.train(args.config, args.overrides, run_dir=args.out, resume=args.resume, overwrite=args.overwrite)
    if path is not None:
        print(path)
    return 0


# ---------------------------------------------------------------- serve
def _add_serve(sub: argparse._SubParsersAction) -> None:
    d = serve.ServeSettings()
    p = sub.add_parser("serve", help="web page and HTTP API for upscaling (needs the 'serve' extra)",
                       description="A page to upscale images in the browser, and POST /api/upscale, GET /api/models, "
                                   "/healthz, /metrics, /docs. Listens on this machine only unless --host says "
                                   "otherwise; there is no authentication.")
    p.add_argument("--host", default=d.host, help=f"address to listen on (default {d.host}: this machine only)")
    p.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port}; 0: any free port)")
    p.add_argument("--model", metavar="NAME|PATH", help=f"default model: shipped name or weights file (default "
                                                         f"{api.DEFAULT_MODEL}); shipped weights are offered too")
    p.add_argument("--device", default=d.device, metavar="auto|cpu|cuda:N", help="where the model runs")
    p.add_argument("--precision", default=d.precision, choices=api.option_choices("precision"),
                   help="auto: fp32 on CPU, bf16/fp16 on CUDA")
    p.add_argument("--backend", default=d.backend, choices=api.option_choices("backend"),
                   help="inference engine (default auto: torch)")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels, metavar="N",
                   help=f"most pixels of an input image, checked before decoding (default {d.max_pixels})")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, metavar="MB",
                   help=f"most megabytes of an upload (default {d.max_upload_mb:g})")
    p.add_argument("--queue", type=int, default=d.queue, metavar="N",
                   help=f"requests that may wait for a worker; more are answered 429 (default {d.queue})")
    p.add_argument("--workers", type=int, default=d.workers, metavar="N", help=f"inference threads (default {d.workers})")
    p.add_argument("--timeout", type=float, default=d.timeout, metavar="S",
                   help=f"seconds a request may wait and run (default {d.timeout:g})")
    p.add_argument("--header-timeout", type=float, default=d.header_timeout, metavar="S",
                   help=f"seconds a connection may take to send a request's headers (default {d.header_timeout:g})")
    p.add_argument("--upload-timeout", type=float, default=d.upload_timeout, metavar="S",
                   help=f"seconds an upload may take in all (default {d.upload_timeout:g})")
    p.add_argument("--min-upload-kbps", type=float, default=d.min_upload_kbps, metavar="KIB_S",
                   help=f"slowest average upload rate accepted after the first seconds (default {d.min_upload_kbps:g})")
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    serve.run(host=args.host, port=args.port, model=args.model, device=args.device, precision=args.precision,
              backend=args.backend, max_pixels=args.max_pixels, max_upload_mb=args.max_upload_mb, queue=args.queue,
              workers=args.workers, timeout=args.timeout, header_timeout=args.header_timeout,
              upload_timeout=args.upload_timeout, min_upload_kbps=args.min_upload_kbps)
    return 0


# ---------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="srgan", description="Single-image super-resolution with the SRGAN family.")
    parser.add_argument("--version", action="version", version=f"srgan {api.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_upscale, _add_train, _add_eval, _add_degrade, _add_export, _add_models, _add_inspect, _add_serve):
        add(sub)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments; `key=value` overrides may also follow options (`train -c X --resume auto a.b=1`),
    where argparse alone stops collecting positionals."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be, so it unwinds the same way."""


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` while the command runs (main thread only: signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        with _sigterm_interrupts():
            return int(args.func(args) or 0)
    except SrganError as exc:
        if args.verbose:
            traceback.print_exception(exc)
        print(f"srgan: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("srgan: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("srgan: interrupted", file=sys.stderr)
        return 130
