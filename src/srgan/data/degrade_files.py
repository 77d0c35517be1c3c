"""Degraded copies of image files: to see what a model is trained on, and to make fixed, seeded
validation sets (e.g. a real-world-degraded BSD100) with the very pipeline training uses.

Each file's degradation is drawn from (seed, CRC-32 of its name), so a file gets the same LR whatever
else is in the folder, on any machine. The HR is mod-cropped to a multiple of the scale first (as
the benchmark protocol does), so LR x scale = the cropped HR exactly; gray files are degraded as RGB.
Outputs are 8-bit PNGs named like their inputs, written atomically; existing outputs are refused
before any work unless `overwrite`, and an output folder that holds the inputs is refused.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from srgan.data.degradation import mod_crop
from srgan.data.degradations import build_degradation
from srgan.errors import SrganError
from srgan.files import existing_file, writable_folder
from srgan.imaging.folders import list_images
from srgan.imaging.io import LoadedImage, read_8bit, write_image


def _inputs(sources: Sequence[str | os.PathLike]) -> list[Path]:
    files: list[Path] = []
    for source in map(Path, sources):
        files += list_images(source) if source.is_dir() else [existing_file(source, "input image")]
    if not files:
        raise SrganError(f"no images found in {', '.join(map(str, sources))}")
    return files


def degrade_files(sources: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                  degradation: Mapping[str, Any] | str = "realesrgan", scale: int = 4, seed: int = 0,
                  overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Write the degraded LR of every image in `sources` (files or folders) into the folder `output`."""
    spec = {"type": degradation} if isinstance(degradation, str) else dict(degradation)
    degrade = build_degradation(spec, prefix="degradation.")
    files = _inputs(sources)
    folder = writable_folder(output)
    targets = [folder / f"{path.stem}.png" for path in files]
    if len(set(targets)) < len(targets):
        raise SrganError("two inputs have the same file name; their outputs would collide in " + str(folder))
    clash = next((t for t, f in zip(targets, files) if t.resolve() == f.resolve()), None)
    if clash is not None:
        raise SrganError(f"{clash}: the output would replace its input; choose another output folder")
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise SrganError(f"{existing[0]} exists ({len(existing)} outputs in all); pass --overwrite to replace them")
    for path, target in tqdm(list(zip(files, targets)), desc="degrade", unit="img", disable=not progress):
        hr = mod_crop(read_8bit(path).expand(3, -1, -1), scale).float().div_(255.0).contiguous()
        rng = np.random.default_rng([seed, zlib.crc32(path.name.encode())])
        lr = degrade(hr, scale, rng)
        write_image(target, LoadedImage(pixels=lr.to(torch.float32)), overwrite=overwrite)
    return targets
