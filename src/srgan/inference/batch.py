"""Many files through one model: input collection, output naming, refusals and the summary of
`srgan upscale`.

Safety rules: every output path is planned before any work starts, and the run is refused if an
output is one of the inputs, two inputs would write the same output, or an output exists without
`overwrite`. Outputs are written atomically, so an interrupted run leaves finished files complete
and no partial or temporary file behind. A bad file among many is skipped with a warning and
reported; the caller turns skipped files into a non-zero exit code.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from srgan.errors import SrganError
from srgan.imaging.folders import list_images
from srgan.imaging.formats import FORMATS, format_suffix
from srgan.imaging.io import LoadedImage, read_image, write_image
from srgan.inference.cache import Runner
from srgan.inference.options import UpscaleOptions
from srgan.inference.upscale import upscale_loaded

log = logging.getLogger(__name__)
_GLOB_CHARS = set("*?[")


@dataclass
class Job:
    name: str  # shown in messages
    target: Path
    source: Path | None = None
    load: Callable[[], LoadedImage] | None = None  # instead of reading `source` (the demo image)

    def read(self) -> LoadedImage:
        return self.load() if self.load is not None else read_image(self.source)


@dataclass
class Summary:
    done: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)
    seconds: float = 0.0
    megapixels: float = 0.0

    def lines(self) -> list[str]:
        rate = self.megapixels / self.seconds if self.seconds > 0 else 0.0
        head = (f"upscaled {len(self.done)} image(s), skipped {len(self.skipped)}, {self.seconds:.1f} s, "
                f"{self.megapixels:.2f} output MP ({rate:.2f} MP/s)")
        return [head] + [f"  skipped {name}: {reason}" for name, reason in self.skipped]


def collect_inputs(inputs: Iterable[str], *, recursive: bool = False
                   ) -> tuple[list[tuple[Path, Path | None]], list[tuple[str, str]]]:
    """Files named, found in folders (images only; `recursive` for subfolders) or matched by globs.
    Returns ([(file, folder it was found in or None)], [(input, why nothing was found)])."""
    found: list[tuple[Path, Path | None]] = []
    missing: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(path: Path, base: Path | None) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append((path, base))

    for text in inputs:
        path = Path(text)
        if path.is_dir():
            images = list_images(path, recursive)
            if not images:
                missing.append((text, "no images in this folder" + ("" if recursive else " (try --recursive)")))
            for image in images:
                add(image, path)
        elif path.is_file():
            add(path, None)
        elif _GLOB_CHARS & set(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=recursive))
            files = [m for m in matches if m.is_file()]
            for folder in (m for m in matches if m.is_dir()):
                files += list_images(folder, recursive)
            if not files:
                missing.append((text, "no files match this pattern"))
            for file in files:
                add(file, None)
        else:
            missing.append((text, "no such file or folder"))
    return found, missing


def output_name(source: Path, suffix: str, fmt: str | None) -> str:
    """`stem + suffix + extension`: the extension of `fmt`, else the input's when it is writable, else .png."""
    if fmt:
        ext = format_suffix(fmt)
    else:
        ext = source.suffix if source.suffix.lower() in FORMATS else ".png"
    return f"{source.stem}{suffix}{ext}"


def plan_jobs(files: list[tuple[Path, Path | None]], *, output: str | None, suffix: str, fmt: str | None,
              overwrite: bool) -> list[Job]:
    """The output path of every input, refusing outputs that are inputs, collide or exist already."""
    out = Path(output) if output else None
    single_file = (out is not None and len(files) == 1 and not out.is_dir()
                   and out.suffix.lower() in FORMATS)
    if out is not None and not single_file and out.suffix.lower() in FORMATS and not out.is_dir():
        raise SrganError(f"-o {out} looks like a file but there are {len(files)} inputs: give a folder")
    jobs = []
    for source, base in files:
        if single_file:
            target = out
        else:
            name = output_name(source, suffix, fmt)
            if out is None:
                target = source.parent / name
            else:
                sub = source.parent.relative_to(base) if base is not None else Path()
                target = out / sub / name
        jobs.append(Job(name=str(source), target=target, source=source))
    check_targets(jobs, overwrite=overwrite)
    return jobs


def check_targets(jobs: list[Job], *, overwrite: bool) -> None:
    sources = {job.source.resolve() for job in jobs if job.source is not None}
    targets: dict[Path, Job] = {}
    for job in jobs:
        key = job.target.resolve()
        if key in sources:
            raise SrganError(f"output {job.target} would overwrite the input {job.target}: "
                             "choose another -o or --suffix")
        if key in targets:
            raise SrganError(f"{targets[key].name} and {job.name} would both be written to {job.target}")
        targets[key] = job
    existing = [job.target for job in jobs if job.target.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise SrganError(f"{existing[0]} already exists{more}: pass --overwrite to replace it")
    for job in jobs:
        if job.target.is_dir():
            raise SrganError(f"output {job.target} is a folder")


def run_jobs(jobs: list[Job], runner: Runner, options: UpscaleOptions, *, strict: bool = False,
             progress: bool = False, on_file: Callable[[Job, str | None], None] | None = None) -> Summary:
    """Upscale and write every job. A failing job is skipped with a warning; with `strict` (a
    single input) its error is raised instead. `on_file(job, error or None)` is called after each
    file; `progress` shows a bar over the files (or over the tiles of a single file).
    KeyboardInterrupt stops the run at once."""
    summary = Summary()
    start = time.perf_counter()
    many = len(jobs) > 1
    with tqdm(jobs, desc="images", unit="img", disable=not (progress and many)) as bar:
        for job in bar:
            try:
                image = job.read()
                result = upscale_loaded(image, runner, options, progress=progress and not many)
                write_image(job.target, result, format=options.format, quality=options.quality,
                            strip_metadata=options.strip_metadata)
            except SrganError as exc:
                if strict:
                    raise
                reason = str(exc).removeprefix(f"{job.source}: ") if job.source else str(exc)
                log.warning("skipped %s: %s", job.name, reason)
                summary.skipped.append((job.name, reason))
                if on_file is not None:
                    on_file(job, reason)
                continue
            summary.done.append(job.target)
            summary.megapixels += result.width * result.height / 1e6
            if on_file is not None:
                on_file(job, None)
    summary.seconds = time.perf_counter() - start
    return summary
