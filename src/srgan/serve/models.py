"""The models one server offers: the shipped weights, and the one given with `--model` (the default).

A client chooses among them by name, so it can never make the server open a path it sends. The
default model is loaded into the server's one `ModelCache` at start-up: a bad `--model` fails
before the server listens, and the first request is not slowed by loading.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from srgan import api
from srgan.api import ModelCache, SrganError, UpscaleOptions
from srgan.serve.errors import ServeError


@dataclass(frozen=True)
class OfferedModel:
    name: str
    scale: int
    parameters: int
    description: str
    shipped: bool
    spec: str  # what `UpscaleOptions.model` gets: a shipped name or the weights file's absolute path


class ModelCatalog:
    def __init__(self, given: str | None, base: UpscaleOptions, cache: ModelCache) -> None:
        shipped = {i.name: OfferedModel(i.name, i.scale, i.parameters, i.description, True, i.name)
                   for i in api.list_models() if i.shipped}
        given = given or api.DEFAULT_MODEL
        if given in shipped:
            self.models, self.default = shipped, given
        else:
            path = Path(given)
            if not path.is_file():
                raise SrganError(f"--model {given}: neither shipped weights ({', '.join(shipped) or 'none'}) "
                                 "nor a weights file")
            generator = api.load_model(path)
            parameters = sum(p.numel() for p in generator.parameters())
            offered = OfferedModel(path.name, generator.config.scale, parameters, f"weights file {path.name}",
                                   False, str(path.resolve()))
            self.models, self.default = {offered.name: offered, **shipped}, offered.name
        api.get_runner(base.replace(model=self.models[self.default].spec), cache)

    def spec(self, name: str | None) -> str:
        """The model to load for the name a client sent (None: the default); 422 for any other name."""
        if name is None:
            return self.models[self.default].spec
        if name not in self.models:
            raise ServeError(422, f"model must be one of {', '.join(self.models)}, got {name!r}",
                             reason="bad_option")
        return self.models[name].spec

    def describe(self) -> dict[str, Any]:
        from srgan.models.interpolation import strength_partner

        models = []
        for model in self.models.values():
            info = asdict(model)
            info.pop("spec")  # a server path is no business of the client's
            try:  # whether the model takes a strength (it has a shipped PSNR partner)
                strength = bool(model.shipped and strength_partner(model.name))
            except SrganError:
                strength = False
            models.append({**info, "default": model.name == self.default, "strength": strength})
        return {"default": self.default, "models": models}
