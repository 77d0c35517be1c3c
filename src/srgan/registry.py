"""Named components registered where they are defined: `@LOSSES.register("l1")` next to the loss,
`type: l1` in a YAML config, and no central table to edit.

In the spirit of timm's `register_model` and BasicSR's `type:` keys, without BasicSR's import-time
scan: a registry imports the modules of its package (srgan.losses, srgan.models) on its first
lookup, not when srgan is imported, and one module failing to import costs only its own entries
(a renamed torchvision module broke every BasicSR user, BasicSR #649, #663): the failure is logged
and named when one of its entries is asked for. So a new built-in loss or architecture is one file
in its package. Code outside srgan (a plug-in, a test) registers by being imported.

An entry is a factory, a class or a function; its keyword parameters and their annotations are the
options a config may give it, checked by `srgan.options` (typed, unknown keys refused).
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from srgan.errors import SrganError, one_line
from srgan.options import check_options

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Callable[..., Any])


class Registry(Generic[T]):
    """`kind` names the entries in messages ("loss", "discriminator", ...); the modules of `package`
    hold the built-in entries and are imported on the first lookup."""

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self._package = package
        self._entries: dict[str, T] = {}
        self._failed: dict[str, str] = {}  # module -> why it could not be imported
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `name` -> the decorated factory. Registering another object under a taken
        name is an error (re-importing the same module is not)."""

        def add(entry: T) -> T:
            old = self._entries.get(name)
            if old is not None and _qualified(old) != _qualified(entry):
                raise SrganError(f"{self.kind} {name!r} is already registered by {_qualified(old)}")
            self._entries[name] = entry
            return entry

        return add

    def names(self, pattern: str = "*") -> list[str]:
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def get(self, name: str, where: str = "") -> T:
        """The factory registered as `name`; `where` (a config key) leads the error message."""
        self._load()
        if name not in self._entries:
            lead = f"{where}: " if where else ""
            failed = "".join(f"; {module} failed to import: {why}" for module, why in self._failed.items())
            raise SrganError(f"{lead}unknown {self.kind} {name!r} (known: {', '.join(self.names()) or 'none'}){failed}")
        return self._entries[name]

    def options(self, name: str, values: Mapping[str, Any] | None = None, prefix: str = "") -> dict[str, Any]:
        """`values` checked and converted against the parameters of `name`'s factory."""
        return check_options(self.get(name, prefix + "type" if prefix else ""), values or {}, prefix=prefix,
                             what="option", owner=f" for {self.kind} {name!r}")

    def build(self, name: str, values: Mapping[str, Any] | None = None, prefix: str = "") -> Any:
        """The component `name` made with the options `values` (checked first)."""
        return self.get(name)(**self.options(name, values, prefix))

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before importing: the modules call register(), never _load()
        package = importlib.import_module(self._package)
        for module in pkgutil.iter_modules(package.__path__, f"{self._package}."):
            try:
                importlib.import_module(module.name)
            except Exception as exc:  # noqa: BLE001 - any import failure costs only that module's entries
                self._failed[module.name] = one_line(exc)
                log.warning("%s is not available: %s", module.name, one_line(exc))


def _qualified(entry: Any) -> str:
    return f"{getattr(entry, '__module__', '?')}.{getattr(entry, '__qualname__', repr(entry))}"
