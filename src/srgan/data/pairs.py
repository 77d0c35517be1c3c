"""Real LR/HR pairs: two folders whose images are matched by file name, the LR given rather than
made, as in the real-world benchmarks (RealSR, DRealSR: one scene shot by a camera at two focal
lengths) or a fixed degraded copy of a test set. No degradation is synthesised and nothing is
mod-cropped: the HR must be exactly `scale` times the LR.

Names match by stem, so a JPEG LR pairs with a PNG HR of the same name.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image

from srgan.errors import SrganError
from srgan.imaging.folders import list_images
from srgan.imaging.io import read_8bit

_SHOWN = 5  # unmatched names listed in the error


def _by_stem(paths: list[Path], folder: str | os.PathLike) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems:
            raise SrganError(f"{folder}: {stems[path.stem].name} and {path.name} have one name; keep one of them")
        stems[path.stem] = path
    return stems


def _names(stems: list[str], by: dict[str, Path]) -> str:
    shown = ", ".join(by[s].name for s in stems[:_SHOWN])
    return shown + (f" and {len(stems) - _SHOWN} more" if len(stems) > _SHOWN else "")


def match_pairs(lr_folder: str | os.PathLike, hr_folder: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(LR, HR) files of two folders (not their subfolders) matched by name, sorted; every image
    must have its pair, else one line names those that have none."""
    lrs = _by_stem(list_images(lr_folder, recursive=False), lr_folder)
    hrs = _by_stem(list_images(hr_folder, recursive=False), hr_folder)
    no_hr, no_lr = sorted(lrs.keys() - hrs.keys()), sorted(hrs.keys() - lrs.keys())
    if no_hr or no_lr:
        parts = ([f"{len(no_hr)} LR image(s) of {lr_folder} have no HR in {hr_folder}: {_names(no_hr, lrs)}"]
                 if no_hr else [])
        parts += [f"{len(no_lr)} HR image(s) of {hr_folder} have no LR in {lr_folder}: {_names(no_lr, hrs)}"] \
            if no_lr else []
        raise SrganError("; ".join(parts) + " (pairs are matched by file name)")
    if not lrs:
        raise SrganError(f"no images in {lr_folder}")
    return [(lrs[s], hrs[s]) for s in sorted(lrs)]


def stored_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an image as read upright (EXIF orientation 5-8 swaps them), from its header
    alone; None if the header cannot be read (the reader says why later)."""
    try:
        with Image.open(path) as im:
            swap = im.getexif().get(0x0112) in (5, 6, 7, 8)
            return (im.height, im.width) if swap else (im.width, im.height)
    except Exception:  # noqa: BLE001 - a broken file is reported, with its reason, when it is read
        return None


class SizeMismatch(SrganError):
    """An HR that is not `scale` times its LR: the wrong folders or the wrong scale, not one bad file."""


def _size_error(lr: Path, hr: Path, lr_size: tuple[int, int], hr_size: tuple[int, int], scale: int) -> SrganError:
    return SizeMismatch(f"{hr.name}: HR is {hr_size[0]}x{hr_size[1]} but its LR {lr} is {lr_size[0]}x{lr_size[1]}; "
                      f"x{scale} needs HR {lr_size[0] * scale}x{lr_size[1] * scale}")


def check_sizes(pairs: list[tuple[Path, Path]], scale: int) -> None:
    """Refuse, before any work, a pair whose HR is not exactly `scale` times its LR (headers only)."""
    for lr, hr in pairs:
        lr_size, hr_size = stored_size(lr), stored_size(hr)
        if lr_size and hr_size and hr_size != (lr_size[0] * scale, lr_size[1] * scale):
            raise _size_error(lr, hr, lr_size, hr_size, scale)


def read_pair(lr_path: Path, hr_path: Path, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (C, h, w) LR and (C, h*scale, w*scale) HR; a gray LR of a colour HR (or the reverse)
    is taken as the HR's channels, since a model's output has the input's."""
    lr, hr = read_8bit(lr_path), read_8bit(hr_path)
    if hr.shape[-2:] != (lr.shape[-2] * scale, lr.shape[-1] * scale):
        raise _size_error(lr_path, hr_path, (lr.shape[-1], lr.shape[-2]), (hr.shape[-1], hr.shape[-2]), scale)
    if lr.shape[0] != hr.shape[0]:
        lr = lr.expand(3, -1, -1).contiguous() if lr.shape[0] == 1 else lr.float().mean(0, keepdim=True).round().byte()
    return lr, hr
