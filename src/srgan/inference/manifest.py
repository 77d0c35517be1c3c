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
import math
import os
import select
import socket
import stat
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from srgan.errors import SrganError
from srgan.files import existing_file, kind_of, make_folder, os_reason, writable_folder

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


def manifest_path(path: str | os.PathLike, rank: int = 0) -> Path:
    """The manifest file a run will append to, checked before any work like an image output: a
    regular file or none yet, in a folder that is (or can be made) writable. A folder, FIFO or
    device there is refused (opening a FIFO for writing blocks until a reader comes)."""
    target = Path(str(path).replace("{rank}", str(rank)))
    if os.path.lexists(target):
        mode = target.stat().st_mode if target.exists() else 0
        if not stat.S_ISREG(mode):
            raise SrganError(f"manifest {target} is {kind_of(mode) if mode else 'a broken link'}: "
                             "give a file name such as run.jsonl")
    writable_folder(target.parent, f"manifest {target}: folder")
    return target


class Manifest:
    """Appends `FileRecord`s to a JSON-lines file; `{rank}` in the path becomes the rank. Records
    without a host and run id (those of this process) get this process's. A record that cannot be
    written (full disk, I/O error) raises a one-line `SrganError`: the caller stops the run."""

    def __init__(self, path: str | os.PathLike, *, rank: int = 0) -> None:
        self.path = manifest_path(path, rank)
        self.rank, self.host, self.run = rank, socket.gethostname(), uuid.uuid4().hex[:12]
        make_folder(self.path.parent)
        try:  # O_NONBLOCK: a FIFO put there since the check fails at once instead of blocking
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
            if not stat.S_ISREG(os.fstat(self._fd).st_mode):
                os.close(self._fd)
                raise SrganError(f"manifest {self.path} is not a regular file")
        except OSError as exc:
            raise SrganError(f"cannot open manifest {self.path}: {os_reason(exc)}") from exc

    def write(self, record: FileRecord) -> None:
        record.rank, record.host, record.run = self.rank, record.host or self.host, record.run or self.run
        line = _encode(record)
        if len(line) > LINE_LIMIT and record.error:  # cut the message, not the line
            budget = LINE_LIMIT - (len(line) - _json_length(record.error)) - len("...")
            record.error = _prefix_within(record.error, budget) + "..."
            line = _encode(record)
        try:
            written = os.write(self._fd, line)
        except OSError as exc:
            raise SrganError(f"manifest {self.path}: cannot write ({os_reason(exc)})") from exc
        if written != len(line):
            raise SrganError(f"manifest {self.path}: cannot write (only {written} of {len(line)} bytes of a line "
                             "went in: the disk is full?)")

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
    """The records of every manifest named or matched by a glob, and the count of unreadable lines
    (not JSON: cut short by a killed process). A line that is JSON but not a record
    (`check_record`) is refused in one line naming the file, the line and the field."""
    paths: list[Path] = []
    for pattern in map(str, patterns):
        matches = sorted(glob.glob(pattern)) if set("*?[") & set(pattern) else [pattern]
        if not matches:
            raise SrganError(f"manifest {pattern}: no such file")
        paths += [existing_file(match, "manifest") for match in matches]
    records, bad = [], 0
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as file:
                for number, text in enumerate(file, 1):
                    try:
                        record = json.loads(text)
                    except (ValueError, RecursionError):
                        bad += 1
                        continue
                    records.append(check_record(record, f"{path}:{number}"))
        except OSError as exc:
            raise SrganError(f"manifest {path}: cannot read ({os_reason(exc)})") from exc
    return records, bad


_SIZE = "[width, height] of whole numbers"
_FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "input": ("text", lambda v: isinstance(v, str)),
    "output": ("text", lambda v: isinstance(v, str)),
    "status": ("done or failed", lambda v: v in ("done", "failed")),
    "error": ("text or null", lambda v: v is None or isinstance(v, str)),
    "in_size": (f"{_SIZE} or null", lambda v: v is None or _is_size(v)),
    "out_size": (f"{_SIZE} or null", lambda v: v is None or _is_size(v)),
    "in_bytes": ("a whole number >= 0 or null", lambda v: v is None or _is_count(v)),
    "out_bytes": ("a whole number >= 0 or null", lambda v: v is None or _is_count(v)),
    "seconds": ("a finite number >= 0", lambda v: _is_time(v)),
    "start": ("a finite number >= 0 (Unix time)", lambda v: _is_time(v)),
    "end": ("a finite number >= 0 (Unix time)", lambda v: _is_time(v)),
    "rank": ("a whole number >= 0", lambda v: _is_count(v)),
    "host": ("text", lambda v: isinstance(v, str)),
    "run": ("text", lambda v: isinstance(v, str)),
}
"""The manifest's schema: each field's type and range, as `FileRecord` writes it."""
_REQUIRED = ("input", "status")


def check_record(record: Any, where: str) -> dict:
    """`record` if it is a manifest record (`_FIELDS`; input and status required, unknown fields
    kept), else an `SrganError` naming `where` (file:line) and the field."""
    if not isinstance(record, dict):
        raise SrganError(f"manifest {where}: a line is a JSON object (a record), got {type(record).__name__}")
    for name in _REQUIRED:
        if name not in record:
            raise SrganError(f"manifest {where}: field {name} is missing")
    for name, (wanted, valid) in _FIELDS.items():
        if name in record and not valid(record[name]):
            raise SrganError(f"manifest {where}: field {name} must be {wanted}, got {json.dumps(record[name])[:60]}")
    return record


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _is_size(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_is_count(v) and v < 1 << 31 for v in value)


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
