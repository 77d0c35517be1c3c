"""Typed options: plain data (YAML, JSON, keyword arguments) checked against the annotations of a
dataclass, class or function, so a typo or a wrong type stops with one line naming the key
(`unknown config key 'train.iteratons'`, `optim.lr_g: expected float, got 'fast'`).

The training config's sections, every architecture's config and the options of every registered
loss and discriminator (`srgan.registry`) go through here: one set of rules for all of them.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

from srgan.errors import SrganError, SrganTypeError

REQUIRED = inspect.Parameter.empty


def parameters(target: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """{name: (annotated type, default or REQUIRED)} of a dataclass's fields or of the keyword
    parameters of a class's constructor or a function; unannotated parameters take `Any`."""
    if dataclasses.is_dataclass(target):
        hints = typing.get_type_hints(target)
        return {f.name: (hints[f.name], _field_default(f)) for f in dataclasses.fields(target) if f.init}
    hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name: (hints.get(name, Any), p.default) for name, p in inspect.signature(target).parameters.items()
            if p.kind in keyword}


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return REQUIRED


def check_options(target: Callable[..., Any], values: Any, *, prefix: str = "", what: str = "config key",
                  owner: str = "", partial: bool = False) -> dict[str, Any]:
    """`values` as keyword arguments for `target`, each converted to its annotated type. `prefix`
    ("losses.pixel.") leads every key in messages; an unknown key is refused as
    "unknown {what} '{prefix}{key}'{owner} (known: ...)". `partial`: overrides, none is required."""
    known = parameters(target)
    if not isinstance(values, Mapping):
        raise SrganTypeError(f"{prefix.rstrip('.') or what}: expected a mapping, got {_short(values)}")
    for key in values:
        if key not in known:
            raise SrganError(f"unknown {what} {prefix + str(key)!r}{owner} (known: {', '.join(known) or 'none'})")
    checked = {key: convert(known[key][0], value, prefix + key) for key, value in values.items()}
    missing = [key for key, (_, default) in known.items()
               if default is REQUIRED and key not in checked and not partial]
    if missing:
        raise SrganError(f"{prefix + missing[0]}: required{owner}, has no default")
    return checked


def from_dict(cls: type, values: Any, prefix: str = "", what: str = "config key") -> Any:
    """An instance of the dataclass `cls` from a mapping, nested dataclasses included."""
    if values is None:
        values = {}
    return cls(**check_options(cls, values, prefix=prefix, what=what))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def convert(tp: Any, value: Any, where: str) -> Any:
    """`value` as type `tp` (bool, int, float, str, Literal, list, dict, Optional/Union, dataclass, Any),
    or an `SrganError` naming `where`. YAML's "1e-4" (a string) is read as a float, 1e5 as an int."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where + ".")
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return convert(option, value, where)
            except SrganError as exc:
                errors.append(str(exc))
        raise SrganError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (Literal, list, dict):
        return _convert_container(origin, tp, value, where)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 1e5 in YAML
    elif tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # PyYAML reads "1e-4" (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None and math.isfinite(number):
            return number
        if number is not None:
            raise SrganError(f"{where}: expected a finite number, got {value!r}")
    elif tp is str and isinstance(value, str):
        return value
    raise SrganTypeError(f"{where}: expected {_type_name(tp)}, got {_short(value)}")


def _convert_container(origin: Any, tp: Any, value: Any, where: str) -> Any:
    """`convert` for Literal[...], list[...] and dict[str, ...]."""
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise SrganError(f"{where}: expected one of {', '.join(map(str, allowed))}, got {_short(value)}")
        return value
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single folder or milestone
        if not isinstance(value, (list, tuple)):
            raise SrganTypeError(f"{where}: expected a list, got {_short(value)}")
        return [convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    _, value_tp = typing.get_args(tp)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SrganTypeError(f"{where}: expected a mapping, got {_short(value)}")
    return {str(k): convert(value_tp, v, f"{where}.{k}") for k, v in value.items()}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:76] + " ..."
