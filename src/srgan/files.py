"""Files in and out without losing data: outputs appear whole or not at all, never replace a file
that is there unless asked to, and every file-system failure is one line naming the file.

- `atomic_write` writes to a hidden temporary name beside the target (`.NAME.RANDOM.tmp`) and puts
  the finished file in place. Without `overwrite` it is hard-linked to the target name, which fails
  if a file is there, so a file that another program made after srgan checked is kept; where the
  file system has no hard links (FAT, exFAT, some network and FUSE file systems) the target name is
  first claimed by creating it exclusively, and the finished file renamed over that empty
  placeholder (for that instant a reader sees an empty file). With `overwrite` it is renamed over
  the target (`os.replace`), atomically.
- A run killed without warning (SIGKILL, power loss) leaves its temporary file behind;
  `remove_stale_temps` deletes those of our own naming in the folders a run writes, when the run
  starts, but only when their writer is provably gone: the name carries the writer's host, PID and
  process start time (`.NAME.HOST@PID-START.RANDOM.tmp`), and a file is removed only if it was
  written on this host and no process with that PID and start time is alive. A live run writing to
  the same folder (the same job started twice) keeps its file; age alone never counts.
- `existing_file` refuses folders, FIFOs and devices by name before anything opens them (opening a
  FIFO blocks forever); `writable_folder` refuses an output folder that is a file, or sits under
  one, or cannot be written, before any work is done.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import socket
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from srgan.errors import SrganError, one_line

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
_RANDOM = re.compile(r"[a-z0-9_]{8}")  # what tempfile.mkstemp puts between prefix and suffix
_WRITER = re.compile(r"(?P<host>[A-Za-z0-9-]{1,24})@(?P<pid>\d{1,10})-(?P<start>\d{1,20})")
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:24] or "host"
_NO_HARD_LINKS = {errno.EPERM, errno.EACCES, errno.EXDEV, errno.EMLINK, errno.ENOSYS, errno.ENOTSUP,
                  errno.EOPNOTSUPP}


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask can only be read by setting it, which races between threads


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any], *, overwrite: bool = False) -> Path:
    """Call `write(tmp_path)` and put the finished file at `path` (see the module docstring): a crash
    never leaves half a file under the real name, and an existing `path` is replaced only with
    `overwrite`. Any file-system failure is an `SrganError` naming `path`."""
    path = Path(path)
    tmp = None
    try:
        make_folder(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{writer_id()}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_into_place(tmp, path)
    except FileExistsError as exc:
        raise SrganError(f"{path} was created by something else while srgan wrote it: kept it (pass --overwrite "
                         "to replace it)") from exc
    except OSError as exc:
        raise SrganError(f"{path}: cannot write ({os_reason(exc)})") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


def _link_into_place(tmp: str, path: Path) -> None:
    """`tmp` under the name `path`, which must not exist (FileExistsError if it does)."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # no hard links here: claim the name
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)  # our own empty placeholder
        raise


def make_folder(path: str | os.PathLike) -> Path:
    """`path` as a folder, made with its parents if needed; an `SrganError` naming it if it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise SrganError(f"{path}: is a file, not a folder") from exc
    except OSError as exc:
        raise SrganError(f"{path}: cannot make this folder ({os_reason(exc)})") from exc
    return path


def writable_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """`path` if it is, or could be made as, a folder this process can write in: checked before any
    work starts, so a run does not end in errors after hours of work. Nothing is created."""
    path = Path(path)
    existing = path
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise SrganError(f"{what} {path}: {'it' if existing == path else existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SrganError(f"{what} {path}: cannot write in {existing} (permission denied)")
    return path


def existing_file(path: str | os.PathLike, what: str = "file") -> Path:
    """`path` if it is a regular file (or a link to one), else an `SrganError` saying what is there:
    nothing, a folder, a FIFO, a device. Checked before opening, since opening a FIFO blocks."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise SrganError(f"{path}: no such file") from exc
    except OSError as exc:
        raise SrganError(f"{path}: cannot read this {what} ({os_reason(exc)})") from exc
    if stat.S_ISREG(mode):
        return path
    raise SrganError(f"{path}: is {kind_of(mode)}, not a {what}")


def kind_of(mode: int) -> str:
    """What a file's `st_mode` says it is, as words ("a FIFO (named pipe)")."""
    return ("a file" if stat.S_ISREG(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")


def os_reason(exc: OSError) -> str:
    """Why a file-system call failed, in the system's words ("No space left on device")."""
    return exc.strerror or one_line(exc)


def writer_id(pid: int | None = None) -> str:
    """`HOST@PID-START` of a process (this one by default): its start time in clock ticks since boot
    (Linux `/proc/PID/stat`), 0 where it cannot be read. A PID alone could be reused."""
    pid = os.getpid() if pid is None else pid
    return f"{_HOST}@{pid}-{_start_ticks(pid) or 0}"


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (after the command name, which may hold spaces and parentheses)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text[text.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def writer_gone(writer: str) -> bool:
    """Whether the process a temporary file's `writer_id` names has provably ended: written on this
    host, and no process with that PID is alive, or the one alive started at another time (its PID
    was reused). Unknown (another host, no start time on record) counts as alive."""
    match = _WRITER.fullmatch(writer)
    if match is None or match["host"] != _HOST:
        return False
    pid, start = int(match["pid"]), int(match["start"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by another user
        pass
    return start != 0 and _start_ticks(pid) not in (None, start)


def temp_target(name: str) -> tuple[str, str] | None:
    """(the file name, the writer) an `atomic_write` temporary file called `name` was for; None if
    `name` is not one. The writer is "" for files named before writers were recorded."""
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return None
    rest, dot, random = name[1:-len(TEMP_SUFFIX)].rpartition(".")
    if not (dot and rest and _RANDOM.fullmatch(random)):
        return None
    target, dot, writer = rest.rpartition(".")
    if dot and target and _WRITER.fullmatch(writer):
        return target, writer
    return rest, ""


def remove_stale_temps(folder: str | os.PathLike, wanted: Callable[[str], bool]) -> int:
    """Delete the `atomic_write` temporary files in `folder` that are for a name `wanted(name)` and
    whose writer is provably gone (`writer_gone`): left by a run killed without warning. Files of a
    live writer, of another host or without a recorded writer are kept. Returns how many were
    deleted; a file that cannot be deleted is only logged."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        found = temp_target(entry.name)
        if found is None or not wanted(found[0]) or not writer_gone(found[1]):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed += 1
                log.info("removed %s, left by an interrupted run", entry.path)
        except OSError as exc:
            log.debug("could not remove %s: %s", entry.path, os_reason(exc))
    return removed
