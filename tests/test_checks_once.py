"""Each value is checked once, where it enters: a bad tile, serve setting or loss term is refused in one
line (exit 2 on the command line) before any model is loaded, on the CLI and the Python API alike."""

from __future__ import annotations

import pytest
from PIL import Image

import srgan
from srgan.api import SrganError, UpscaleOptions
from srgan.cli import main
from srgan.inference import cache
from srgan.models import weights
from srgan.training.config import Config, generator_config


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any model load fails the test: the refusal must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the refusal")

    monkeypatch.setattr(weights, "load_model", refuse)
    monkeypatch.setattr(cache, "build_runner", refuse)


def _refused(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_upscale_refuses_a_tile_below_the_tiler_minimum_before_loading(tmp_path, capsys, no_model_loads):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    err = _refused(capsys, ["upscale", str(image), "--tile", "8", "-o", str(tmp_path / "out")])
    assert "tile must be auto, 0 (the whole image) or at least 16 pixels, got 8" in err
    assert not (tmp_path / "out").exists()


def test_eval_refuses_a_small_tile_before_loading(tmp_path, capsys, no_model_loads):
    Image.new("RGB", (32, 32)).save(tmp_path / "hr.png")
    err = _refused(capsys, ["eval", "--model", "srresnet_x4", "--data", str(tmp_path), "--scale", "4",
                            "--tile", "8"])
    assert "at least 16 pixels, got 8" in err


def test_serve_refuses_negative_max_pixels_before_loading(capsys, no_model_loads):
    err = _refused(capsys, ["serve", "--max-pixels", "-1"])
    assert "max_pixels must be a whole number >= 1, got -1" in err


def test_options_accept_the_tiles_the_tiler_runs():
    assert [UpscaleOptions(tile=t).tile for t in (0, 16, "16", "none")] == [None, 16, 16, None]
    for bad in (1, 15, "8"):
        with pytest.raises(SrganError, match="at least 16 pixels"):
            UpscaleOptions(tile=bad)


def test_api_train_validates_a_config_made_in_python(tmp_path):
    with pytest.raises(SrganError, match=r"losses\.pixel\.wieght"):
        srgan.train(Config(losses={"pixel": {"type": "l1", "wieght": 1.0}}), run_dir=tmp_path)
    with pytest.raises(SrganError, match=r"losses\.pixel\.type: unknown loss 'l3'"):
        Config(losses={"pixel": {"type": "l3"}})
    assert not any(tmp_path.iterdir())


def test_a_config_is_completed_and_its_generator_resolved_when_made():
    config = Config(losses={"pixel": {"type": "l1"}})
    assert config.losses["pixel"]["weight"] == 1.0  # was KeyError: 'weight' when built from Python
    resolved = generator_config(config)
    assert resolved.scale == 4 and generator_config(config) is resolved


def test_serve_reads_an_uploads_header_once_against_its_one_limit(tiny_weights, monkeypatch):
    pytest.importorskip("fastapi")
    import io

    from fastapi.testclient import TestClient
    from PIL import Image as PILImage

    from srgan.serve import ServeSettings, create_app

    opened = []
    real_open = PILImage.open
    monkeypatch.setattr(PILImage, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    monkeypatch.setenv("SRGAN_MAX_PIXELS", "10")  # the command line's limit, not the server's
    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(buffer, "PNG")
    with TestClient(create_app(ServeSettings(model=tiny_weights, max_pixels=64))) as client:
        ok = client.post("/api/upscale", files={"file": ("a.png", buffer.getvalue(), "image/png")})
        assert ok.status_code == 200 and len(opened) == 1
        big = io.BytesIO()
        PILImage.new("RGB", (9, 8)).save(big, "PNG")
        refused = client.post("/api/upscale", files={"file": ("b.png", big.getvalue(), "image/png")})
    assert refused.status_code == 422
    assert refused.json() == {"error": "9x8 is 72 pixels, more than the limit of 64 (--max-pixels)",
                              "limit": {"name": "max_pixels", "value": 64}}


def test_serve_looks_the_model_up_once_per_request(tiny_weights, monkeypatch):
    """The output-size limit and the upscale use the same runner: one cache lookup per request."""
    pytest.importorskip("fastapi")
    import io

    from fastapi.testclient import TestClient

    from srgan.serve import ServeSettings, create_app

    lookups = []
    real_runner = cache.ModelCache.runner
    monkeypatch.setattr(cache.ModelCache, "runner", lambda self, *a, **k: lookups.append(1) or real_runner(self, *a, **k))
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6)).save(buffer, "PNG")
    with TestClient(create_app(ServeSettings(model=tiny_weights))) as client:
        lookups.clear()  # start-up loads the default model once
        reply = client.post("/api/upscale", files={"file": ("a.png", buffer.getvalue(), "image/png")},
                            data={"outscale": "3"})
    assert reply.status_code == 200 and len(lookups) == 1
    assert reply.headers["X-Srgan-Size"] == "24x18"
