"""`ServeSettings`: how one `srgan serve` process runs, validated once when made (like
`UpscaleOptions`), so a mistake on the command line is one `SrganError` before anything loads."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any

from srgan.errors import SrganError
from srgan.inference.backends import backend_names
from srgan.inference.options import number, whole


@dataclass(frozen=True)
class ServeSettings:
    """host / port: where to listen (port 0: any free port). Only loopback unless told otherwise.
    model: shipped weights name or weights file offered as the default (None: the default model);
        the shipped weights are offered too.
    device / precision / backend: where and how the model runs (as in `UpscaleOptions`).
    max_pixels: the most pixels an input image may have (its header is checked before decoding);
        an output may have at most max_pixels x scale^2.
    max_upload_mb: the most bytes a request body may have, in MiB.
    queue: requests that may wait for a worker; more are answered 429 with Retry-After.
    workers: inference threads (one is fastest on a CPU: PyTorch already uses every core).
    timeout: seconds a request may wait and run before it is answered 504.
    header_timeout: seconds a connection may take to send a request's headers (slowloris).
    upload_timeout: seconds an upload's body may take in all (408 past it).
    min_upload_kbps: after `UPLOAD_GRACE` seconds, the slowest average upload rate accepted, in KiB/s
        (408 below it): a client trickling bytes holds memory, not a queue slot, and not for long.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    model: str | None = None
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    max_pixels: int = 4_000_000
    max_upload_mb: float = 20.0
    queue: int = 8
    workers: int = 1
    timeout: float = 300.0
    header_timeout: float = 10.0
    upload_timeout: float = 60.0
    min_upload_kbps: float = 16.0

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)
        if not isinstance(self.host, str) or not self.host.strip():
            raise SrganError(f"host must be a host name or address, got {self.host!r}")
        set_("port", whole("port", self.port, minimum=0))
        if self.port > 65535:
            raise SrganError(f"port must be between 0 and 65535, got {self.port}")
        set_("max_pixels", whole("max_pixels", self.max_pixels, minimum=1))
        set_("queue", whole("queue", self.queue, minimum=0))
        set_("workers", whole("workers", self.workers, minimum=1))
        set_("max_upload_mb", _positive("max_upload_mb", self.max_upload_mb))
        set_("timeout", _positive("timeout", self.timeout))
        for name in ("header_timeout", "upload_timeout", "min_upload_kbps"):
            set_(name, _positive(name, getattr(self, name)))
        if self.backend not in backend_names():
            raise SrganError(f"backend must be one of {', '.join(backend_names())}, got {self.backend!r}")
        if self.model is not None:
            set_("model", str(self.model))

    def replace(self, **changes: Any) -> ServeSettings:
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise SrganError(f"unknown serve setting {unknown[0]!r}")
        return dataclasses.replace(self, **changes)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def loopback(self) -> bool:
        """Whether only this machine can connect."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False


def _positive(name: str, value: Any) -> float:
    found = number(name, value)
    if found <= 0:
        raise SrganError(f"{name} must be a positive number, got {value!r}")
    return found
