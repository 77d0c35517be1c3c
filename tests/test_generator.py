import json
from pathlib import Path

import pytest
import torch

import srgan
from srgan.errors import SrganError
from srgan.models import create, names
from srgan.models.srresnet import SRResNet, SRResNetConfig

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
    model = SRResNet(SRResNetConfig(scale=8, blocks=2, width=8)).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 5, 7)).shape == (1, 3, 40, 56)


@pytest.mark.parametrize("bad", [{"scale": 3}, {"padding": "symmetric"}, {"upsampler": "bilinear"}])
def test_bad_config_is_a_clear_error(bad):
    with pytest.raises(SrganError):
        SRResNetConfig(**bad)


def test_unknown_preset_and_override():
    with pytest.raises(SrganError, match="unknown preset"):
        create("srgan_x5")
    with pytest.raises(SrganError, match="unknown generator setting 'depth'"):
        create("srresnet_x4", depth=3)


def test_reflect_padding_is_used():
    conv = create("fpt_x4").head[0]
    assert conv.padding_mode == "reflect"


# ---------------------------------------------------------------- architecture interface and registry


def _measured_context(model: torch.nn.Module, size: int = 40) -> int:
    """How far, in LR pixels, changing one input pixel changes the output (float64, no border in reach)."""
    model = model.double().eval()
    x = torch.rand(1, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    bumped = x.clone()
    centre = size // 2
    bumped[..., centre, centre] += 0.5
    with torch.no_grad():
        changed = torch.nonzero((model(x) - model(bumped)).abs().amax(dim=(0, 1)))
    lr = changed // model.scale  # the LR pixel each changed output pixel belongs to
    assert lr.min() > 0 and lr.max() < size - 1, "the change reached the border: use a larger image"
    return int((lr - centre).abs().max())


@pytest.mark.parametrize("name", ["srresnet_x4", "srresnet_x2", "fpt_x4", "keras_x4", "mit_x4", "mit_x2", "uos_x4"])
def test_declared_context_is_the_measured_receptive_field(name):
    """zeros / reflect padding, PixelShuffle / nearest / transposed (with and without pre-conv), x2 / x4:
    the declared context is exactly how far one input pixel reaches, neither short (seams) nor long (waste)."""
    torch.manual_seed(0)
    model = create(name, blocks=2, width=8)
    assert model.context() == _measured_context(model)


def test_full_srresnet_x4_context_is_40_and_survives_inference_rewrites():
    from srgan.inference.engine import prepare_model

    model = create("srresnet_x4")
    prepared = prepare_model(model)  # BN folded, tail moved before the last PixelShuffle, in-place activations
    assert model.context() == prepared.context() == 40
    assert isinstance(prepared.tail, torch.nn.Sequential)


def test_chain_context_refuses_layers_it_cannot_reason_about():
    from srgan.models.generator import chain_context

    assert chain_context(torch.nn.Conv2d(3, 3, 5, padding=2), torch.nn.PixelShuffle(1)) == 2
    with pytest.raises(SrganError, match="compute context"):
        chain_context(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1))
    with pytest.raises(SrganError, match="compute context"):
        chain_context(torch.nn.Conv2d(3, 3, 3, stride=2, padding=1))


def test_weights_record_the_architecture_and_older_files_load_as_srresnet(tmp_path):
    from srgan.models.weights import read_metadata

    path = srgan.save_model(create("srresnet_x2", blocks=1), tmp_path / "m.safetensors")
    meta = read_metadata(path)
    assert meta["architecture"] == "srresnet" and meta["config"]["scale"] == 2
    older = Path(__file__).parent / "fixtures" / "generator_before_registries.safetensors"
    old_meta = read_metadata(older)
    assert "architecture" not in old_meta and "config" in old_meta  # written before architectures were named
    assert isinstance(srgan.load_model(older), SRResNet)


def test_a_file_of_an_unregistered_architecture_is_one_clear_line(tmp_path):
    from safetensors.torch import load_file, save_file

    from srgan.models.weights import read_metadata

    path = srgan.save_model(create("srresnet_x2", blocks=1), tmp_path / "m.safetensors")
    meta = {k: json.dumps(v) for k, v in {**read_metadata(path), "architecture": "swinir"}.items()}
    save_file(load_file(path), tmp_path / "other.safetensors", metadata=meta)
    with pytest.raises(SrganError, match=r"other.safetensors: unknown architecture 'swinir' \(known: .*srresnet"):
        srgan.load_model(tmp_path / "other.safetensors")


def test_registering_an_architecture_checks_the_interface():
    from dataclasses import dataclass

    from srgan.models.generator import Generator, GeneratorConfig
    from srgan.models.registry import register_architecture

    @dataclass(frozen=True)
    class Config(GeneratorConfig):
        scale: int = 2
        in_channels: int = 3
        out_channels: int = 3

    class NoContext(Generator):
        pass

    with pytest.raises(SrganError, match="must define context"):
        register_architecture("no_context", Config)(NoContext)

    @dataclass
    class Mutable(GeneratorConfig):
        scale: int = 2

    class Sized(Generator):
        def context(self) -> int:
            return 0

    with pytest.raises(SrganError, match="frozen dataclass"):
        register_architecture("mutable", Mutable)(Sized)
    with pytest.raises(SrganError, match="already registered"):
        register_architecture("srresnet", Config)(Sized)
    assert not {"no_context", "mutable"} & set(srgan.models.architectures())
