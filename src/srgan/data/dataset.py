"""Training pairs: random HR crops and their LR made on the fly by a registered degradation
(`srgan.data.degradations`; the default is the benchmark protocol, MATLAB-compatible bicubic).

Reproducibility without sampler state: every sample has a global id (iteration x global batch +
rank x batch + position), and everything random about it (which image, crop, flips, rotation,
jitter) comes from a generator seeded with (seed, id). Images are visited in a fresh permutation per
pass over the folder, like a shuffling sampler. A run resumed at iteration i therefore sees exactly
the batches the uninterrupted run saw, with any number of DataLoader workers, and the ranks of a
distributed run draw disjoint ids, which is what DistributedSampler would give.

Workers: `data.workers: 0` is the default. Making a batch of 16 crops (crop, flip, bicubic LR) takes
a few milliseconds, against hundreds for one SRResNet step on CPU, so on a 2-core machine extra
worker processes only compete with the training threads. The real-world degradations cost ~25 ms
per 128-pixel crop on one Zen 3 core (0.4 s a batch of 16): give them one worker on a 2-core CPU,
so they run beside the training step; on a GPU machine use 2-8 workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from srgan.data.degradations import Degradation
from srgan.data.degradations.bicubic import Bicubic
from srgan.data.degradations.steps import unsharp_mask
from srgan.errors import SrganError
from srgan.imaging.folders import list_images
from srgan.imaging.formats import IMAGE_SUFFIXES
from srgan.imaging.io import read_8bit

log = logging.getLogger(__name__)


def training_images(folders: Sequence[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """The image files under `folders` and all their subfolders, in a fixed order."""
    folders = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
    if not folders:
        raise SrganError("no image folder given (set data.folders)")
    found = [path for folder in folders for path in list_images(folder, recursive=True)]
    if not found:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise SrganError(f"no images ({suffixes}) found in {', '.join(map(str, folders))}")
    return found


def read_rgb(path: Path) -> np.ndarray:
    """HxWx3 uint8 through the one reader (`imaging.io.read_8bit`: EXIF orientation applied, CMYK and
    palette converted, 16 bits reduced to 8 the one way, alpha dropped since SR targets are opaque);
    gray files are replicated to three equal channels, the gray RGB image a model is trained on."""
    return np.ascontiguousarray(read_8bit(path).expand(3, -1, -1).permute(1, 2, 0).numpy())


class HRImages:
    """The decoded HR images of the training folders, kept in memory up to `cache_bytes`.

    Every file is decoded once when the dataset is built, so a corrupt one is found (and skipped
    with one warning naming it) before training starts; the ones beyond the memory budget are read
    again whenever they are sampled."""

    def __init__(self, paths: Sequence[Path], *, min_size: int, small_images: str = "pad",
                 cache_bytes: int = 2 << 30, warn: bool = True) -> None:
        self.paths: list[Path] = []
        self._cache: list[np.ndarray | None] = []
        used = 0
        skipped_small = 0
        for path in paths:
            try:
                array = read_rgb(path)
            except SrganError as exc:  # the message names the file
                if warn:
                    log.warning("skipping unreadable image: %s", exc)
                continue
            if min(array.shape[:2]) < min_size and small_images == "skip":
                skipped_small += 1
                continue
            keep = used + array.nbytes <= cache_bytes
            used += array.nbytes if keep else 0
            self.paths.append(path)
            self._cache.append(array if keep else None)
        if skipped_small and warn:
            log.warning("skipped %d images smaller than the %d px crop (data.small_images: skip)",
                        skipped_small, min_size)
        if not self.paths:
            raise SrganError(f"no usable training image among {len(paths)} files "
                             f"(all unreadable or smaller than {min_size} px)")
        self.cached_bytes = used

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        cached = self._cache[index]
        return cached if cached is not None else read_rgb(self.paths[index])


class TrainPatches(torch.utils.data.Dataset):
    """Sample id -> (LR, HR) float32 CHW tensors in [0, 1]; LR is HR degraded and shrunk `scale` times
    (`hr_crop` a multiple of `scale`: the training config checks it where it enters).
    With `sharpen_hr`, (LR, sharpened HR, HR): the LR is made from the sharpened crop, the content
    losses learn the sharpened target and the discriminator sees the plain crop (Real-ESRGAN)."""

    def __init__(self, folders: Sequence[str | os.PathLike] | str, *, hr_crop: int, scale: int, seed: int = 0,
                 flips: bool = True, rotations: bool = True, jitter: dict[str, float] | None = None,
                 small_images: str = "pad", cache_bytes: int = 2 << 30, quantize_lr: bool = True,
                 degradation: Degradation | None = None, sharpen_hr: bool = False, warn: bool = True) -> None:
        self.images = HRImages(training_images(folders), min_size=hr_crop, small_images=small_images,
                               cache_bytes=cache_bytes, warn=warn)
        self.hr_crop, self.scale, self.seed = hr_crop, scale, seed
        self.flips, self.rotations = flips, rotations
        self.degradation = degradation or Bicubic(quantize_lr)
        self.sharpen_hr = sharpen_hr
        self.jitter = jitter or {}
        self._perm_epoch = -1
        self._perm = np.arange(0)

    def __len__(self) -> int:
        return len(self.images)  # one pass; the batch sampler runs for as many passes as needed

    def _image_index(self, sample_id: int) -> int:
        n = len(self.images)
        epoch = sample_id // n
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch, 7]).permutation(n)
            self._perm_epoch = epoch
        return int(self._perm[sample_id % n])

    def __getitem__(self, sample_id: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng([self.seed, int(sample_id)])
        image = self.images[self._image_index(int(sample_id))]
        crop = self.hr_crop
        h, w = image.shape[:2]
        if h < crop or w < crop:  # mirror the image out to the crop size
            image = np.pad(image, ((0, max(0, crop - h)), (0, max(0, crop - w)), (0, 0)), mode="reflect")
            h, w = image.shape[:2]
        top = int(rng.integers(0, h - crop + 1))
        left = int(rng.integers(0, w - crop + 1))
        patch = image[top:top + crop, left:left + crop]
        if self.flips and rng.random() < 0.5:
            patch = patch[:, ::-1]
        if self.rotations:
            patch = np.rot90(patch, int(rng.integers(0, 4)))
        hr = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float().div_(255.0)
        if self.jitter.get("p", 0.0) > 0:
            hr = color_jitter(hr, rng, **self.jitter)
        if self.sharpen_hr:
            sharp = unsharp_mask(hr)
            return self.degradation(sharp, self.scale, rng), sharp, hr
        return self.degradation(hr, self.scale, rng), hr


def color_jitter(hr: torch.Tensor, rng: np.random.Generator, *, p: float, brightness: float, saturation: float,
                 darken: float) -> torch.Tensor:
    """Osnabrueck-report augmentation: brightness, saturation and darkening, each with probability p."""
    if rng.random() < p:
        hr = hr * float(rng.uniform(1.0 - brightness, 1.0 + brightness))
    if rng.random() < p:
        gray = (0.299 * hr[0] + 0.587 * hr[1] + 0.114 * hr[2]).unsqueeze(0)
        hr = gray + (hr - gray) * float(rng.uniform(1.0 - saturation, 1.0 + saturation))
    if rng.random() < p:
        hr = hr * float(rng.uniform(1.0 - darken, 1.0))
    return hr.clamp(0.0, 1.0)


class StepBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of sample ids for iterations `start`..`stop` of this rank: a pure function of the
    iteration, so resuming needs only the iteration number."""

    def __init__(self, batch_size: int, start: int, stop: int, rank: int = 0, world_size: int = 1) -> None:
        self.batch_size, self.start, self.stop = batch_size, start, stop
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        per_step = self.batch_size * self.world_size
        for step in range(self.start, self.stop):
            first = step * per_step + self.rank * self.batch_size
            yield list(range(first, first + self.batch_size))


def make_loader(dataset: TrainPatches, *, batch_size: int, start: int, stop: int, rank: int = 0,
                world_size: int = 1, workers: int = 0, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    sampler = StepBatchSampler(batch_size, start, stop, rank, world_size)
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory,
                                       persistent_workers=False, prefetch_factor=4 if workers else None)
