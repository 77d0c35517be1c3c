"""Generator architectures and their named presets, in the spirit of timm's `register_model`:
`create("srresnet_x4")`, `names("srresnet*")`, `describe(name)`, and weight files that name the
architecture they hold.

An architecture is a `Generator` subclass registered with its config class
(`@register_architecture("srresnet", SRResNetConfig)`); a preset is a function returning such a
config (`@register`), tied to its architecture by the config's class. Both live in the
architecture's own file in srgan/models/, imported on the first lookup (`srgan.registry`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from srgan.errors import SrganError
from srgan.models.generator import Generator, GeneratorConfig
from srgan.registry import Registry

ARCHITECTURES: Registry[type[Generator]] = Registry("architecture", "srgan.models")
PRESETS: Registry[Callable[[], GeneratorConfig]] = Registry("preset", "srgan.models")
REQUIRED_FIELDS = ("scale", "in_channels", "out_channels")

G = TypeVar("G", bound=type[Generator])


def register_architecture(name: str, config: type[GeneratorConfig]) -> Callable[[G], G]:
    """Class decorator: the `Generator` subclass is architecture `name`, built from a `config`."""

    def add(cls: G) -> G:
        if not (isinstance(cls, type) and issubclass(cls, Generator)):
            raise SrganError(f"architecture {name!r}: {cls!r} does not derive from srgan.models.generator.Generator")
        if cls.context is Generator.context:
            raise SrganError(f"architecture {name!r}: {cls.__name__} must define context() (its receptive field)")
        if not (isinstance(config, type) and issubclass(config, GeneratorConfig) and dataclasses.is_dataclass(config)
                and config.__dataclass_params__.frozen):
            raise SrganError(f"architecture {name!r}: its config must be a frozen dataclass deriving from GeneratorConfig")
        missing = [f for f in REQUIRED_FIELDS if f not in {field.name for field in dataclasses.fields(config)}]
        if missing:
            raise SrganError(f"architecture {name!r}: {config.__name__} lacks the field {missing[0]!r}")
        cls.architecture, cls.config_class = name, config
        return ARCHITECTURES.register(name)(cls)

    return add


def register(fn: Callable[[], GeneratorConfig]) -> Callable[[], GeneratorConfig]:
    """Function decorator: a preset named after the function, returning its architecture's config."""
    return PRESETS.register(fn.__name__)(fn)


def names(pattern: str = "*") -> list[str]:
    """Preset names matching a glob pattern."""
    return PRESETS.names(pattern)


def architectures() -> list[str]:
    return ARCHITECTURES.names()


def describe(name: str) -> str:
    return (PRESETS.get(name).__doc__ or "").strip().splitlines()[0]


def preset_config(name: str, **overrides: Any) -> GeneratorConfig:
    return PRESETS.get(name)().replace(**overrides)


def create(name: str, **overrides: Any) -> Generator:
    """An untrained generator of the named preset; `load_model(name)` gives the trained one."""
    return build(preset_config(name, **overrides))


def build(config: GeneratorConfig) -> Generator:
    """An untrained generator of the architecture that `config` belongs to."""
    for name in ARCHITECTURES.names():
        cls = ARCHITECTURES.get(name)
        if cls.config_class is type(config):
            return cls(config)
    raise SrganError(f"no registered architecture is configured by {type(config).__name__}")


def config_from_dict(architecture: str, config: dict[str, Any]) -> GeneratorConfig:
    """An architecture's config from its name and the config as `to_dict()` wrote it (checked)."""
    return ARCHITECTURES.get(architecture).config_class.from_dict(config)
