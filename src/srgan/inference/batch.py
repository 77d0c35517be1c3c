"""Many files through one model: input collection, output naming, refusals, the file source and
sink that run them through the frame pipeline (`srgan.inference.frames`), and the summary of
`srgan upscale`.

Safety rules: every output path is planned before any work starts, and the run is refused if an
output is one of the inputs or two inputs would write the same output. An existing output is
refused, replaced (`overwrite`) or kept as done (`skip_existing`, the default for a folder given
with -o): outputs are written atomically (`srgan.files.atomic_write`: to a temporary name, then
linked into place, so one that another program made meanwhile is kept), so an output that exists
is complete, and a run killed even with SIGKILL does only what is left when started again. A bad
file among many, or an output that cannot be written (full disk, no permission), is skipped with a
warning and reported; the caller turns skipped files into a non-zero exit code.

Big jobs: `Shard` gives this process its part of the sorted inputs (torchrun ranks, `--shard I/N`);
names, collisions and refusals are planned over the whole job, existing outputs over this part only
(the other parts' outputs appear while it runs). Images are frames of the pipeline that videos go
through: reading and writing happen in worker threads while the model runs, a few images ahead, so
memory stays flat.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from srgan.errors import SrganError
from srgan.files import kind_of, remove_stale_temps, writable_folder
from srgan.imaging.folders import list_images
from srgan.imaging.formats import FORMATS, format_suffix
from srgan.imaging.io import LoadedImage, read_image, write_image
from srgan.inference.cache import Runner
from srgan.inference.frames import Frame, run_frames
from srgan.inference.manifest import FileRecord
from srgan.inference.options import UpscaleOptions
from srgan.inference.shard import Shard
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
    existing: int = 0  # outputs already there, kept (skip_existing)
    label: str = ""  # "rank 1/4" in a sharded run
    job_totals: str = ""  # on rank 0 of a torchrun job: the counts of all ranks
    torchrun: bool = False  # a rank of a torchrun job: skipped files do not make its exit code non-zero

    def lines(self) -> list[str]:
        rate = self.megapixels / self.seconds if self.seconds > 0 else 0.0
        kept = f", {self.existing} already done" if self.existing else ""
        head = (f"{self.label + ': ' if self.label else ''}upscaled {len(self.done)} image(s), skipped "
                f"{len(self.skipped)}{kept}, {self.seconds:.1f} s, {self.megapixels:.2f} output MP ({rate:.2f} MP/s)")
        total = [self.job_totals] if self.job_totals else []
        return [head] + [f"  skipped {name}: {reason}" for name, reason in self.skipped] + total


@dataclass
class Plan:
    """This process's work: its part of the files, those of them already done, and inputs without images."""

    jobs: list[Job]
    existing: list[Job]
    missing: list[tuple[str, str]]  # (input, why nothing was found)
    total: int  # files in the whole job, all parts

    @property
    def single(self) -> bool:
        """One file named and nothing else: its error is raised rather than reported."""
        return self.total == 1 and not self.missing


def plan(inputs: Iterable[str], *, output: str | None, suffix: str, fmt: str | None, recursive: bool = False,
         overwrite: bool = False, skip_existing: bool | None = None, shard: Shard | None = None) -> Plan:
    """Collect the inputs, name every output, check them all, and keep this `shard`'s part, minus the
    outputs already there when skipping. `skip_existing` None: skip when `output` is a folder."""
    files, missing = collect_inputs(inputs, recursive=recursive)
    if not files:
        if not missing:
            raise SrganError("no input given")
        name, reason = missing[0]
        raise SrganError(f"{name}: {reason}" if len(missing) == 1 else f"no images found in {len(missing)} inputs")
    for name, reason in missing:
        log.warning("skipped %s: %s", name, reason)
    jobs = plan_jobs(files, output=output, suffix=suffix, fmt=fmt)
    if overwrite and skip_existing:
        raise SrganError("--overwrite replaces existing outputs and --skip-existing keeps them: choose one")
    if skip_existing is None:
        skip_existing = output is not None and not (len(jobs) == 1 and jobs[0].target == Path(output))
    shard = shard or Shard()
    mine = [jobs[i] for i in shard.select([job.source for job in jobs])]
    prepare_folders(mine)
    todo, existing = split_existing(mine, "overwrite" if overwrite else "skip" if skip_existing else "refuse")
    return Plan(todo, existing, missing, len(jobs))


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
        elif path.exists():  # a FIFO, socket or device: never opened (reading a FIFO blocks)
            missing.append((text, f"is {kind_of(path.stat().st_mode)}, not an image file"))
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


