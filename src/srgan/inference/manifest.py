"""A run's record, one JSON line per file, and the totals read back from it.

Several processes (torchrun ranks, Slurm array tasks) may append to one manifest. Each line is
written with a single `write()` on a file opened with `O_APPEND`, and kept under `PIPE_BUF` (4096
bytes; a long error message is cut): on a local file system every such write lands whole at the
end of the file, so lines never interleave. `O_APPEND` is not atomic across machines on NFS: for a
multi-node job give each process its own file with `{rank}` in the name (`run.{rank}.jsonl`) and
read them back together with a glob. A line cut short by a killed process is skipped on reading.

Fields: input, output, status (done | failed), error, in_size / out_size ([width, height]),
in_bytes / out_bytes, seconds (from the start of reading to the end of writing), start / end (Unix
time), rank, host, run (an id per process).
"""

from __future__ import annotations

import glob
import json
import os
import select
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from srgan.errors import SrganError, one_line

LINE_LIMIT = getattr(select, "PIPE_BUF", 4096)


@dataclass
class FileRecord:
    """What happened to one file."""

    input: str
    output: str
    status: str  # done | failed
    error: str | None = None
    in_size: list[int] | None = None
    out_size: list[int] | None = None
    in_bytes: int | None = None
    out_bytes: int | None = None
    seconds: float = 0.0
    start: float = 0.0
    end: float = 0.0
    rank: int = 0
    host: str = ""
    run: str = ""


class Manifest:
    """Appends `FileRecord`s to a JSON-lines file; `{rank}` in the path becomes the rank. Records
    without a host and run id (those of this process) get this process's."""

    def __init__(self, path: str | os.PathLike, *, rank: int = 0) -> None:
        self.path = Path(str(path).replace("{rank}", str(rank)))
        self.rank, self.host, self.run = rank, socket.gethostname(), uuid.uuid4().hex[:12]
        if self.path.is_dir():
            raise SrganError(f"manifest {self.path} is a folder: give a file name such as run.jsonl")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise SrganError(f"cannot open manifest {self.path}: {one_line(exc)}") from exc

    def write(self, record: FileRecord) -> None:
        record.rank, record.host, record.run = self.rank, record.host or self.host, record.run or self.run
        line = _encode(record)
        if len(line) > LINE_LIMIT and record.error:  # cut the message, not the line
            budget = LINE_LIMIT - (len(line) - _json_length(record.error)) - len("...")
            record.error = _prefix_within(record.error, budget) + "..."
            line = _encode(record)
        os.write(self._fd, line)

    def close(self) -> None:
        os.close(self._fd)


def _encode(record: FileRecord) -> bytes:
    return (json.dumps(asdict(record), separators=(",", ":")) + "\n").encode()  # ASCII: 1 byte per char


def _json_length(text: str) -> int:
    return len(json.dumps(text)) - 2


def _prefix_within(text: str, budget: int) -> str:
    """The longest prefix of `text` whose JSON form (é is 6 bytes: \\u00e9) fits in `budget` bytes."""
    used = 0
    for i, char in enumerate(text):
        used += _json_length(char)
        if used > budget:
            return text[:i]
    return text


@dataclass
class ManifestTotals:
    """Totals over manifests. Files count each input once, by its last line (a failed file that a
    resumed run did is done); pixels count every file done, over the time any process was working."""

    files: int = 0
    done: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (input, error)
    in_megapixels: float = 0.0
    out_megapixels: float = 0.0
    busy_seconds: float = 0.0  # wall-clock time in which at least one process was working
    processes: int = 0
    unreadable_lines: int = 0

    def lines(self) -> list[str]:
        rate = self.out_megapixels / self.busy_seconds if self.busy_seconds > 0 else 0.0
        head = [f"{self.files} file(s): {self.done} done, {len(self.failures)} failed",
                (f"{self.in_megapixels:.2f} MP in, {self.out_megapixels:.2f} MP out in {self.busy_seconds:.1f} s "
                 f"of wall-clock time, {self.processes} process(es): {rate:.2f} output MP/s")]
        if self.unreadable_lines:
            head.append(f"{self.unreadable_lines} unreadable line(s) skipped (cut short by a killed process)")
        return head + [f"  failed {name}: {error}" for name, error in self.failures]


def read_manifest(patterns: Sequence[str | os.PathLike]) -> tuple[list[dict], int]:
    """The records of every manifest named or matched by a glob, and the count of unreadable lines."""
    paths: list[str] = []
    for pattern in map(str, patterns):
        matches = sorted(glob.glob(pattern)) if set("*?[") & set(pattern) else [pattern]
        if not matches or not all(os.path.isfile(m) for m in matches):
            raise SrganError(f"manifest {pattern}: no such file")
        paths += matches
    records, bad = [], 0
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as file:
            for text in file:
                try:
                    record = json.loads(text)
                    if not isinstance(record, dict) or "input" not in record or "status" not in record:
                        raise ValueError
                    records.append(record)
                except ValueError:
                    bad += 1
    return records, bad


def summarize(records: Iterable[dict], unreadable: int = 0) -> ManifestTotals:
    records = list(records)
    last = {r["input"]: r for r in records}
    done = [r for r in records if r["status"] == "done"]
    spans = sorted((r.get("start", 0.0), r.get("end", 0.0)) for r in records)
    return ManifestTotals(
        files=len(last), done=sum(r["status"] == "done" for r in last.values()),
        failures=[(r["input"], r.get("error") or "") for r in last.values() if r["status"] != "done"],
        in_megapixels=sum(_pixels(r.get("in_size")) for r in done) / 1e6,
        out_megapixels=sum(_pixels(r.get("out_size")) for r in done) / 1e6,
        busy_seconds=_union_length(spans), processes=len({r.get("run") for r in records}),
        unreadable_lines=unreadable)


def _pixels(size: Sequence[int] | None) -> int:
    return size[0] * size[1] if size else 0


def _union_length(spans: list[tuple[float, float]]) -> float:
    """Length of the union of sorted intervals: concurrent processes count once, pauses not at all."""
    total, current_start, current_end = 0.0, None, None
    for start, end in spans:
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total
