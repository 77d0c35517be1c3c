"""The claims study (STUDY.md): train, score and tabulate its entries, one command each.

    python tools/study.py list                         # entries, what each starts from, how far it is
    python tools/study.py run NAME [--fresh]           # train NAME (and the entries it starts from), then score it
    python tools/study.py score NAME [--data SET ...]  # score runs/study/NAME/generator.safetensors
    python tools/study.py calibrate [NAME ...]         # the adversarial term's share of the content term at the start
    python tools/study.py measure shipped|postproc|seams   # the claims measurable without training
    python tools/study.py report                       # STUDY.md's tables from what was scored
    python tools/study.py save                         # the runs' state into git, for the next session
    python tools/study.py pictures                     # docs/study/claim_*.png and curves.png

Run from the repository root with ../shared beside it (as every config expects). Training is
resumable: `run NAME` continues a killed run from its newest checkpoint (`srgan train --resume auto`),
skips entries that are already trained and datasets already scored; `--fresh` moves an earlier run
aside (runs/study/NAME.previous-N) and starts over. The run folders are not committed: `save` keeps
what the next session (on any machine) needs in git, `run` takes it back (see `committed`). Scores go
to docs/study/runs/NAME.json, the measurements to docs/study/MEASUREMENT.json; `report` prints the
markdown tables STUDY.md takes.
Metrics: PSNR and SSIM on Y (`srgan eval`'s protocol), MSE on RGB 0-255 (MIT report), LPIPS (AlexNet),
DISTS, NIQE; all with `scale` pixels cropped per border.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "configs" / "study"
RUNS = Path("runs/study")
STATE = ROOT / "training" / "resume" / "study"
DOCS = ROOT / "docs" / "study"
SHARED = ROOT.parent / "shared"
WEIGHTS = SHARED / "weights"
DATASETS = ("Set5", "Set14", "BSD100")
OUTPUT = "generator.safetensors"
SEAM_ENTRIES = ("pretrain16_x4", "pad_reflect_x4", "pretrain8t_x4", "gan8t_x4")
REFLECT_UNTRAINED = "srresnet_x4 weights, reflect padding (not trained with it)"  # a seam measure's row
Upscaler = Callable[[torch.Tensor], torch.Tensor]  # uint8 (C, h, w) -> uint8 (C, sh, sw)
# Set14 windows of the crop pictures, (image, top, left) in HR pixels, CROP x CROP, on the LR grid at x2
# and x4 alike: fur and whiskers, a checked cloth over a table leg, drawn ornaments, stripes.
REGIONS = (("baboon", 336, 96), ("barbara", 336, 96), ("comic", 96, 96), ("zebra", 96, 336))
CROP = 96
sys.path.append(str(ROOT / "docs"))  # learning_curve.py, model_crops.py


# ---------------------------------------------------------------- entries and their order
def entries() -> list[str]:
    return sorted(p.stem for p in STUDY.glob("*.yaml"))


@functools.cache
def load(name: str):
    from srgan.training.config import load_config

    return load_config(STUDY / f"{name}.yaml")


def starting_files(name: str) -> list[str]:
    """The weight files the entry starts from (model.init, recursive.stage1_weights)."""
    config = load(name)
    return [f for f in (config.model.init, config.recursive.stage1_weights) if f]


def dependencies(name: str) -> list[str]:
    """The entries whose outputs this one starts from."""
    found = []
    for file in starting_files(name):
        match = re.fullmatch(rf"{re.escape(RUNS.as_posix())}/([^/]+)/{OUTPUT}", file)
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found


def order(name: str, seen: tuple[str, ...] = ()) -> list[str]:
    """The entries to train for `name`, dependencies first."""
    if name in seen:
        raise SystemExit(f"study entries start from each other in a loop: {' -> '.join((*seen, name))}")
    if not (STUDY / f"{name}.yaml").is_file():
        raise SystemExit(f"no study entry {name!r} (known: {', '.join(entries())})")
    result: list[str] = []
    for dep in dependencies(name):
        result += [n for n in order(dep, (*seen, name)) if n not in result]
    return [*result, name]


def run_dir(name: str) -> Path:
    return RUNS / name


def committed(name: str) -> dict[str, Path]:
    """The entry's files kept in git, which outlive its run folder: the compact resume state while it
    trains, its final generator (fp16) when other entries start from it, scores, curve and crops."""
    return {"resume": STATE / f"{name}.resume.safetensors", "final": STATE / f"{name}.safetensors",
            "scores": DOCS / "runs" / f"{name}.json", "curve": DOCS / "curves" / f"{name}.csv",
            "terms": DOCS / "curves" / f"{name}.terms.csv",
            "crops": DOCS / "crops" / f"{name}.png"}


def state(name: str) -> str:
    """How far the entry is, from its run folder or, on a machine without it, from the committed files."""
    from srgan.models.weights import read_metadata
    from srgan.runfiles.checkpoint import checkpoint_iteration, list_checkpoints

    files = committed(name)
    if (run_dir(name) / OUTPUT).is_file() or files["final"].is_file() or files["scores"].is_file():
        scored = files["scores"].is_file() and ", ".join(json.loads(files["scores"].read_text()))
        return f"trained, scored on {scored}" if scored else "trained"
    if checkpoints := list_checkpoints(run_dir(name)):
        return f"at iteration {checkpoint_iteration(checkpoints[-1])}"
    if files["resume"].is_file():
        return f"at iteration {read_metadata(files['resume'])['iteration']} (committed state)"
    return "not started"


# ---------------------------------------------------------------- training
def train(name: str, fresh: bool) -> None:
    """Train the entry, continuing its run folder's checkpoints, else the committed resume state; an
    entry with a committed final generator is restored from it instead (its dependents start from it)."""
    from srgan.runfiles.checkpoint import list_checkpoints

    folder, files = run_dir(name), committed(name)
    if fresh:
        if folder.exists():
            n = 1
            while folder.with_name(f"{name}.previous-{n}").exists():
                n += 1
            folder.rename(folder.with_name(f"{name}.previous-{n}"))
            print(f"{folder} moved to {folder.name}.previous-{n}")
        forget(name, tuple(files), "the earlier run's (git history keeps it)")
    if cut(name):
        return
    if (folder / OUTPUT).is_file():
        print(f"{name}: trained already ({folder / OUTPUT})")
        return
    if files["final"].is_file():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(files["final"], folder / OUTPUT)  # its time too: `save` leaves the final alone
        print(f"{name}: restored {folder / OUTPUT} from {files['final']}")
        return
    resume = files["resume"] if files["resume"].is_file() and not list_checkpoints(folder) else "auto"
    command = [sys.executable, "-m", "srgan", "train", "-c", str(STUDY / f"{name}.yaml"), "--out", str(folder),
               "--resume", str(resume)]
    print(" ".join(command), flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    if subprocess.run(command, check=False, env=env).returncode:
        raise SystemExit(f"{name}: training stopped; run the same command again to resume it")


def cut(name: str) -> bool:
    """A run that trained past its entry's length (the pilot, once B is set below it) ends at its
    checkpoint of that length (at a constant learning rate, the run of that length); the scores and
    crops of the longer run are deleted."""
    import srgan
    from srgan.models.weights import read_metadata, save_model
    from srgan.runfiles.checkpoint import checkpoint_iteration, checkpoint_path, list_checkpoints

    config, folder, output = load(name), run_dir(name), run_dir(name) / OUTPUT
    budget, checkpoints = config.train.iterations, list_checkpoints(folder)
    last = checkpoint_iteration(checkpoints[-1]) if checkpoints else 0
    if last <= budget or (output.is_file() and read_metadata(output)["iterations"] == budget):
        return False
    source = checkpoint_path(folder, budget)
    if not source.is_file():
        raise SystemExit(f"{name}: trained to {last} but has no checkpoint at its length {budget}")
    path = save_model(srgan.load_model(source), output, overwrite=True, iterations=budget,
                      training_config=config.to_dict(), cut_from=str(checkpoints[-1]))
    print(f"{name}: {path} from {source} (the run went on to {last})")
    forget(name, ("scores", "crops", "final"), f"the {last}-iteration run's")
    return True


def forget(name: str, kinds: tuple[str, ...], whose: str) -> None:
    """Delete the entry's committed files of these kinds (`committed`) that belong to another run."""
    for kind in kinds:
        if (path := committed(name)[kind]).is_file():
            path.unlink()
            print(f"{path} deleted: {whose}")


