"""A new inference backend is one file that registers itself (`register_backend`): here `eager`, the
generator run by plain PyTorch without srgan's load-time rewrites (batch norm folding). With it,
`srgan upscale --backend eager` and a server started with `backend="eager"` run it, and nothing else
was edited."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from srgan.cli import main
from srgan.inference.backends import register_backend
from srgan.inference.cache import Runner
from srgan.models.weights import load_model

CALLS: list[str] = []


@register_backend("eager")
def eager_runner(model, *, device, precision) -> Runner:
    if precision not in ("auto", "fp32"):
        raise ValueError("eager runs fp32")
    CALLS.append(str(model))
    generator = (load_model(model) if not isinstance(model, torch.nn.Module) else model).eval()
    return Runner.wrap(generator, torch.device("cpu"), torch.float32, str(model))


def test_upscale_runs_on_the_new_backend(tmp_path, tiny_weights):
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (9, 11, 3), np.uint8)).save(tmp_path / "a.png")
    CALLS.clear()
    for backend in ("eager", "torch"):
        assert main(["upscale", str(tmp_path / "a.png"), "--model", tiny_weights, "--backend", backend,
                     "-o", str(tmp_path / f"{backend}.png"), "--io-threads", "0"]) == 0
    assert CALLS == [tiny_weights]
    eager, fused = (np.asarray(Image.open(tmp_path / f"{b}.png"), np.int16) for b in ("eager", "torch"))
    assert eager.shape == (36, 44, 3) and np.abs(eager - fused).max() <= 1  # folding batch norm rounds differently


def test_a_server_runs_on_the_new_backend(tiny_weights):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from srgan.serve import ServeSettings, create_app

    buffer = io.BytesIO()
    Image.new("RGB", (6, 5), (10, 200, 30)).save(buffer, "PNG")
    CALLS.clear()
    with TestClient(create_app(ServeSettings(model=tiny_weights, backend="eager"))) as client:
        response = client.post("/api/upscale", files={"file": ("a.png", buffer.getvalue(), "image/png")})
    assert response.status_code == 200, response.text
    assert CALLS and all(call.endswith("tiny_x4.safetensors") for call in CALLS)
    assert Image.open(io.BytesIO(response.content)).size == (24, 20)
