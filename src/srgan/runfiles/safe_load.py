"""`torch.load` that never runs code: the one way srgan opens a pickled PyTorch file (a weights file,
a training checkpoint)."""

from __future__ import annotations

import os
import pickle
import re
from typing import Any

import torch

from srgan.errors import SrganError, one_line


def safe_torch_load(path: str | os.PathLike, what: str = "PyTorch weights file") -> Any:
    """`torch.load` with `weights_only=True`: a pickle that names any other Python object (the way a
    malicious file runs code when unpickled) is refused before anything is built from it. Every
    failure is one line naming the file (never torch's advice to load it unsafely)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        culprit = re.search(r"GLOBAL ([\w.]+)", str(exc), re.IGNORECASE)
        if culprit is None:  # not a pickle at all (an image, an ONNX file): torch names the first bad byte
            raise SrganError(f"{path}: not a {what} (neither a PyTorch zip file nor a pickle of tensors)") from exc
        raise SrganError(f"{path}: refused: it holds Python objects other than tensors ({culprit.group(1)}), which "
                         "could run code when loaded; srgan reads only tensors (torch.load weights_only=True)") from exc
    except Exception as exc:  # a truncated or foreign file: say which one
        raise SrganError(f"{path}: not a readable {what} ({type(exc).__name__}: {one_line(exc)[:200]})") from exc
