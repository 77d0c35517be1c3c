"""`srgan serve`: a local web page and HTTP API for upscaling, a thin layer over `srgan.api`.

One `ModelCache` holds the loaded models for every request, a fixed pool of inference threads
behind a bounded queue keeps the event loop free (so `/healthz` answers while a big image is
upscaled), and every upload is checked against size and pixel limits before its pixels are
decoded. FastAPI and uvicorn come with the optional `serve` extra; the modules that need them are
imported only by `run` and `create_app`.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from srgan.errors import SrganError
from srgan.serve.settings import ServeSettings

# import name -> distribution, for the message when the extra is missing
REQUIREMENTS = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart",
                "prometheus_client": "prometheus-client", "swagger_ui_bundle": "swagger-ui-bundle-v2"}

__all__ = ["ServeSettings", "check_installed", "create_app", "run"]


def check_installed() -> None:
    """Refuse with one line naming the extra when a package of `srgan[serve]` is missing."""
    missing = [dist for module, dist in REQUIREMENTS.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise SrganError(f"srgan serve needs the 'serve' extra ({', '.join(missing)} missing): "
                         "pip install -e \".[serve]\"")


def create_app(settings: ServeSettings | None = None, **kwargs: Any) -> Any:
    check_installed()
    from srgan.serve.app import create_app as create

    return create(settings, **kwargs)


def run(settings: ServeSettings | None = None, **fields: Any) -> None:
    """Serve until interrupted (see `srgan.serve.server.run`)."""
    settings = settings or ServeSettings()
    if fields:
        settings = settings.replace(**fields)
    check_installed()
    from srgan.serve.server import run as serve

    serve(settings)
