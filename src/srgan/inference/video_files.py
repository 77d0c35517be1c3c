"""Many video files: which inputs are videos, where each output goes, and the summary of a run.

A job over folders of videos is split among processes (`--shard`, torchrun) by whole files: every
process lists the same inputs in the same order and takes its part, as for images.
"""

from __future__ import annotations

import dataclasses
import glob
from dataclasses import dataclass
from pathlib import Path

from srgan.errors import SrganError
from srgan.imaging.folders import list_images
from srgan.imaging.video import ANIMATION_SUFFIXES, is_animation, is_video
from srgan.inference.batch import Job, check_paths
from srgan.inference.video import VideoResult


@dataclass
class VideoSummary:
    done: list[VideoResult] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (input, reason)
    existing: int = 0
    label: str = ""

    def lines(self) -> list[str]:
        frames = sum(r.upscaled for r in self.done)
        seconds = sum(r.seconds for r in self.done)
        kept = f", {self.existing} already done" if self.existing else ""
        rate = frames / seconds if seconds > 0 else 0.0
        head = (f"{self.label + ': ' if self.label else ''}upscaled {len(self.done)} video(s), skipped "
                f"{len(self.skipped)}{kept}: {frames} frame(s) in {seconds:.1f} s ({rate:.2f} frames/s)")
        return [head] + [f"  skipped {name}: {reason}" for name, reason in self.skipped]


def list_videos(inputs: list[str], *, recursive: bool = False) -> list[tuple[Path, Path | None]]:
    """Video files named, in folders (`recursive`: subfolders too) or matched by globs, with the folder
    each was found in (None for files named), sorted within each input so every shard sees one order."""
    found: list[tuple[Path, Path | None]] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in (path.rglob("*") if recursive else path.iterdir())
                           if is_video(p) and p.is_file() and not p.name.startswith("."))
            if not files:
                raise SrganError(f"{text}: no videos in this folder" + ("" if recursive else " (try --recursive)"))
            found += [(p, path) for p in files]
        elif path.is_file():
            found.append((path, None))
        else:
            matches = sorted(Path(m) for m in glob.glob(text, recursive=recursive))
            if not matches:
                raise SrganError(f"{text}: no such file or folder")
            found += [(m, None) for m in matches if m.is_file()]
    return found


def plan_videos(inputs: list[str], output: str | Path | None, suffix: str, *, recursive: bool = False) -> list[Job]:
    """A job per video, its output named and checked: none is an input, no two collide."""
    files = list_videos(inputs, recursive=recursive)
    if not files:
        raise SrganError("no input given")
    out = None if output is None else Path(output)
    jobs = [Job(name=str(source), target=video_target(source, base, out, suffix, len(files) == 1), source=source)
            for source, base in files]
    check_paths(jobs)
    return jobs


def video_target(source: Path, base: Path | None, output: Path | None, suffix: str, single: bool) -> Path:
    """Where `source`'s upscaled video goes: `output` itself for one input given a file name, else
    STEM + SUFFIX + the input's extension next to it or under `output` (keeping subfolders)."""
    if output is not None and single and output.suffix and not output.is_dir():
        return output
    name = f"{source.stem}{suffix}{ANIMATION_SUFFIXES.get(source.suffix.lower(), source.suffix)}"
    if output is None:
        return source.parent / name
    return output / (source.parent.relative_to(base) if base is not None else Path()) / name


def is_video_job(inputs: list[str], *, recursive: bool = False) -> bool:
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            listing = path.rglob("*") if recursive else path.iterdir()
            if any(is_video(p) for p in listing) and not list_images(path, recursive):
                return True
        elif is_video(path) or is_animation(path):
            return True
    return False
