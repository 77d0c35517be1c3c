"""One share of a big job: which files this process does, on which device, with how many threads.

A job is split among processes without talking to each other: every process lists the same inputs,
sorts them the same way, reads the same image headers and so computes the same split; process `i`
of `n` takes part `i`. No file is done twice or missed, and nothing is exchanged while working.

torchrun ranks meet once, at the end (`meet_at_the_end`): torchrun stops every rank as soon as one
exits with a non-zero code, so a rank with a failed file (exit 1) that finished early would kill
the others mid-work. Only then is a gloo group made, over torchrun's own rendezvous store; it
waits for the slowest rank and sums the ranks' counts for one job total.

- Under `torchrun` the share comes from `RANK` / `WORLD_SIZE`, the device from `LOCAL_RANK`
  (`cuda:LOCAL_RANK`), and on CPU each process gets `cores / LOCAL_WORLD_SIZE` threads.
- `--shard I/N` does the same by hand (Slurm arrays, cron jobs). Both together split part `I` of `N`
  again among the torchrun ranks: part `I * WORLD_SIZE + RANK` of `N * WORLD_SIZE`.
- Parts are contiguous runs of the sorted list balanced by pixels (width x height from the file
  header; Pillow reads the header without decoding the pixels), not by file count: a part's pixels
  differ from the ideal `total / n` by at most one image.
"""

from __future__ import annotations

import bisect
import datetime
import itertools
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from srgan.errors import SrganError

_HEADER_THREADS = 8  # header reads are small and wait on storage, not the CPU
MAX_PARTS = 1_000_000
"""Most parts a job splits into (`--shard I/N`): beyond any cluster, and the split stays instant."""


@dataclass(frozen=True)
class Shard:
    """Part `index` of `count`; `local_rank` / `local_count` place it among the processes of its machine."""

    index: int = 0
    count: int = 1
    local_rank: int = 0
    local_count: int = 1
    torchrun: bool = False  # started by torchrun: its ranks meet at the end

    @property
    def whole(self) -> bool:
        return self.count == 1

    @property
    def label(self) -> str:
        return "" if self.whole else f"rank {self.index}/{self.count}"

    def select(self, paths: Sequence[Path]) -> list[int]:
        """Indices (in order) of the `paths` that are this part's, balanced by pixels."""
        if self.whole:
            return list(range(len(paths)))
        return list(split_by_weight(image_pixels(paths), self.count)[self.index])

    def device(self, device: str) -> str:
        """`auto` / `cuda` become this process's GPU (`cuda:LOCAL_RANK`) when CUDA is present."""
        import torch

        if device in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return device

    def meet_at_the_end(self, counts: Sequence[float]) -> list[float]:
        """Wait for every torchrun rank to finish, and return `counts` summed over the ranks."""
        import torch
        import torch.distributed as dist

        if not self.torchrun:
            return list(counts)
        dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))  # the slowest rank may be far behind
        try:
            total = torch.tensor(counts, dtype=torch.float64)
            dist.all_reduce(total)
            return total.tolist()
        finally:
            dist.destroy_process_group()

    def cpu_threads(self) -> int:
        """The cores this process may use, shared evenly with the other processes on its machine."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cores // self.local_count)


def parse_shard(text: str) -> Shard:
    """`I/N` with 0 <= I < N (I counts from 0, like `SLURM_ARRAY_TASK_ID` with `--array=0-(N-1)`)."""
    match = re.fullmatch(r"\s*(\d{1,12})\s*/\s*(\d{1,12})\s*", str(text)[:100])
    if not match:
        raise SrganError(f"shard must be I/N (this process's part I of N parts, I from 0), got {str(text)[:40]!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1 or index >= count or count > MAX_PARTS:
        raise SrganError(f"shard {text}: need 1 <= N <= {MAX_PARTS:,} and 0 <= I < N")
    return Shard(index, count)


def torchrun_shard() -> Shard:
    """This process's part from torchrun's variables (the whole job when they are absent)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    except ValueError as exc:
        raise SrganError("RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE must be whole numbers") from exc
    if world <= 1:
        return Shard()
    if not 0 <= rank < world:
        raise SrganError(f"RANK={rank} is not between 0 and WORLD_SIZE-1={world - 1}")
    return Shard(rank, world, local, max(1, local_world), torchrun=True)


def resolve_shard(spec: Shard | str | None) -> Shard:
    """None: the whole job. "auto": torchrun's part, if any. "I/N": part I of N, split again among
    torchrun's ranks when run under torchrun."""
    if isinstance(spec, Shard):
        return spec
    if spec is None:
        return Shard()
    ranks = torchrun_shard()
    if spec == "auto":
        return ranks
    part = parse_shard(spec)
    if part.count * ranks.count > MAX_PARTS:
        raise SrganError(f"shard {spec} split again among {ranks.count} torchrun ranks makes more than {MAX_PARTS:,} parts")
    return Shard(part.index * ranks.count + ranks.index, part.count * ranks.count, ranks.local_rank,
                 ranks.local_count, ranks.torchrun)


def image_pixels(paths: Sequence[Path]) -> list[int]:
    """Width x height of each image from its header; 1 for a file that cannot be opened (it fails
    later, with a message, in whichever part holds it)."""
    def pixels(path: Path) -> int:
        try:
            with Image.open(path) as im:
                return max(1, im.width * im.height)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):  # same weight on every rank
            return 1

    with ThreadPoolExecutor(_HEADER_THREADS) as pool:
        return list(pool.map(pixels, paths))


def split_by_weight(weights: Sequence[int], parts: int) -> list[range]:
    """`parts` contiguous ranges covering `weights`, each cut where the running total is nearest to
    k / parts of the total, so that each part's sum is within one weight of the ideal."""
    cumulative = [0, *itertools.accumulate(weights)]
    total = cumulative[-1]
    cuts = [0]
    for k in range(1, parts):
        target = total * k / parts
        i = bisect.bisect_left(cumulative, target)
        if i > 0 and (i == len(cumulative) or target - cumulative[i - 1] <= cumulative[i] - target):
            i -= 1
        cuts.append(max(cuts[-1], min(i, len(weights))))
    cuts.append(len(weights))
    return [range(a, b) for a, b in itertools.pairwise(cuts)]
