"""VGGFeatures: torchvision key layout, strict loading of the shared partial file, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from srgan.errors import SrganError
from srgan.models.vgg import LAYER_NAMES, TORCHVISION_FILE, TORCHVISION_URL, VGGFeatures


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("tests must never download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    return tmp_path


def test_layer_names_follow_torchvision_indices() -> None:
    assert len(LAYER_NAMES) == 37
    assert (LAYER_NAMES[0], LAYER_NAMES[3], LAYER_NAMES[8], LAYER_NAMES[17], LAYER_NAMES[35], LAYER_NAMES[36]) == (
        "conv1_1", "relu1_2", "relu2_2", "relu3_4", "relu5_4", "pool5")


def test_partial_file_loads_strictly_into_features_up_to_relu3_4(vgg_weights, no_download) -> None:
    model = VGGFeatures(["relu2_2", "relu3_4"], weights=vgg_weights)
    reference = load_file(str(vgg_weights))
    assert len(model.features) == 18
    state = model.state_dict()
    assert set(state) == set(reference)
    for key, value in reference.items():
        assert state[key].dtype == torch.float32
        assert torch.equal(state[key], value.float())
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training


def test_relu5_4_from_partial_file_fails_naming_file_and_deepest_layer(vgg_weights, no_download) -> None:
    with pytest.raises(SrganError) as err:
        VGGFeatures(["relu2_2", "relu5_4"], weights=vgg_weights)
    message = str(err.value)
    assert vgg_weights.name in message and "relu3_4" in message and "relu5_4" in message
    assert "\n" not in message


def test_missing_weights_say_which_file_to_put_where(empty_hub, no_download) -> None:
    with pytest.raises(SrganError) as err:
        VGGFeatures("relu2_2")
    message = str(err.value)
    assert str(empty_hub / "checkpoints" / TORCHVISION_FILE) in message
    assert "download=True" in message
    with pytest.raises(SrganError, match="not found"):
        VGGFeatures("relu2_2", weights=empty_hub / "nope.safetensors")
    corrupt = empty_hub / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(SrganError, match="cannot read"):
        VGGFeatures("relu2_2", weights=corrupt)


def test_hub_cache_pth_is_used_and_loaded_safely(vgg_weights, empty_hub, no_download) -> None:
    target = empty_hub / "checkpoints" / TORCHVISION_FILE
    target.parent.mkdir()
    state = load_file(str(vgg_weights))
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files carry a classifier: ignored
    torch.save(state, target)
    model = VGGFeatures("relu1_2")
    assert model.source == str(target)
    assert torch.equal(model.features[2].weight, state["features.2.weight"].float())


def test_download_only_when_asked_uses_torchvision_url(vgg_weights, empty_hub, monkeypatch) -> None:
    calls = []

    def fake_download(url: str, **kwargs: object) -> dict[str, torch.Tensor]:
        calls.append((url, kwargs))
        return load_file(str(vgg_weights))

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    with pytest.raises(SrganError):
        VGGFeatures("relu1_1")
    assert calls == []
    VGGFeatures("relu1_1", download=True)
    assert calls[0][0] == TORCHVISION_URL and calls[0][1].get("weights_only") is True


def test_unknown_layer_is_refused() -> None:
    with pytest.raises(SrganError, match="relu6_1"):
        VGGFeatures("relu6_1")


def test_features_match_a_direct_computation_and_caffe_scale(vgg_weights, shared) -> None:
    model = VGGFeatures(["conv1_1", "conv3_4", "relu3_4"], weights=vgg_weights)
    rgb = np.asarray(Image.open(shared / "datasets" / "Set5" / "butterfly.png").convert("RGB"))[64:192, 64:192]
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    out = model(x)
    state = load_file(str(vgg_weights))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    direct = F.conv2d((x - mean) / std, state["features.0.weight"].float(), state["features.0.bias"].float(), padding=1)
    torch.testing.assert_close(out["conv1_1"], direct)
    assert torch.equal(out["relu3_4"], out["conv3_4"].clamp(min=0))  # no in-place ReLU clobbering
    assert out["relu3_4"].shape == (1, 256, 32, 32)
    # Caffe-scale weights (README of the shared file): relu3_4 means in the hundreds on a real image.
    assert 100 < out["relu3_4"].mean().item() < 1000
    constant = model(torch.full((1, 3, 32, 32), 0.5))
    assert all(torch.isfinite(t).all() for t in constant.values())


def test_vgg16_features_load_the_whole_shared_file_and_feed_the_perceptual_loss(shared):
    """The shared VGG16 file holds conv1_1 .. conv5_3 under torchvision's vgg16 keys: every layer to
    relu5_3 loads strictly, and a VGG16 perceptual loss is 0 for equal images and grows with noise."""
    from srgan.losses.registry import build_loss
    from srgan.models.vgg import layer_names

    path = shared / "weights" / "vgg16_features_imagenet.safetensors"
    names = layer_names("vgg16")
    assert len(names) == 31 and names[-2:] == ("relu5_3", "pool5")
    model = VGGFeatures(["conv3_3", "conv5_3"], weights=path, network="vgg16")
    assert len(model.features) == names.index("conv5_3") + 1
    out = model(torch.rand(1, 3, 32, 32))
    assert out["conv5_3"].shape == (1, 512, 2, 2)
    with pytest.raises(SrganError, match="unknown VGG16 layer 'conv5_4'"):
        VGGFeatures("conv5_4", weights=path, network="vgg16")
    loss = build_loss("perceptual", layers={"conv1_2": 0.1, "conv5_3": 1.0}, criterion="l1", feature_scale=1.0,
                      weights_path=str(path), network="vgg16")
    torch.manual_seed(0)
    x = torch.rand(1, 3, 48, 48)
    small, large = (loss(x + s * torch.randn_like(x), x) for s in (0.02, 0.1))
    assert float(loss(x, x)) == 0 and 0 < float(small) < float(large)
