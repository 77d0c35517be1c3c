"""The strength control: network interpolation between a shipped GAN model and its PSNR partner."""

from __future__ import annotations

import pytest
import torch

from srgan.errors import SrganError
from srgan.models.interpolation import blended_model, strength_partner
from srgan.models.weights import load_model


def test_strength_blends_every_weight_between_the_pair_and_ends_on_each_model():
    gan, psnr = load_model("srgan_x4"), load_model("srresnet_x4")
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(blended_model("srgan_x4", 1.0)(x), gan(x))
        assert torch.equal(blended_model("srgan_x4", 0.0)(x), psnr(x))
        half = blended_model("srgan_x4", 0.25).state_dict()
    for key, tensor in gan.state_dict().items():
        expected = 0.75 * psnr.state_dict()[key] + 0.25 * tensor
        torch.testing.assert_close(half[key], expected, rtol=0, atol=1e-6)


def test_strength_is_refused_for_models_without_a_trained_partner(tiny_weights):
    assert strength_partner("srgan_x4") == "srresnet_x4"
    for model in ("srresnet_x4", "srresnet_x2", tiny_weights, None):
        with pytest.raises(SrganError, match="applies to srgan_x4"):
            strength_partner(model)
