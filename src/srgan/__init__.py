"""srgan: single-image super-resolution with the SRGAN family of networks.

The public API (`srgan.api`) is imported lazily so that `import srgan` stays cheap and optional parts
(ONNX Runtime, TensorBoard) are only loaded when used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = ("DEFAULT_MODEL", "ModelCache", "SrganError", "UpscaleOptions", "create_model", "evaluate", "export_int8",
        "export_onnx", "export_weights", "inspect_weights", "list_models", "load_model", "save_model", "train",
        "upscale", "upscale_files", "upscale_video")

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("srgan.api"), name)
    raise AttributeError(f"module 'srgan' has no attribute {name!r}")
