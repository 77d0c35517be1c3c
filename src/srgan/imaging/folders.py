"""Finding the images in a folder: one listing for training data, evaluation and `srgan upscale`."""

from __future__ import annotations

import os
from pathlib import Path

from srgan.errors import SrganError
from srgan.imaging.formats import IMAGE_SUFFIXES


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Files under `folder` with an image suffix (any case), in subfolders too when `recursive`,
    hidden files and folders skipped, sorted so every run and every rank of a distributed run sees
    the same order. An empty list when there are none; a missing folder is an `SrganError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SrganError(f"image folder not found: {folder}")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))
