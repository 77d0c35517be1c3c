"""Training configs: every shipped YAML loads, overrides apply, mistakes give one line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from srgan.errors import SrganError
from srgan.training.config import data_scale, generator_config, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
EXPECTED = {"srresnet_x4", "srgan_x4", "fpt_x4", "ssim_x4", "ssim_x2", "mit_x4", "fftgan_x4", "rgan_x4",
            "uos_x4", "keras_x4", "tiny"}


def test_every_published_variant_has_a_config():
    assert EXPECTED <= {p.stem for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_loads_and_is_consistent(path):
    config = load_config(path)
    assert config.name == path.stem
    assert config.data.hr_crop % data_scale(config) == 0
    if config.gan:
        assert config.losses["adversarial"]["weight"] > 0


def test_overrides_reach_nested_keys_with_yaml_types():
    config = load_config(None, ["train.iterations=7", "optim.lr_g=1e-3", "data.folders=[a, b]",
                                "losses.perceptual={type: perceptual, layers: {relu2_2: 0.5}}",
                                "model.generator.blocks=2",
                                "train.precision=bf16"])
    assert config.train.iterations == 7 and config.optim.lr_g == 1e-3
    assert config.data.folders == ["a", "b"] and config.losses["perceptual"]["layers"] == {"relu2_2": 0.5}
    assert generator_config(config).blocks == 2 and config.train.precision == "bf16"


@pytest.mark.parametrize("override, message", [
    ("train.iteratons=5", "unknown config key 'train.iteratons'"),
    ("trian.iterations=5", "unknown config key 'trian'"),
    ("train.iterations=lots", "train.iterations: expected int, got 'lots'"),
    ("train.ema=yes", "train.ema: expected float"),
    ("discriminator.type=patchgan", "discriminator.type: unknown discriminator 'patchgan' (known: both, fft, unet, vgg)"),
    ("model.generator.blok=2", "unknown config key 'model.generator.blok'"),
    ("model.preset=srresnet_x3", "model.preset: unknown preset"),
    ("data.hr_crop=98", "data.hr_crop: must be a positive multiple of the scale 4"),
    ("train.ema=1.5", "train.ema"),
    ("losses.pixel.type=huber", "losses.pixel.type: unknown loss 'huber' (known: "),
    ("losses.pixel.epss=1", "unknown option 'losses.pixel.epss' for loss 'mse' (known: none)"),
    ("losses.pixel={type: charbonnier, eps: tiny}", "losses.pixel.eps: expected float, got 'tiny'"),
    ("losses.pixel.kind=l1", "`kind: l1` is now `type: l1`"),
    ("losses.pixel.weight=-1", "losses.pixel.weight: must not be negative"),
    ("discriminator.width=8", "discriminator.type: missing (known: both, fft, unet, vgg)"),
    ("discriminator={type: vgg, slope: 0.3}", "unknown option 'discriminator.slope' for discriminator 'vgg'"),
    ("discriminator.type=vgg", "a GAN run needs an adversarial loss term"),
    ("losses.adversarial={type: hinge}", "losses.adversarial is an adversarial loss but there is no discriminator"),
    ("losses.pixel=null", "losses: no term has a positive weight"),
    ("validation.niqe_model=niqe.npz", "validation.niqe_model needs validation.niqe_folder"),
    ("validation.niqe_lr=true", "validation.niqe_lr needs validation.niqe_folder"),
    ("validation.lr_folder=BSD100_LR", "validation.lr_folder needs validation.folder"),
    ("validation.lpips=true", "validation.lpips needs validation.folder"),
    ("validation.lpips=maybe", "validation.lpips: expected bool"),
])
def test_bad_config_names_the_key(override, message):
    with pytest.raises(SrganError) as info:
        load_config(None, [override])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_rgan_trains_an_x2_network_on_x4_data():
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "rgan_x4.yaml")
    assert generator_config(config).scale == 2 and data_scale(config) == 4


def test_cli_prints_one_line_and_exits_2_for_a_bad_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  iterations: 3\n  sped: 2\n")
    result = subprocess.run([sys.executable, "-m", "srgan", "train", "-c", str(cfg)], check=False, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "train.sped" in result.stderr


def test_terms_are_typed_and_overrides_edit_the_default_terms():
    config = load_config(None, ["losses.pixel.type=charbonnier", "losses.pixel.eps=1e-2", "discriminator.type=both",
                                "discriminator.negative_slope=0.3", "discriminator.fft={grid: 8}",
                                "losses.adversarial={type: ragan, weight: 5e-3}"])
    assert config.losses == {"pixel": {"type": "charbonnier", "weight": 1.0, "eps": 0.01},
                             "adversarial": {"type": "ragan", "weight": 0.005}}
    assert config.discriminator == {"type": "both", "in_channels": 3, "negative_slope": 0.3, "vgg": None,
                                    "fft": {"grid": 8}, "spatial_weight": 1.0, "spectral_weight": 1.0}
    assert config.gan and load_config(None).losses == {"pixel": {"type": "mse", "weight": 1.0}}


def test_config_changes_name_every_changed_key_once():
    from srgan.training.config import config_changes

    old = load_config(None, ["optim.lr_g=1e-4", "losses.pixel.type=l1"]).to_dict()
    new = load_config(None, ["optim.lr_g=2e-4", "losses.pixel={type: charbonnier, weight: 0.5}"]).to_dict()
    assert config_changes(old, new) == ["losses.pixel.type: 'l1' -> 'charbonnier'", "losses.pixel.weight: 1.0 -> 0.5",
                                        "losses.pixel.eps: (absent) -> 0.001", "optim.lr_g: 0.0001 -> 0.0002"]
    assert config_changes(new, new) == []
