"""The strength control: network interpolation between a shipped GAN model and its PSNR partner."""

from __future__ import annotations

import pytest
import torch

from srgan.errors import SrganError
from srgan.models.interpolation import blended_model, strength_partner
from srgan.models.weights import load_model


@pytest.mark.parametrize("name,partner", [("srgan_x4", "srresnet_x4"), ("srgan_real_x4", "srresnet_real_x4")])
def test_strength_blends_every_weight_between_the_pair_and_ends_on_each_model(name, partner):
    gan, psnr = load_model(name), load_model(partner)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(blended_model(name, 1.0)(x), gan(x))
        assert torch.equal(blended_model(name, 0.0)(x), psnr(x))
        half = blended_model(name, 0.25).state_dict()
    for key, tensor in gan.state_dict().items():
        expected = 0.75 * psnr.state_dict()[key] + 0.25 * tensor
        torch.testing.assert_close(half[key], expected, rtol=0, atol=1e-6)


def test_strength_is_refused_for_models_without_a_trained_partner(tiny_weights):
    assert strength_partner("srgan_x4") == "srresnet_x4"
    assert strength_partner("srgan_real_x4") == "srresnet_real_x4"
    for model in ("srresnet_x4", "srresnet_real_x4", "srresnet_x2", tiny_weights, None):
        with pytest.raises(SrganError, match="applies to srgan_x4, srgan_real_x4, not to"):
            strength_partner(model)


def test_upscale_options_check_the_strength_once_where_it_enters():
    from srgan.inference.options import UpscaleOptions

    assert UpscaleOptions(strength="0.4").strength == 0.4  # the default model, srgan_x4, takes one
    for bad, message in ((1.5, "between 0 and 1"), ("soft", "must be a number"), (float("nan"), "finite")):
        with pytest.raises(SrganError, match=message):
            UpscaleOptions(strength=bad)
    with pytest.raises(SrganError, match="not to 'srresnet_x4'"):
        UpscaleOptions(model="srresnet_x4", strength=0.5)


def test_cli_strength_writes_the_blended_models_output_and_refuses_other_models(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    import srgan
    from srgan.cli import main

    rng = np.random.default_rng(0)
    source = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(source)
    out = tmp_path / "out.png"
    assert main(["upscale", str(source), "-o", str(out), "--strength", "0.3", "--precision", "fp32"]) == 0
    expected = srgan.upscale(Image.open(source), blended_model("srgan_x4", 0.3), precision="fp32")
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))
    gan = srgan.upscale(Image.open(source), "srgan_x4", precision="fp32")
    assert not np.array_equal(np.asarray(gan), np.asarray(expected))
    capsys.readouterr()
    assert main(["upscale", str(source), "-o", str(tmp_path / "x.png"), "--model", "srresnet_x4",
                 "--strength", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "applies to srgan_x4" in err and not (tmp_path / "x.png").exists()


def test_web_api_offers_strength_for_the_gan_model_only():
    import io

    import numpy as np
    from fastapi.testclient import TestClient
    from PIL import Image

    from srgan.serve import ServeSettings, create_app

    app = create_app(ServeSettings(model="srgan_x4", max_pixels=64 * 64, workers=1, queue=1))
    data = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(data, "PNG")
    with TestClient(app) as client:
        models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
        assert models["srgan_x4"]["strength"] and not models["srresnet_x4"]["strength"]
        post = lambda **fields: client.post("/api/upscale", files={"file": ("a.png", data.getvalue())}, data=fields)
        soft, full = post(strength="0"), post(strength="1")
        assert soft.status_code == full.status_code == 200 and soft.content != full.content
        refused = post(model="srresnet_x4", strength="0.5")
        assert refused.status_code == 422 and "applies to srgan_x4" in refused.json()["error"]