# ---------------------------------------------------------------- scoring
class Scorer:
    """Every metric of the study for one SR image against its HR (uint8 (C, H, W) each)."""

    def __init__(self, metrics: tuple[str, ...] = ("lpips", "dists")) -> None:
        from srgan.metrics.feature_distance import build_metric
        from srgan.metrics.niqe import NiqeModel

        self.niqe = NiqeModel.load()
        self.deep = {m: build_metric(m, str(WEIGHTS)) for m in metrics}

    def references(self, hr: torch.Tensor, scale: int) -> dict[str, list[torch.Tensor]]:
        """The HR's deep features, computed once for all the outputs compared with it."""
        inner = (..., slice(scale, -scale), slice(scale, -scale))
        return {name: metric.reference(hr[inner]) for name, metric in self.deep.items()}

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor, scale: int,
                 refs: dict[str, list[torch.Tensor]] | None = None) -> dict[str, float]:
        from srgan.errors import SrganError
        from srgan.metrics.psnr_ssim import psnr_y, ssim_y, y_channel

        sr_y, hr_y = y_channel(sr), y_channel(hr)
        inner = (..., slice(scale, -scale), slice(scale, -scale))
        error = sr[inner].double() - hr[inner].double()
        scores = {"psnr": float(psnr_y(sr_y, hr_y, scale)), "ssim": float(ssim_y(sr_y, hr_y, scale)),
                  "mse": float(error.pow(2).mean()),
                  "shift": float(error.mean((-2, -1)).abs().max())}  # colour shift: the worst channel's mean error
        refs = refs or self.references(hr, scale)
        for name, metric in self.deep.items():
            scores[name] = float(metric.score(sr[inner], refs[name])[0])
        try:
            scores["niqe"] = self.niqe.score(sr_y[0, 0][inner[1:]].numpy())
        except SrganError:  # too small or flat for NIQE: no score rather than no table
            scores["niqe"] = math.nan
        return scores