def output_suffix(suffix: str | None, options: UpscaleOptions, scale: int) -> str:
    """`suffix`, checked, or the default `_x{outscale or the model's scale}`."""
    if suffix is None:
        return f"_x{options.outscale if options.outscale is not None else scale:g}"
    if "/" in suffix or "\\" in suffix or suffix in (".", ".."):
        raise SrganError(f"suffix {suffix!r} must not contain a path separator")
    return suffix


def plan_jobs(files: list[tuple[Path, Path | None]], *, output: str | None, suffix: str, fmt: str | None
              ) -> list[Job]:
    """The output path of every input, refusing outputs that are inputs or collide."""
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
    check_paths(jobs)
    return jobs


def check_targets(jobs: list[Job], *, overwrite: bool) -> None:
    """`check_paths`, existing outputs refused unless `overwrite`, and `prepare_folders`."""
    check_paths(jobs)
    split_existing(jobs, "overwrite" if overwrite else "refuse")
    prepare_folders(jobs)


def check_paths(jobs: list[Job]) -> None:
    """Refuse outputs that are inputs or that two inputs share (names only, no file system access)."""
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


def split_existing(jobs: list[Job], policy: str) -> tuple[list[Job], list[Job]]:
    """(jobs to run, jobs whose output exists) under `policy`: refuse (raise if any exists), skip, overwrite."""
    present = {id(job) for job in jobs if job.target.exists()}
    for job in jobs:
        if id(job) in present and job.target.is_dir():
            raise SrganError(f"output {job.target} is a folder")
    if not present or policy == "overwrite":
        return jobs, []
    if policy == "refuse":
        first = next(job.target for job in jobs if id(job) in present)
        more = f" (and {len(present) - 1} more)" if len(present) > 1 else ""
        raise SrganError(f"{first} already exists{more}: pass --overwrite to replace it "
                         "(or --skip-existing to keep it)")
    return [job for job in jobs if id(job) not in present], [job for job in jobs if id(job) in present]


def prepare_folders(jobs: list[Job]) -> None:
    """Refuse, before any work, output folders that cannot be written, and delete the temporary
    files that a killed run left there for these outputs (`srgan.files.remove_stale_temps`)."""
    names: dict[Path, set[str]] = {}
    for job in jobs:
        names.setdefault(job.target.parent, set()).add(job.target.name)
    for folder, wanted in names.items():
        writable_folder(folder)
        remove_stale_temps(folder, wanted.__contains__)


def run_jobs(jobs: list[Job], runner: Runner, options: UpscaleOptions, *, strict: bool = False,
             progress: bool = False, on_file: Callable[[Job, str | None], None] | None = None, io_threads: int = 2,
             record: Callable[[FileRecord], None] | None = None, label: str = "", position: int = 0,
             overwrite: bool = False) -> Summary:
    """Upscale and write every job through `srgan.inference.frames.run_frames`: `io_threads` threads
    read the next images and as many write the finished ones while the model runs (0: everything in
    this thread, one after the other); at most `io_threads + 1` images wait on each side, so memory
    stays flat. A failing job is skipped with a warning; with `strict` (a single input) its error is
    raised instead. In job order, each file is passed to `on_file(job, error or None)` and its
    `FileRecord` to `record` (the manifest). `progress` shows a bar over the files with MP/s (or over
    the tiles of a single file), at line `position` and named `label`. An output that exists when it
    is written (made by another program since `plan` checked) is kept and its job skipped, unless
    `overwrite`. KeyboardInterrupt stops the run: writes under way finish, queued ones are dropped."""
    if isinstance(io_threads, bool) or not isinstance(io_threads, int) or io_threads < 0:
        raise SrganError(f"io_threads must be a whole number >= 0, got {io_threads!r}")
    many = len(jobs) > 1
    bar = tqdm(total=len(jobs), desc=label or "images", unit="img", position=position, dynamic_ncols=True,
               disable=not (progress and many))
    source = FileSource(jobs)
    sink = FileSink(jobs, options, Summary(label=label), strict=strict, overwrite=overwrite, record=record,
                    on_file=on_file, bar=bar)
    try:
        run_frames(source, sink, lambda image: upscale_loaded(image, runner, options, progress=progress and not many),
                   read=source.read, threads=io_threads, skip=(SrganError,), on_frame=sink.finish)
    finally:
        bar.close()
    sink.summary.seconds = time.perf_counter() - sink.started
    return sink.summary


