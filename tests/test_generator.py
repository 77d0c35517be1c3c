import pytest
import torch

import srgan
from srgan.errors import SrganError
from srgan.models import Generator, GeneratorConfig, create, names

PRESET_SCALES = {"srresnet_x4": 4, "srresnet_x2": 2, "fpt_x4": 4, "keras_x4": 4, "ssim_x4": 4,
                 "ssim_x2": 2, "mit_x4": 4, "mit_x2": 2, "uos_x4": 4}


def test_every_published_preset_is_registered():
    assert set(PRESET_SCALES) <= set(names())


def test_srresnet_x4_has_ledigs_parameter_count():
    assert sum(p.numel() for p in create("srresnet_x4").parameters()) == 1_549_462


@pytest.mark.parametrize("name", sorted(PRESET_SCALES))
def test_preset_docstring_states_its_parameter_count(name):
    from srgan.models.registry import describe
    count = sum(p.numel() for p in create(name).parameters())
    assert f"{count:,} parameters" in describe(name)


@pytest.mark.parametrize("name", sorted(PRESET_SCALES))
def test_output_shape_for_odd_input(name):
    model = create(name).eval()
    s = PRESET_SCALES[name]
    with torch.no_grad():
        out = model(torch.rand(1, 3, 13, 17))
    assert out.shape == (1, 3, 13 * s, 17 * s)


@pytest.mark.parametrize("name", sorted(PRESET_SCALES))
def test_save_load_reproduces_outputs_exactly(name, tmp_path):
    torch.manual_seed(0)
    model = create(name)
    model.train()
    with torch.no_grad():  # give batch norm non-trivial running statistics
        model(torch.rand(2, 3, 16, 16))
    model.eval()
    path = srgan.save_model(model, tmp_path / f"{name}.safetensors", preset=name, note={"steps": 3})
    loaded = srgan.load_model(path)
    x = torch.rand(1, 3, 11, 9)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    from srgan.models.weights import read_metadata
    meta = read_metadata(path)
    assert meta["preset"] == name and meta["scale"] == PRESET_SCALES[name] and meta["note"] == {"steps": 3}


def test_pth_loads_with_weights_only(tmp_path):
    model = create("uos_x4").eval()
    torch.save(model.state_dict(), tmp_path / "g.pth")
    with pytest.raises(SrganError, match="preset"):
        srgan.load_model(tmp_path / "g.pth")
    loaded = srgan.load_model(tmp_path / "g.pth", preset="uos_x4")
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_scale_8_has_three_stages():
    model = Generator(GeneratorConfig(scale=8, blocks=2, width=8)).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 5, 7)).shape == (1, 3, 40, 56)


@pytest.mark.parametrize("bad", [{"scale": 3}, {"padding": "symmetric"}, {"upsampler": "bilinear"}])
def test_bad_config_is_a_clear_error(bad):
    with pytest.raises(SrganError):
        GeneratorConfig(**bad)


def test_unknown_preset_and_override():
    with pytest.raises(SrganError, match="unknown preset"):
        create("srgan_x5")
    with pytest.raises(SrganError, match="unknown generator setting 'depth'"):
        create("srresnet_x4", depth=3)


def test_reflect_padding_is_used():
    conv = create("fpt_x4").head[0]
    assert conv.padding_mode == "reflect"