def score_folder(upscale: Upscaler, dataset: str, scale: int, scorer: Scorer, label: str) -> dict:
    """Mean of every metric over the dataset's images, and each image's scores."""
    from tqdm import tqdm

    from srgan.data.degradation import benchmark_hr, degrade
    from srgan.imaging.folders import list_images

    per_image = {}
    for path in tqdm(list_images(SHARED / "datasets" / dataset, recursive=False), desc=f"{label} {dataset} x{scale}"):
        hr = benchmark_hr(path, scale)
        per_image[path.name] = scorer(upscale(degrade(hr, scale)), hr, scale)
    return {**means(per_image), "images": per_image}


def upscaler(name: str) -> tuple[int, Upscaler]:
    """The trained entry's scale and generator; the rGAN's is its frozen stage 1, then the trained stage 2."""
    from srgan.evaluation.runner import model_upscaler
    from srgan.training.config import data_scale

    weights = run_dir(name) / OUTPUT
    if not weights.is_file():
        raise SystemExit(f"{name}: not trained yet ({weights} missing): python tools/study.py run {name}")
    config = load(name)
    scale = data_scale(config)
    if not config.recursive.enabled:
        return scale, model_upscaler(str(weights), scale)
    return scale, chain(model_upscaler(str(run_dir(name) / "stage1.safetensors"), 2),
                        model_upscaler(str(weights), scale // 2))


def score(name: str, datasets: list[str]) -> dict:
    """Score the trained entry (its committed scores, its learning curve and its crops)."""
    scale, upscale = upscaler(name)
    path = committed(name)["scores"]
    scores = json.loads(path.read_text()) if path.is_file() else {}
    scorer = None
    for dataset in datasets:
        if dataset not in scores:
            scorer = scorer or Scorer()
            scores[dataset] = score_folder(upscale, dataset, scale, scorer, name)
            write_json(path, scores)  # after each dataset, so a killed scoring resumes
    save_curve(name)
    save_crops(name, scale, upscale)
    return scores


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def chain(first: Upscaler, second: Upscaler) -> Upscaler:
    """One upscaler after the other, the intermediate image rounded to 8 bits as a saved file would be."""
    return lambda lr: second(first(lr))


# ---------------------------------------------------------------- the state kept in git
def save_curve(name: str) -> None:
    """Merge the run's validation points and its logged training terms into the committed curves
    (docs/learning_curve.py's CSVs; the newest value of an iteration wins)."""
    from learning_curve import parse_log, parse_terms, read_csv, write_csv

    log = run_dir(name) / "train.log"
    for parse, path in ((parse_log, committed(name)["curve"]), (parse_terms, committed(name)["terms"])):
        if points := parse(log) if log.is_file() else {}:
            write_csv(path, {**read_csv(path), **points})
            print(f"{path}: {len(points)} points from {log}")


def regions(upscale: Upscaler | None, scale: int) -> torch.Tensor:
    """The REGIONS side by side, uint8 (3, CROP, len(REGIONS) x CROP): of the HR (`upscale` None), or
    of `upscale`'s output from the benchmark LR (score_folder's)."""
    from srgan.data.degradation import benchmark_hr, degrade

    crops = []
    for image, top, left in REGIONS:
        hr = benchmark_hr(SHARED / "datasets" / "Set14" / f"{image}.png", scale)
        out = hr if upscale is None else upscale(degrade(hr, scale))
        crops.append(out[:, top:top + CROP, left:left + CROP])
    return torch.cat(crops, -1)


def to_image(strip: torch.Tensor) -> Image.Image:
    return Image.fromarray(strip.permute(1, 2, 0).numpy())


def save_crops(name: str, scale: int, upscale: Upscaler) -> None:
    """The entry's crops as they are (no zoom, no label): `pictures` cuts them into each claim's picture."""
    path = committed(name)["crops"]
    path.parent.mkdir(parents=True, exist_ok=True)
    to_image(regions(upscale, scale)).save(path)
    print(f"{path}: crops of {', '.join(r[0] for r in REGIONS)}")


def stale(target: Path, source: Path) -> bool:
    """Whether `target` is missing or older than `source`: safetensors writes its metadata in a random
    order, so writing a file again from the same source would change it in git."""
    return not target.is_file() or target.stat().st_mtime < source.stat().st_mtime


def save() -> None:
    """Everything of the runs that the next session needs into git (`committed`): curves, the newest
    checkpoint of an entry in progress compacted, the final generator of a trained entry others start
    from; the resume state of a trained entry is deleted."""
    import srgan
    from srgan.models.weights import read_metadata, save_model
    from srgan.runfiles import resume_state
    from srgan.runfiles.checkpoint import list_checkpoints

    needed = {dep for name in entries() for dep in dependencies(name)}
    for name in entries():
        folder, files = run_dir(name), committed(name)
        save_curve(name)
        if (folder / OUTPUT).is_file():
            if name in needed and stale(files["final"], folder / OUTPUT):
                meta = {k: v for k, v in read_metadata(folder / OUTPUT).items()
                        if k not in ("format", "architecture", "config", "scale")}  # save_model writes these
                path = save_model(srgan.load_model(folder / OUTPUT).half(), files["final"], overwrite=True,
                                  **{**meta, "storage": "fp16"})
                print(f"{path}: {name}'s generator, fp16, {path.stat().st_size / 1e6:.1f} MB")
            if files["resume"].is_file():
                files["resume"].unlink()
                print(f"{files['resume']} deleted: {name} is trained")
        elif checkpoints := list_checkpoints(folder):
            if load(name).recursive.enabled:
                print(f"{name}: an rGAN run continues only from its checkpoints ({folder / 'checkpoints'})")
                continue
            if stale(files["resume"], checkpoints[-1]):
                STATE.mkdir(parents=True, exist_ok=True)
                resume_state.main([str(checkpoints[-1]), str(files["resume"])])


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower().removeprefix("claim ")).strip("_")


def claim_picture(names: list[str], hr: Image.Image) -> Image.Image | None:
    """The crops of HR, bicubic (at each scale of the claim) and each entry that has crops, a row per
    region, zoomed x2 and labelled; None before any entry has crops."""
    from model_crops import grid, labelled

    from srgan.evaluation.runner import bicubic_upscaler
    from srgan.training.config import data_scale

    strips = {n: Image.open(committed(n)["crops"]).convert("RGB") for n in names if committed(n)["crops"].is_file()}
    if not strips:
        return None
    scales = sorted({data_scale(load(n)) for n in names}, reverse=True)
    columns = {"HR": hr, **{f"bicubic x{s}": to_image(regions(bicubic_upscaler(s), s)) for s in scales}, **strips}

    def tile(strip: Image.Image, i: int, label: str) -> Image.Image:
        crop = strip.crop((i * CROP, 0, (i + 1) * CROP, CROP))
        return labelled(crop.resize((2 * CROP, 2 * CROP), Image.NEAREST), label)

    return grid([[tile(strip, i, f"{image}: {label}" if label == "HR" else label) for label, strip in columns.items()]
                 for i, (image, _, _) in enumerate(REGIONS)])


GAN_TERMS = ("d", "D(real)", "D(fake)", "adversarial", "g")  # the rest of a progress line are content terms


def plot_curves(out: Path) -> None:
    """A row per claim, from the committed curves: Set5 PSNR-Y at each validation; D(fake), the
    discriminator's mean belief that the generator's output is real (0.5: it cannot tell); and the
    first content term relative to its first logged value (1: as the run began)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from learning_curve import read_csv

    fig, axes = plt.subplots(len(CLAIMS), 3, figsize=(18, 3.2 * len(CLAIMS)), dpi=80, squeeze=False)
    for row, (title, names) in zip(axes, CLAIMS.items()):
        for k, name in enumerate(names):
            style = {"color": f"C{k}", "label": name}  # one colour per entry in the three panels
            if points := read_csv(committed(name)["curve"]):
                row[0].plot(sorted(points), [points[i]["psnr_y"] for i in sorted(points)], marker=".", **style)
            if not (its := sorted(terms := read_csv(committed(name)["terms"]))):
                continue
            if "D(fake)" in (first := terms[its[0]]):
                row[1].plot(its, [terms[i]["D(fake)"] for i in its], **style)
            if content := [key for key in first if key not in GAN_TERMS]:
                key = content[0]
                row[2].plot(its, [terms[i][key] / first[key] for i in its], **{**style, "label": f"{name} ({key})"})
        for ax, ylabel in zip(row, ("Set5 PSNR-Y (dB)", "D(fake)", "content term / its start")):
            ax.set(title=title, xlabel="iteration", ylabel=ylabel)
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    print(out)


def pictures() -> None:
    """docs/study/claim_<slug>.png per claim whose entries have crops, and docs/study/curves.png."""
    from model_crops import save

    hr = to_image(regions(None, 4))  # the same HR pixels at x2 and x4: the mod-crop cuts only far edges
    for title, names in CLAIMS.items():
        if (sheet := claim_picture(names, hr)) is not None:
            save(sheet, DOCS / f"claim_{slug(title)}.png")
    plot_curves(DOCS / "curves.png")


# ---------------------------------------------------------------- calibration
def start_weights(name: str) -> tuple[str | None, str]:
    """The file the entry's generator starts from, or (before its dependency is trained) the file that
    dependency starts from when the architecture is the same; and a note saying which."""
    from srgan.training.config import generator_config

    config = load(name)
    init = config.model.init
    if init is None or Path(init).is_file():
        return init, ""
    for dep in dependencies(name):
        before = load(dep)
        if before.model.init and Path(before.model.init).is_file() and generator_config(before) == generator_config(config):
            return before.model.init, f"(before {dep} is trained: its start)"
    return None, f"pending: needs {' and '.join(dependencies(name))} trained"


@torch.no_grad()
def calibrate(name: str, batches: int = 4) -> str:
    """Content terms and adversarial share at the start, on `batches` x 16 training crops (seed 0)."""
    import srgan
    from srgan.data.dataset import TrainPatches
    from srgan.training.config import data_scale
    from srgan.training.objective import GeneratorObjective

    config = load(name)
    if not config.gan:
        return f"| {name} | pixel pre-training | | | |"
    init, note = start_weights(name)
    if init is None:
        return f"| {name} | {note} | | | |"
    generator = srgan.load_model(init).eval()
    stage1 = generator if config.recursive.enabled else None  # the study's rGAN starts stage 2 from stage 1
    data = TrainPatches(config.data.folders, hr_crop=config.data.hr_crop, scale=data_scale(config), warn=False)
    objective = GeneratorObjective(config)
    content = 0.0
    for b in range(batches):
        lr, hr = (torch.stack(t) for t in zip(*(data[b * 16 + i] for i in range(16))))
        sr = generator(stage1(lr).clamp(0, 1) if stage1 is not None else lr)
        content += sum(weight * float(loss(sr, hr)) for _, weight, loss in objective.terms) / batches
    adversarial = config.losses["adversarial"]["weight"]
    return (f"| {name} {note} | {', '.join(n for n, _, _ in objective.terms)} | {content:.5g} | {adversarial:.3g} "
            f"| {100 * adversarial * math.log(2) / content:.1f}% |")


# ---------------------------------------------------------------- measurements without training
Post = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (SR, LR) floats in [0, 1] -> fixed SR


def shipped_upscalers() -> dict[str, tuple[int, Upscaler, dict[str, Post]]]:
    from srgan.evaluation.runner import bicubic_upscaler, model_upscaler

    x2 = model_upscaler("srresnet_x2", 2)
    return {"bicubic x4": (4, bicubic_upscaler(4), {}), "srresnet_x4": (4, model_upscaler("srresnet_x4", 4), {}),
            "srgan_x4": (4, model_upscaler("srgan_x4", 4), {}), "bicubic x2": (2, bicubic_upscaler(2), {}),
            "srresnet_x2": (2, x2, {}), "srresnet_x2 twice (x4)": (4, chain(x2, x2), {})}


def postproc_upscalers() -> dict[str, tuple[int, Upscaler, dict[str, Post]]]:
    """The shipped GAN's output (and the trained study GANs' in POSTPROC) as it is, histogram-matched
    to its input, and FFT low-passed."""
    from srgan.evaluation.runner import model_upscaler
    from srgan.inference.colorfix import match_histograms
    from srgan.inference.lowpass import apply_lowpass

    posts: dict[str, Post] = {"+ histogram matching": match_histograms}
    for spec in ("ideal:0.5", "ideal:0.75"):
        posts[f"+ low-pass {spec}"] = lambda sr, _, spec=spec: apply_lowpass(sr, spec)
    trained = {name: run_dir(name) / OUTPUT for name in POSTPROC}
    models = {"srgan_x4": "srgan_x4", **{name: str(path) for name, path in trained.items() if path.is_file()}}
    return {label: (4, model_upscaler(model, 4), posts) for label, model in models.items()}


def measure_scores(upscalers: dict[str, tuple[int, Upscaler, dict[str, Post]]], datasets: list[str]) -> dict:
    """Every upscaler (and each post-processing of its output) on every image; per image the HR is
    made, and its deep features computed, once per scale."""
    from tqdm import tqdm

    from srgan.data.degradation import benchmark_hr, degrade
    from srgan.imaging.folders import list_images
    from srgan.imaging.quantize import to_uint8

    scorer, rows = Scorer(), {}
    for dataset in datasets:
        for path in tqdm(list_images(SHARED / "datasets" / dataset, recursive=False), desc=dataset):
            for scale in sorted({s for s, _, _ in upscalers.values()}):
                hr = benchmark_hr(path, scale)
                lr, refs = degrade(hr, scale), scorer.references(hr, scale)
                for label, (s, upscale, posts) in upscalers.items():
                    if s != scale:
                        continue
                    sr = upscale(lr)
                    outputs = {label: sr, **{f"{label} {name}": to_uint8(fix(sr.float() / 255, lr.float() / 255))
                                             for name, fix in posts.items()}}
                    for row, out in outputs.items():
                        rows.setdefault(row, {}).setdefault(dataset, {"images": {}})["images"][path.name] = \
                            scorer(out, hr, scale, refs)
    for by_set in rows.values():
        for summary in by_set.values():
            summary.update(means(summary["images"]))
    return rows


def means(per_image: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = next(iter(per_image.values()))
    return {k: float(np.nanmean([s[k] for s in per_image.values()])) for k in keys}


def seam_models() -> dict[str, torch.nn.Module]:
    """The models the seam measure compares: the shipped x4 models, the shipped weights run with
    reflect padding, and the study's SEAM_ENTRIES once trained."""
    import srgan
    from srgan.inference.engine import prepare_model
    from srgan.models import create

    reflect = create("srresnet_nobn_x4", padding="reflect")
    reflect.load_state_dict(srgan.load_model("srresnet_x4").state_dict())
    models = {"srresnet_x4": srgan.load_model("srresnet_x4"), "srgan_x4": srgan.load_model("srgan_x4"),
              REFLECT_UNTRAINED: reflect}
    for name in SEAM_ENTRIES:  # the study's padding pair and the transposed-conv GAN, once trained
        if (run_dir(name) / OUTPUT).is_file():
            models[name] = srgan.load_model(run_dir(name) / OUTPUT)
    return {label: prepare_model(model) for label, model in models.items()}