class FileSource:
    """The image-file frame source: job i is frame i, yielded unread and read by `read` (in reader
    threads) with the start of its manifest record as the frame's note. A file that cannot be read
    is a frame carrying the error, which the sink records as skipped in its turn."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs

    def __iter__(self) -> Iterator[Frame]:
        return (Frame(index) for index in range(len(self.jobs)))

    def read(self, frame: Frame) -> Frame:
        job = self.jobs[frame.index]
        rec = FileRecord(input=str(job.source or job.name), output=str(job.target), status="failed", start=time.time())
        try:
            rec.start, image, rec.in_bytes = _read(job)
        except SrganError as exc:
            return dataclasses.replace(frame, error=exc, note=rec)
        rec.in_size = [image.width, image.height]
        return dataclasses.replace(frame, image=image, note=rec)


class FileSink:
    """The image-file frame sink: `write` (in writer threads) puts each upscaled image atomically at
    its job's target; `finish` (in job order, in the caller's thread) puts the outcome into the
    summary, the record (the manifest), `on_file` and the bar, and raises a failure under `strict`."""

    def __init__(self, jobs: list[Job], options: UpscaleOptions, summary: Summary, *, strict: bool, overwrite: bool,
                 record: Callable[[FileRecord], None] | None, on_file: Callable[[Job, str | None], None] | None,
                 bar: tqdm) -> None:
        self.jobs, self.options, self.summary, self.strict, self.overwrite = jobs, options, summary, strict, overwrite
        self.record, self.on_file, self.bar = record, on_file, bar
        self.started = time.perf_counter()

    def write(self, frame: Frame) -> None:
        if frame.error is not None:
            return
        rec = frame.note
        rec.out_size = [frame.image.width, frame.image.height]
        try:
            rec.end, rec.out_bytes = _write(self.jobs[frame.index], frame.image, self.options, self.overwrite)
        except SrganError as exc:  # full disk, no permission, an output made meanwhile: this file is skipped
            frame.error = exc

    def finish(self, frame: Frame) -> None:
        job, rec, summary = self.jobs[frame.index], frame.note, self.summary
        _settle(job, rec, frame.error, summary, self.strict)
        rec.seconds = rec.end - rec.start
        if self.record is not None:
            _record(self.record, rec, summary)
        if self.on_file is not None:
            self.on_file(job, rec.error)
        rate = summary.megapixels / max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix_str(f"{rate:.2f} MP/s", refresh=False)
        self.bar.update()


def _record(record: Callable[[FileRecord], None], rec: FileRecord, summary: Summary) -> None:
    """`rec` into the run's record (the manifest); when that fails the record is lost from here on,
    so the run stops in one line naming what is done (kept)."""
    try:
        record(rec)
    except SrganError as exc:
        last = f" (the last: {summary.done[-1]})" if summary.done else ""
        raise SrganError(f"{exc}: stopped; {len(summary.done)} file(s) done before it are kept{last}, "
                         "the others not started") from exc


def _settle(job: Job, rec: FileRecord, error: Exception | None, summary: Summary, strict: bool) -> None:
    """The job's outcome into its record and the summary; with `strict` a failure is raised."""
    if error is None:
        rec.status = "done"
        summary.done.append(job.target)
        summary.megapixels += rec.out_size[0] * rec.out_size[1] / 1e6
        return
    if strict and (job.name in str(error) or str(job.target) in str(error)):
        raise error
    if strict:  # the message of a single input names it, as the summary line of a batch does
        raise SrganError(f"{job.name}: {error}") from error
    rec.end, rec.error = time.time(), str(error).removeprefix(f"{job.source}: ") if job.source else str(error)
    log.warning("skipped %s: %s", job.name, rec.error)
    summary.skipped.append((job.name, rec.error))


def _read(job: Job) -> tuple[float, LoadedImage, int | None]:
    started = time.time()
    image = job.read()
    return started, image, job.source.stat().st_size if job.source is not None else None


def _write(job: Job, result: LoadedImage, options: UpscaleOptions, overwrite: bool) -> tuple[float, int]:
    path = write_image(job.target, result, format=options.format, quality=options.quality,
                       strip_metadata=options.strip_metadata, overwrite=overwrite)
    return time.time(), path.stat().st_size
