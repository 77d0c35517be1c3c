"""Upscale on a Ray cluster with Ray Data: one model per actor, files read and written in place.

    import ray
    from srgan.integrations.ray import Upscaler, plan_dataset, write_manifest

    todo = plan_dataset(["/data/in"], "/data/out", options={"model": "srresnet_x4"})
    done = todo.map_batches(Upscaler, fn_constructor_kwargs={"options": {"model": "srresnet_x4"}},
                            compute=ray.data.ActorPoolStrategy(size=8), num_gpus=1, batch_size=16)
    print("\\n".join(write_manifest(done, "run.jsonl").lines()))

The driver plans the job as `srgan upscale` does (names, collisions, existing outputs kept, so a
rerun resumes) and makes a dataset of (input, output) rows; each `Upscaler` actor loads the model
once and reads, upscales and writes the files of its batches with srgan's own reader and writer
(alpha, 16 bits, ICC and EXIF kept, atomic writes), returning one result row per file. Inputs and
outputs are paths that every node sees (a shared file system). `upscale_with_ray` does all three
steps. See docs/ray.md.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from srgan.errors import SrganError

try:
    import ray
    import ray.data
except ImportError as exc:  # the module is only imported by those who use it
    raise SrganError('srgan.integrations.ray needs Ray Data: pip install "srgan[ray]"') from exc

from srgan import api
from srgan.inference import batch
from srgan.inference.manifest import FileRecord, Manifest, ManifestTotals, summarize

_INTS = ("in_width", "in_height", "out_width", "out_height", "in_bytes", "out_bytes")
_FLOATS = ("seconds", "start", "end")
_TEXTS = ("input", "output", "status", "error", "host", "run")


def _options(options: api.UpscaleOptions | dict | None) -> api.UpscaleOptions:
    return options if isinstance(options, api.UpscaleOptions) else api.UpscaleOptions(**(options or {}))


def plan_dataset(inputs: Sequence[str | Path], output: str | Path, *, options: api.UpscaleOptions | dict | None = None,
                 suffix: str | None = None, overwrite: bool = False, skip_existing: bool | None = None,
                 recursive: bool = False) -> ray.data.Dataset:
    """Rows {"input", "output"} of the files still to do, planned as `srgan.upscale_files` plans them
    (the model is loaded on the driver's CPU to learn its scale, for the default suffix)."""
    opts = _options(options)
    scale = api.get_runner(opts.replace(device="cpu")).scale
    work = batch.plan([str(i) for i in inputs], output=str(output), suffix=batch.output_suffix(suffix, opts, scale),
                      fmt=opts.format, recursive=recursive, overwrite=overwrite, skip_existing=skip_existing)
    return ray.data.from_items([{"input": str(job.source), "output": str(job.target)} for job in work.jobs])


class Upscaler:
    """For `Dataset.map_batches`: holds one loaded model per actor. Each batch (columns input and
    output) is read, upscaled and written with `io_threads` reading and writing while the model runs;
    the result has one row per file (the manifest's fields, sizes as in_width ... out_height)."""

    def __init__(self, options: api.UpscaleOptions | dict | None = None, io_threads: int = 2) -> None:
        self.options = _options(options)
        self.runner = api.get_runner(self.options, api.ModelCache(size=1))
        self.io_threads = io_threads
        self.host, self.run = socket.gethostname(), f"ray-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        jobs = [batch.Job(name=str(src), target=Path(str(dst)), source=Path(str(src)))
                for src, dst in zip(rows["input"], rows["output"])]
        records: list[FileRecord] = []
        batch.run_jobs(jobs, self.runner, self.options, io_threads=self.io_threads, record=records.append)
        for record in records:
            record.host, record.run = self.host, self.run
        return _columns(records)


def _columns(records: list[FileRecord]) -> dict[str, np.ndarray]:
    """Flat columns Arrow can hold: sizes as four integers (0 where unknown), no error as ""."""
    flat = [{"in_width": (r.in_size or (0, 0))[0], "in_height": (r.in_size or (0, 0))[1],
             "out_width": (r.out_size or (0, 0))[0], "out_height": (r.out_size or (0, 0))[1],
             "in_bytes": r.in_bytes or 0, "out_bytes": r.out_bytes or 0, "error": r.error or "",
             **{name: getattr(r, name) for name in (*_FLOATS, "input", "output", "status", "host", "run")}}
            for r in records]
    columns = {name: np.array([row[name] for row in flat], np.int64) for name in _INTS}
    columns.update({name: np.array([row[name] for row in flat], np.float64) for name in _FLOATS})
    columns.update({name: np.array([row[name] for row in flat], dtype=object) for name in _TEXTS})
    return columns


def to_record(row: dict[str, Any]) -> FileRecord:
    """A result row of `Upscaler` as the manifest's `FileRecord`."""
    size = lambda w, h: [int(row[w]), int(row[h])] if row[w] else None
    return FileRecord(input=str(row["input"]), output=str(row["output"]), status=str(row["status"]),
                      error=str(row["error"]) or None, in_size=size("in_width", "in_height"),
                      out_size=size("out_width", "out_height"), in_bytes=int(row["in_bytes"]) or None,
                      out_bytes=int(row["out_bytes"]) or None, seconds=float(row["seconds"]),
                      start=float(row["start"]), end=float(row["end"]), host=str(row["host"]), run=str(row["run"]))


def write_manifest(results: ray.data.Dataset | Iterable[dict[str, Any]], path: str | Path | None = None
                   ) -> ManifestTotals:
    """Run the dataset (streaming its rows to the driver), append each to the manifest at `path` if
    given, and return the totals."""
    rows = results.iter_rows() if isinstance(results, ray.data.Dataset) else results
    manifest = Manifest(path) if path is not None else None
    records = []
    try:
        for row in rows:
            records.append(to_record(row))
            if manifest is not None:
                manifest.write(records[-1])
    finally:
        if manifest is not None:
            manifest.close()
    return summarize([asdict(r) for r in records])


def upscale_with_ray(inputs: Sequence[str | Path], output: str | Path, *,
                     options: api.UpscaleOptions | dict | None = None, actors: int = 1, gpus_per_actor: float = 0,
                     cpus_per_actor: float = 1, batch_size: int = 8, io_threads: int = 2,
                     manifest: str | Path | None = None, **planning: Any) -> ManifestTotals:
    """Plan, upscale with `actors` actors (each holding the model, on `gpus_per_actor` GPUs and
    `cpus_per_actor` CPUs) and collect the results; `planning`: suffix, overwrite, skip_existing, recursive."""
    opts = _options(options)
    todo = plan_dataset(inputs, output, options=opts, **planning)
    if todo.count() == 0:  # all done already: no actors to start
        return ManifestTotals()
    done = todo.map_batches(Upscaler, fn_constructor_kwargs={"options": opts, "io_threads": io_threads},
                            compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=gpus_per_actor or None,
                            num_cpus=cpus_per_actor, batch_size=batch_size)
    return write_manifest(done, manifest)