def seam_lr(path: Path) -> torch.Tensor:
    """The benchmark LR of an image as the seam measure feeds it: (1, 3, h, w) in [0, 1]."""
    from srgan.data.degradation import benchmark_hr, degrade

    return (degrade(benchmark_hr(path, 4), 4).float()[None] / 255).expand(-1, 3, -1, -1)


def measure_seams(models: dict[str, torch.nn.Module], datasets: list[str], tile: int = 64) -> dict:
    """Seam measures of each model on LR tiles of `tile` pixels processed without context."""
    from srgan.evaluation.seams import seam_scores
    from srgan.imaging.folders import list_images

    result = {}
    for label, model in models.items():
        for dataset in datasets:
            rows = {}
            for path in list_images(SHARED / "datasets" / dataset, recursive=False):
                if max((lr := seam_lr(path)).shape[-2:]) > tile:
                    rows[path.name] = seam_scores(model, lr, tile, 4)
            result.setdefault(label, {})[dataset] = {**means(rows), "images": rows}
    return result


SEAM_IMAGES = ("lenna", "pepper")  # Set14, smooth skin and peppers, where a step shows most


def seam_picture(models: dict[str, torch.nn.Module], tile: int = 64, gain: int = 8) -> Image.Image:
    """A row per model: CROP x CROP windows centred on the LR tile corner (tile, tile) of each
    SEAM_IMAGES image, processed without context, and beside each |no context - exact| x `gain`,
    zoomed x2 (claim 3's picture)."""
    from model_crops import grid, labelled

    from srgan.evaluation.seams import exact_and_without_context

    window = slice(tile * 4 - CROP // 2, tile * 4 + CROP // 2)

    def picture(levels: torch.Tensor, label: str) -> Image.Image:
        crop = levels[:, window, window].clamp(0, 255).byte()
        return labelled(to_image(crop).resize((2 * CROP, 2 * CROP), Image.NEAREST), label)

    rows = []
    for label, model in models.items():
        row = []
        for image in SEAM_IMAGES:
            exact, alone = exact_and_without_context(model, seam_lr(SHARED / "datasets" / "Set14" / f"{image}.png"), tile, 4)
            name = "srresnet_x4, reflect (untrained)" if label == REFLECT_UNTRAINED else label
            row += [picture(alone, name), picture((alone - exact).abs() * gain, f"{image}: |- exact| x{gain}")]
        rows.append(row)
    return grid(rows)


# ---------------------------------------------------------------- tables
METRICS = (("psnr", "PSNR-Y", ".2f"), ("ssim", "SSIM-Y", ".4f"), ("mse", "MSE RGB", ".1f"), ("lpips", "LPIPS", ".4f"),
           ("dists", "DISTS", ".4f"), ("niqe", "NIQE", ".2f"), ("shift", "colour shift", ".1f"))
SEAMS = (("ratio_exact", "ratio, exact tiling"), ("ratio_no_context", "ratio, no context"),
         ("ratio_vs_exact", "ratio vs exact"), ("border_error", "border error (levels)"))
POSTPROC = ("baseline_x4", "ssim16_x4", "ssim20_x4")  # claim 3's post-processing, on GANs with and without a colour shift
CLAIMS = {
    "Pilot: seed spread": ["baseline_x4", "baseline_x4_seed1"],
    "Claim 1 (002) x4": ["baseline_x4", "ssim16_x4", "ssim20_x4"],
    "Claim 1 (002) x2": ["baseline_x2", "ssim16_x2", "ssim20_x2"],
    "Claim 2 (003), convolutional D": ["pretrain16_x4", "adv_conv_r02", "adv_conv_r05", "baseline_x4", "adv_conv_r50",
                                       "adv_conv_r100"],
    "Claim 2 (003), FFT D": ["adv_fft_r02", "adv_fft_r05", "adv_fft_r17", "adv_fft_r50", "adv_fft_r100"],
    "Claim 2 (003), rGAN": ["pretrain16_x2", "baseline_x4", "rgan_x4"],
    "Claim 3 (000), VGG layers and 20 blocks": ["baseline_x4", "vgg22_x4", "vgg34_x4", "vggmulti_x4", "pretrain16_x4",
                                                 "pretrain20_x4"],
    "Claim 3 (000), zero vs reflect padding": ["pretrain16_x4", "pad_reflect_x4"],
    "Claim 4 (004)": ["pretrain8t_x4", "gan8t_x4"],
    "Claim 5 (001)": ["pretrain16_x4", "baseline_x4", "vgg34_x4"],
}


def table(rows: dict[str, dict], datasets: list[str], missing: str = "pending run") -> list[str]:
    """Markdown: one row per (label, dataset), the study's metrics as columns; `missing` where a
    dataset has no scores yet."""
    lines = ["| | set | " + " | ".join(h for _, h, _ in METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for label, by_set in rows.items():
        for d in datasets:
            if by_set is None or d not in by_set:
                lines.append(f"| {label} | {d} | {missing} |" + " |" * (len(METRICS) - 1))
                continue
            cells = [format(by_set[d][k], f) if k in by_set[d] and math.isfinite(by_set[d][k]) else ""
                     for k, _, f in METRICS]
            lines.append(f"| {label} | {d} | " + " | ".join(cells) + " |")
    return lines


def spread(a: dict, b: dict, datasets: list[str]) -> dict[str, dict]:
    """|seed 0 - seed 1| of every metric: the run-to-run spread each effect is read against."""
    return {d: {k: abs(a[d][k] - b[d][k]) for k, _, _ in METRICS if k in a[d] and k in b[d]}
            for d in datasets if d in a and d in b}


def report(datasets: list[str]) -> None:
    def scores_of(name: str) -> dict | None:
        path = committed(name)["scores"]
        return json.loads(path.read_text()) if path.is_file() else None

    for title, names in CLAIMS.items():
        rows = {name: scores_of(name) for name in names}
        a, b = rows.get("baseline_x4"), rows.get("baseline_x4_seed1")
        if title.startswith("Pilot") and a and b:
            rows["spread |seed 0 - seed 1|"] = spread(a, b, datasets)
        print(f"\n### {title}\n", *table(rows, datasets), sep="\n")
    for name in ("shipped", "postproc"):
        path = ROOT / "docs" / "study" / f"{name}.json"
        if path.is_file():
            data = json.loads(path.read_text())
            print(f"\n### Measured: {name}\n", *table(data["rows"], datasets, "not measured yet"), sep="\n")
    path = ROOT / "docs" / "study" / "seams.json"
    if path.is_file():
        data = json.loads(path.read_text())
        print(f"\n### Measured: seams, {data['tile']}x{data['tile']} LR tiles\n")
        print("| model | set | " + " | ".join(h for _, h in SEAMS) + " |", "|---|---|" + "---|" * len(SEAMS), sep="\n")
        for label, by_set in data["rows"].items():
            for d, s in by_set.items():
                print(f"| {label} | {d} | " + " | ".join(f"{s[k]:.3f}" for k, _ in SEAMS) + " |")


# ---------------------------------------------------------------- command line
def cpu_name() -> str:
    try:
        line = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("model name"))
        return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except (OSError, StopIteration):
        return "unknown CPU"


def measure(what: str, datasets: list[str]) -> None:
    if what == "seams":
        models = seam_models()
        rows, extra = measure_seams(models, datasets), {"tile": 64}
        from model_crops import save

        save(seam_picture(models), DOCS / "claim_3_000_seams.png")
    else:
        rows, extra = measure_scores(shipped_upscalers() if what == "shipped" else postproc_upscalers(), datasets), {}
    path = ROOT / "docs" / "study" / f"{what}.json"
    done = {"commands": [], "rows": {}, **(json.loads(path.read_text()) if path.is_file() else {})}
    for label, by_set in rows.items():  # a later call adds datasets (or redoes them), keeping the others
        done["rows"].setdefault(label, {}).update(by_set)
    done["commands"].append(f"python tools/study.py measure {what} --data {' '.join(datasets)}  # {cpu_name()}")
    write_json(path, {**done, **extra})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="entries, what each starts from, how far it is")
    for name, helptext in (("run", "train an entry (and what it starts from), then score it"),
                           ("score", "score a trained entry")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("name")
        p.add_argument("--data", nargs="+", default=list(DATASETS), choices=DATASETS)
        if name == "run":
            p.add_argument("--fresh", action="store_true", help="move an earlier run aside and start over")
    p = sub.add_parser("calibrate", help="content term and adversarial share at the start")
    p.add_argument("names", nargs="*")
    p = sub.add_parser("measure", help="the claims measurable without training")
    p.add_argument("what", choices=("shipped", "postproc", "seams"))
    p.add_argument("--data", nargs="+", default=["Set5", "Set14"], choices=DATASETS)
    p = sub.add_parser("report", help="STUDY.md's tables")
    p.add_argument("--data", nargs="+", default=list(DATASETS), choices=DATASETS)
    sub.add_parser("save", help="the runs' state into git (training/resume/study, docs/study)")
    sub.add_parser("pictures", help="the crops of each claim and the learning curves (docs/study)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    if args.command == "list":
        for name in entries():
            print(f"{name:20s} {state(name):40s} starts from: {', '.join(starting_files(name)) or 'scratch'}")
    elif args.command == "run":
        for name in order(args.name):
            train(name, args.fresh and name == args.name)
        score(args.name, args.data)
    elif args.command == "score":
        score(args.name, args.data)
    elif args.command == "calibrate":
        print("| entry | content terms | content at start | adversarial weight | adversarial share |\n|---|---|---|---|---|")
        for name in args.names or entries():
            print(calibrate(name), flush=True)
    elif args.command == "measure":
        measure(args.what, args.data)
    elif args.command == "save":
        save()
    elif args.command == "pictures":
        pictures()
    else:
        report(args.data)


if __name__ == "__main__":
    main()
