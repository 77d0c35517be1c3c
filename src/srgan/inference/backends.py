"""Inference backends by name: each registers how it turns a model into a `Runner`
(`@register_backend("name")`), and `UpscaleOptions`, the CLI's `--backend`, `build_runner` and the
server all take the names from here, so a new backend is one file that registers itself.

The built-in ones (torch in `cache.py`, ONNX Runtime in `onnx_backend.py`, OpenVINO in
`openvino_backend.py`) are imported the first time a backend is looked up; optional runtimes are only
imported when a model is built on them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from srgan.errors import SrganError

BUILTIN = ("srgan.inference.cache", "srgan.inference.onnx_backend", "srgan.inference.openvino_backend")


@dataclass(frozen=True)
class Backend:
    """build(model, device=, precision=) -> Runner. takes_onnx: runs `.onnx` files and exported models
    (else only generators, weights files and shipped names). auto: rank among the backends `auto`
    picks for an `.onnx` file, lowest first, if `available()` (None: never picked by `auto`)."""

    name: str
    build: Callable[..., Any]
    takes_onnx: bool = False
    auto: int | None = None
    available: Callable[[], bool] = lambda: True


_BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, *, takes_onnx: bool = False, auto: int | None = None,
                     available: Callable[[], bool] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def add(build: Callable[..., Any]) -> Callable[..., Any]:
        if name in _BACKENDS or name == "auto":
            raise SrganError(f"backend {name!r} is registered twice")
        _BACKENDS[name] = Backend(name, build, takes_onnx, auto, available or (lambda: True))
        return build

    return add


def backends() -> dict[str, Backend]:
    for module in BUILTIN:
        importlib.import_module(module)  # each registers itself on import
    return _BACKENDS


def backend_names() -> tuple[str, ...]:
    """What `backend` may be: auto and every registered backend."""
    return ("auto", *backends())


def is_exported(model: Any) -> bool:
    """Whether `model` is an exported (ONNX) model: an `.onnx` path or a runner over one."""
    if isinstance(model, (str, os.PathLike)):
        return str(model).lower().endswith(".onnx")
    return getattr(model, "exported", False) is True


def resolve_backend(backend: str, model: Any) -> str:
    """`auto` made concrete for `model` (torch for a generator; for an `.onnx` file the best ranked
    backend that is installed, else the last ranked); a backend that cannot run `model` is refused."""
    table = backends()
    exported = is_exported(model)
    if backend == "auto":
        if not exported:
            return "torch"
        ranked = sorted((b for b in table.values() if b.auto is not None), key=lambda b: b.auto)
        return next((b.name for b in ranked if b.available()), ranked[-1].name)
    if backend not in table:
        raise SrganError(f"backend must be one of {', '.join(backend_names())}, got {backend!r}")
    if exported and not table[backend].takes_onnx:
        onnx = " or ".join(b.name for b in table.values() if b.takes_onnx)
        raise SrganError(f"{model}: an ONNX model runs on the {onnx} backend, not {backend}")
    return backend


def build_on(backend: str, model: Any, *, device: Any, precision: str) -> Any:
    """The `Runner` of `model` on the (resolved) `backend`."""
    return backends()[backend].build(model, device=device, precision=precision)
