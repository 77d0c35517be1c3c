"""Named presets: `create("srresnet_x4")`, `names()`, in the spirit of timm's `register_model`.

A preset is a function returning a `GeneratorConfig`; registering it needs no central table.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from typing import Any

from srgan.errors import SrganError
from srgan.models.generator import Generator, GeneratorConfig

_PRESETS: dict[str, Callable[[], GeneratorConfig]] = {}


def register(fn: Callable[[], GeneratorConfig]) -> Callable[[], GeneratorConfig]:
    _PRESETS[fn.__name__] = fn
    return fn


def names(pattern: str = "*") -> list[str]:
    _load_presets()
    return sorted(n for n in _PRESETS if fnmatch.fnmatch(n, pattern))


def preset_config(name: str, **overrides: Any) -> GeneratorConfig:
    _load_presets()
    if name not in _PRESETS:
        raise SrganError(f"unknown preset {name!r} (known: {', '.join(names())})")
    base = _PRESETS[name]()
    known = {f.name for f in dataclasses.fields(GeneratorConfig)}
    for key in overrides:
        if key not in known:
            raise SrganError(f"unknown generator setting {key!r} (known: {', '.join(sorted(known))})")
    return dataclasses.replace(base, **overrides)


def describe(name: str) -> str:
    _load_presets()
    return (_PRESETS[name].__doc__ or "").strip().splitlines()[0]


def create(name: str, **overrides: Any) -> Generator:
    """An untrained generator of the named preset; `load_model(name)` gives the trained one."""
    return Generator(preset_config(name, **overrides))


def _load_presets() -> None:
    import srgan.models.presets  # noqa: F401  (registers on import)
