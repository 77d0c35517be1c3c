"""srgan: single-image super-resolution with the SRGAN family of networks.

The public API is imported lazily so that `import srgan` stays cheap and optional parts
(ONNX Runtime, TensorBoard) are only loaded when used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "upscale": "srgan.inference.upscale",
    "load_model": "srgan.models.weights",
    "save_model": "srgan.models.weights",
    "create_model": "srgan.models.registry",
    "SrganError": "srgan.errors",
}

__all__ = ["SrganError", "create_model", "load_model", "save_model", "upscale"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(_EXPORTS[name])
        return getattr(module, "create" if name == "create_model" else name)
    raise AttributeError(f"module 'srgan' has no attribute {name!r}")
