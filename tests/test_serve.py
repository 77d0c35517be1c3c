"""`srgan serve` through FastAPI's ASGI test client (issue 11): good images come back upscaled in their
mode and equal to `srgan.upscale`; every bad request gets the right status and a JSON error, and the
server keeps serving after it; limits, the bounded queue, timeouts and offline docs."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib

import numpy as np
import png
import pytest
import torch
from PIL import Image

import srgan
from srgan import api, cli
from srgan.api import SrganError
from srgan.imaging.io import decode_image, encode_image, read_image, write_image
from srgan.serve import ServeSettings, check_installed

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")
from fastapi.testclient import TestClient

from srgan.serve import create_app
from srgan.serve.server import bind

RNG = np.random.default_rng(0)
LIMITS = {"max_pixels": 64 * 64, "max_upload_mb": 0.05, "queue": 1, "workers": 1, "timeout": 30}


@pytest.fixture(scope="module")
def app(tiny_weights):
    return create_app(ServeSettings(model=tiny_weights, **LIMITS))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as client:
        yield client


def _png(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **save)
    return buffer.getvalue()


def _png16_rgb(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    png.Writer(array.shape[1], array.shape[0], greyscale=False, bitdepth=16).write(buffer, array.reshape(array.shape[0], -1))
    return buffer.getvalue()


def _post(client, data: bytes, name: str = "in.png", **fields):
    return client.post("/api/upscale", files={"file": (name, data, "application/octet-stream")}, data=fields)


def _assert_serving(client) -> None:
    """The server still answers a good request after a bad one."""
    response = _post(client, _png(Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8))))
    assert response.status_code == 200 and Image.open(io.BytesIO(response.content)).size == (32, 32)


# ---------------------------------------------------------------- good images
RGB = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)
RGBA = np.dstack([RGB, np.linspace(0, 255, 30, dtype=np.uint8)[None, :, None].repeat(20, 0)])
GRAY16 = RNG.integers(0, 65536, (20, 30)).astype(np.uint16)
RGB16 = RNG.integers(0, 65536, (20, 30, 3)).astype(np.uint16)


GOOD = [
    ("RGB", _png(Image.fromarray(RGB)), "RGB"),
    ("RGBA", _png(Image.fromarray(RGBA, "RGBA")), "RGBA"),
    ("gray", _png(Image.fromarray(RGB[..., 0])), "L"),
    ("gray 16-bit", _png(Image.frombytes("I;16", (30, 20), GRAY16.astype("<u2").tobytes())), "I;16"),
    ("RGB 16-bit", _png16_rgb(RGB16), "RGB"),
]


@pytest.mark.parametrize("kind, data, mode", GOOD, ids=[case[0] for case in GOOD])
def test_good_images_come_back_4x_in_their_mode_and_equal_to_the_api(client, tiny_weights, kind, data, mode):
    response = _post(client, data, name=f"{kind}.png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-srgan-model"] == "tiny_x4.safetensors" and response.headers["x-srgan-scale"] == "4"
    assert float(response.headers["x-srgan-seconds"]) > 0
    assert f"{kind}_x4.png".replace(" ", "_") in response.headers["content-disposition"]
    out = Image.open(io.BytesIO(response.content))
    assert out.size == (120, 80) and out.mode == mode
    bit_depth, colour_type = response.content[24], response.content[25]  # PNG IHDR
    assert bit_depth == (16 if "16" in kind else 8)
    assert colour_type == {"RGB": 2, "RGBA": 6, "gray": 0, "gray 16-bit": 0, "RGB 16-bit": 2}[kind]
    # the server is a thin layer: the same pixels as srgan.upscale on the same decoded image
    expected = srgan.upscale(decode_image(data), tiny_weights)
    assert torch.equal(decode_image(response.content).pixels, decode_image(encode_image(expected, "png")).pixels)


def test_options_are_form_fields(client):
    data = _png(Image.fromarray(RGB))
    response = _post(client, data, outscale="2", format="jpg", quality="80", color_fix="hist", lowpass="gaussian:0.5")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg" and response.headers["x-srgan-scale"] == "2"
    assert Image.open(io.BytesIO(response.content)).size == (60, 40)
    jpeg = io.BytesIO()
    Image.fromarray(RGB).save(jpeg, "JPEG")
    response = _post(client, jpeg.getvalue(), name="photo.jpg", format="", strip_metadata="true")
    assert response.headers["content-type"] == "image/jpeg"  # empty fields count as not sent: the input's format
    assert 'filename="photo_x4.jpg"' in response.headers["content-disposition"]


# ---------------------------------------------------------------- refusals
def _huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a few bytes of pixel data: decoding it would fail,
    so a refusal naming the pixel limit proves the header was checked before decoding."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


SMALL = _png(Image.fromarray(RGB))
RGBA_PNG = _png(Image.fromarray(RGBA, "RGBA"))
NOISE = RNG.integers(0, 256, (60, 60, 3), dtype=np.uint8)  # ~11 KB as PNG, under the pixel limit


BAD = [
    ("oversize upload", b"\x89PNG" + bytes(60_000), {}, 413, "--max-upload-mb", "max_upload_mb"),
    ("too many pixels", _png(Image.new("RGB", (100, 100))), {}, 422, "--max-pixels", "max_pixels"),
    ("header over the limit", _huge_png_header(1000, 1000), {}, 422, "1000x1000 is 1,000,000 pixels", "max_pixels"),
    ("decompression bomb", _huge_png_header(100_000, 100_000), {}, 422, "decompression bomb", "max_pixels"),
    ("bad type", b"just some text, not an image", {}, 415, "not an image", None),
    ("corrupt data", SMALL[:len(SMALL) // 2], {}, 422, "corrupt or truncated", None),
    ("empty file", b"", {}, 415, "not an image", None),
    ("bad colour fix", SMALL, {"color_fix": "auto"}, 422, "color_fix must be one of", None),
    ("bad outscale", SMALL, {"outscale": "0"}, 422, "outscale must be between", None),
    ("bad format", SMALL, {"format": "gif"}, 422, "format must be one of", None),
    ("bad quality", SMALL, {"quality": "high"}, 422, "quality must be a number", None),
    ("unknown option", SMALL, {"tiles": "3"}, 422, "unknown upscale option 'tiles'", None),
    ("model as a path", SMALL, {"model": "/etc/passwd"}, 422, "model must be one of", None),
    ("device per request", SMALL, {"device": "cuda"}, 422, "device is set by the server", None),
    ("whole image per request", SMALL, {"tile": "0"}, 422, "tile is set by the server", None),
    ("alpha as JPEG", RGBA_PNG, {"format": "jpg"}, 422, "JPEG cannot store the alpha", None),
    ("output too large", SMALL, {"outscale": "16"}, 422, "--max-pixels", "max_pixels"),
]


@pytest.mark.parametrize("case, data, fields, status, words, limit", BAD, ids=[case[0] for case in BAD])
def test_bad_requests_get_their_status_and_a_json_error_and_the_server_goes_on(
        client, case, data, fields, status, words, limit):
    response = _post(client, data, **fields)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert words in body["error"] and "\n" not in body["error"]
    assert (body.get("limit") or {}).get("name") == limit
    _assert_serving(client)


def test_requests_that_are_not_an_upload_form(client):
    response = client.post("/api/upscale", content=SMALL, headers={"content-type": "image/png"})
    assert response.status_code == 415 and "multipart/form-data" in response.json()["error"]
    response = client.post("/api/upscale", data={"outscale": "2"}, files={"other": ("a.png", SMALL)})
    assert response.status_code == 422 and "no image in the form field 'file'" in response.json()["error"]
    _assert_serving(client)


def test_a_full_queue_answers_429_with_retry_after(app, client):
    queue = app.state.queue
    held = [queue.take() for _ in range(queue.capacity)]
    try:
        response = _post(client, SMALL)
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["limit"] == {"name": "queue", "value": 1}
    finally:
        for slot in held:
            slot.close()
    _assert_serving(client)
    assert 'srgan_upscale_errors_total{reason="busy"}' in client.get("/metrics").text


@pytest.fixture
def blocked_upscale(monkeypatch):
    """`srgan.api.upscale` held until the test releases it: a 'big image' on demand."""
    release, real = threading.Event(), api.upscale

    def held(*args, **kwargs):
        assert release.wait(10), "test never released the upscale"
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "upscale", held)
    yield release
    release.set()


def _wait_for(condition, seconds: float = 10) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_healthz_answers_while_an_image_is_upscaled(app, client, blocked_upscale):
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("response", _post(client, SMALL)))
    worker.start()
    _wait_for(lambda: app.state.queue.running == 1)
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["queue"]["running"] == 1
    assert "srgan_queue_running 1.0" in client.get("/metrics").text
    blocked_upscale.set()
    worker.join(10)
    assert result["response"].status_code == 200


def test_a_request_past_the_timeout_gets_504_and_its_slot_back_when_its_job_ends(tiny_weights, blocked_upscale):
    app = create_app(ServeSettings(model=tiny_weights, **{**LIMITS, "timeout": 0.3}))
    queue = app.state.queue
    with TestClient(app) as client:
        response = _post(client, SMALL)
        assert response.status_code == 504 and response.json()["limit"] == {"name": "timeout", "value": 0.3}
        assert queue.running == 1 and queue.waiting == 0  # the running job cannot be stopped: its slot is taken
        blocked_upscale.set()
        _wait_for(lambda: queue.running == 0 and queue.waiting == 0)
        _assert_serving(client)


# ---------------------------------------------------------------- the other endpoints
def test_models_health_and_metrics(client):
    models = client.get("/api/models").json()
    assert models["default"] == "tiny_x4.safetensors"
    names = [m["name"] for m in models["models"]]
    assert names[0] == "tiny_x4.safetensors" and api.DEFAULT_MODEL in names
    assert all("spec" not in m for m in models["models"])  # no server path leaks to clients
    assert models["models"][0] == {"name": "tiny_x4.safetensors", "scale": 4, "parameters": 10375,
                                   "description": "weights file tiny_x4.safetensors", "shipped": False, "default": True,
                                   "strength": False}
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["queue"]["capacity"] == 2
    assert health["limits"] == {"max_upload_mb": 0.05, "max_pixels": 4096, "timeout": 30.0}
    _assert_serving(client)
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    for line in ('srgan_upscale_requests_total{status="200"}', "srgan_upscale_seconds_count",
                 "srgan_queue_waiting 0.0", "srgan_queue_capacity 2.0"):
        assert line in metrics.text


def test_page_and_docs_need_no_network(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text and 'id="file"' in page.text
    docs = client.get("/docs")
    assert docs.status_code == 200 and "http://" not in docs.text and "https://" not in docs.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/docs/assets/{asset}").status_code == 200
    schema = client.get("/openapi.json").json()
    form = schema["paths"]["/api/upscale"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["properties"]) == {"file", "model", "outscale", "color_fix", "lowpass", "alpha", "format",
                                       "quality", "strip_metadata", "strength"}
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN


# ---------------------------------------------------------------- settings, start-up, command line
def test_settings_are_validated_when_made():
    assert ServeSettings(max_upload_mb="2").max_upload_bytes == 2 * 1024 * 1024
    for bad, words in (({"port": 70000}, "port"), ({"queue": -1}, "queue"), ({"workers": 0}, "workers"),
                       ({"max_upload_mb": 0}, "max_upload_mb"), ({"timeout": "soon"}, "timeout"),
                       ({"max_pixels": 1.5}, "max_pixels")):
        with pytest.raises(SrganError, match=words):
            ServeSettings(**bad)
    assert [ServeSettings(host=h).loopback for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "example.org")] == \
        [True, True, True, False, False]


def test_missing_extra_is_one_line_naming_it(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    with pytest.raises(SrganError, match=r"'serve' extra \(fastapi missing\)"):
        check_installed()
    assert cli.main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install -e ".[serve]"' in err


def test_cli_refuses_a_bad_model_or_a_busy_port_in_one_line(capsys):
    assert cli.main(["serve", "--port", "0", "--model", "no_such.safetensors"]) == 2
    assert "neither shipped weights" in capsys.readouterr().err
    taken = bind("127.0.0.1", 0)
    taken.listen()
    try:
        assert cli.main(["serve", "--port", str(taken.getsockname()[1])]) == 2
        assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
    finally:
        taken.close()


# ---------------------------------------------------------------- the in-memory reader and writer it uses
def test_decode_and_encode_match_reading_and_writing_files(tmp_path):
    data = _png16_rgb(RGB16)
    (tmp_path / "in.png").write_bytes(data)
    from_file, from_bytes = read_image(tmp_path / "in.png"), decode_image(data)
    assert torch.equal(from_file.pixels, from_bytes.pixels) and from_bytes.bit_depth == 16
    for fmt, suffix in (("png", ".png"), ("tiff", ".tif"), ("webp", ".webp")):
        write_image(tmp_path / f"out{suffix}", from_bytes, format=fmt)
        assert encode_image(from_bytes, fmt) == (tmp_path / f"out{suffix}").read_bytes()
    with pytest.raises(SrganError, match="upload: empty file"):
        decode_image(b"")
