"""A new writable image format is one `register_format` row (here QOI, which Pillow writes): with it,
`srgan upscale --format qoi` and the web API's `format=qoi` write it, and nothing else was edited."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from srgan.cli import main
from srgan.imaging.formats import ImageFormat, register_format

QOI = register_format(ImageFormat("qoi", "QOI", (".qoi",), media_type="image/qoi", label="QOI", gray=False))
"""Lossless RGB / RGBA only (gray is written as RGB), 8 bits, no quality setting."""


def _image(path, mode="RGBA"):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (12, 10, len(mode)), np.uint8), mode).save(path)


def test_upscale_writes_the_new_format(tmp_path, tiny_weights, capsys):
    _image(tmp_path / "a.png")
    assert main(["upscale", str(tmp_path / "a.png"), "--model", tiny_weights, "--format", "qoi",
                 "-o", str(tmp_path / "out"), "--io-threads", "0"]) == 0
    with Image.open(tmp_path / "out" / "a_x4.qoi") as im:
        assert (im.format, im.mode, im.size) == ("QOI", "RGBA", (40, 48))  # alpha kept, lossless
        written = np.asarray(im)
    assert main(["upscale", str(tmp_path / "a.png"), "--model", tiny_weights, "-o", str(tmp_path / "a_x4.png"),
                 "--io-threads", "0"]) == 0
    assert np.array_equal(written, np.asarray(Image.open(tmp_path / "a_x4.png")))  # the same pixels as PNG


def test_the_web_api_answers_in_the_new_format(tiny_weights):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from srgan.serve import ServeSettings, create_app

    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, "PNG")
    with TestClient(create_app(ServeSettings(model=tiny_weights))) as client:
        response = client.post("/api/upscale", files={"file": ("g.png", buffer.getvalue(), "image/png")},
                               data={"format": "qoi"})
        page = client.get("/").text
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/qoi"
    assert 'filename="g_x4.qoi"' in response.headers["content-disposition"]
    with Image.open(io.BytesIO(response.content)) as im:
        assert (im.format, im.mode, im.size) == ("QOI", "RGB", (32, 32))  # QOI has no gray mode
    # the page lists the formats browsers show, from the same table
    assert '<option value="webp">WebP</option>' in page and 'value="qoi"' not in page
