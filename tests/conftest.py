"""Shared test fixtures. `../shared` (beside the checkout) holds the datasets, reference values and
VGG19/NIQE files; CI always has it, so there a missing folder fails instead of skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRGAN_SHARED", ROOT.parent / "shared"))

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED} is missing: CI must have ../shared beside the checkout")
        pytest.skip(f"{SHARED} not found (set SRGAN_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def vgg_weights(shared: Path) -> Path:
    return shared / "weights" / "vgg19_features_conv1_1-conv3_4_imagenet.safetensors"


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> str:
    """A random-weights srresnet_x4 with 1 block of width 8 (10,375 parameters), saved once: a real model
    file that loads and runs in milliseconds, for tests of the API and the server."""
    import srgan

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny_x4.safetensors"
    srgan.save_model(srgan.create_model("srresnet_x4", blocks=1, width=8), path)
    return str(path)


@pytest.fixture
def one_thread():
    """Per-image metric work is small; two threads on a busy 2-core runner only add synchronisation cost."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
