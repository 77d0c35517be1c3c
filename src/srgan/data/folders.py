"""Finding the images of a dataset: every image file under one or more folders, recursively."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from srgan.data.image_io import IMAGE_SUFFIXES
from srgan.errors import SrganError


def list_images(folders: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Image files under `folders` (recursive, hidden files skipped), sorted so every run and every
    rank of a distributed run sees the same order."""
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    folders = [Path(f) for f in folders]
    if not folders:
        raise SrganError("no image folder given (set data.folders)")
    found: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise SrganError(f"image folder not found: {folder}")
        found.extend(sorted(p for p in folder.rglob("*")
                            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(folder).parts)))
    if not found:
        raise SrganError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {', '.join(map(str, folders))}")
    return found
