"""The study configs (configs/study/, STUDY.md): `base:` inheritance, every entry loads, builds and
trains two steps on a tiny crop, and every starting point is a shipped file or another entry's output."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from test_training import SMALL

from srgan.cli import main
from srgan.errors import SrganError
from srgan.training.config import load_config

ROOT = Path(__file__).resolve().parents[1]
STUDY = sorted((ROOT / "configs" / "study").glob("*.yaml"))


def _study_tool():
    spec = importlib.util.spec_from_file_location("study_tool", ROOT / "tools" / "study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_base_overlays_sections_replaces_typed_mappings_and_clears_with_null(tmp_path):
    _write(tmp_path, "parent.yaml", "model: {preset: srresnet_x2, generator: {blocks: 4}}\n"
                                    "discriminator: {type: vgg, width: 16}\n"
                                    "losses: {pixel: {type: mse}, adversarial: {type: bce, weight: 1.0e-3}}\n"
                                    "train: {iterations: 50, seed: 3}\n")
    mid = _write(tmp_path, "mid.yaml", "base: parent.yaml\nmodel: {generator: {width: 8}}\ntrain: {seed: 4}\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    child = _write(sub, "child.yaml", "base: ../mid.yaml\ndiscriminator: {type: fft}\n"
                                      "losses: {pixel: null, ssim: {type: ssim}, adversarial: {weight: 0.5}}\n")
    config = load_config(child)
    assert config.name == "child" and config.model.preset == "srresnet_x2"
    assert config.model.generator == {"blocks": 4, "width": 8}  # merged key by key, through two files
    assert config.train.iterations == 50 and config.train.seed == 4
    assert config.discriminator["type"] == "fft" and "width" not in config.discriminator  # typed: replaced whole
    assert set(config.losses) == {"ssim", "adversarial"}  # null removed the pixel term
    assert config.losses["adversarial"] == {"type": "bce", "weight": 0.5, "real_label": 1.0}
    assert load_config(mid).losses["pixel"]["type"] == "mse"
    assert load_config(child, ["train.seed=9"]).train.seed == 9  # overrides apply after the merge


@pytest.mark.parametrize("text, words", [("base: self.yaml\n", "loops back"), ("base: missing.yaml\n", "base: .*missing.yaml"),
                                         ("base: [a, b]\n", "expected the path")])
def test_bad_base_is_one_line(tmp_path, text, words):
    path = _write(tmp_path, "self.yaml", text)
    with pytest.raises(SrganError, match=words) as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_every_study_entry_starts_from_a_shipped_file_or_another_entry():
    tool = _study_tool()
    names = {p.stem for p in STUDY}
    assert {"baseline_x4", "baseline_x4_seed1", "rgan_x4", "pad_reflect_x4", "gan8t_x4"} <= names
    for path in STUDY:
        for dependency in tool.dependencies(path.stem):
            assert dependency in names
        for start in tool.starting_files(path.stem):
            assert start.startswith("runs/study/") or (ROOT / start).is_file(), (path.stem, start)
        assert tool.order(path.stem)[-1] == path.stem  # acyclic: its dependencies come first


def test_the_sweep_spans_claim_2s_range_for_both_discriminators():
    shares = {}
    for path in STUDY:
        config = load_config(path)
        if config.gan and list(config.losses) == ["pixel", "adversarial"] and config.model.preset == "srresnet_nobn_x4":
            key = config.discriminator["type"]
            shares.setdefault(key, set()).add(round(config.losses["adversarial"]["weight"] * 0.6931 / 0.00396, 2))
    for kind in ("vgg", "fft"):
        assert len(shares[kind]) >= 4 and min(shares[kind]) <= 0.04 and max(shares[kind]) >= 0.5, shares


@pytest.mark.parametrize("path", STUDY, ids=lambda p: p.stem)
def test_study_config_trains_two_steps(path, shared, vgg_weights, tmp_path):
    config = load_config(path)
    small = [*SMALL, "train.iterations=2", "recursive.stage1_weights=null", f"data.folders={shared / 'datasets' / 'T91'}"]
    kind = (config.discriminator or {}).get("type")
    small += {"vgg": ["discriminator.width=8", "discriminator.dense=16"],
              "fft": ["discriminator.grid=8", "discriminator.hidden=16"]}.get(kind, [])
    if "perceptual" in config.losses:
        small.append(f"losses.perceptual.weights_path={vgg_weights}")
    assert main(["train", "-c", str(path), *small, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "generator.safetensors").is_file()


def test_scorer_measures_nothing_for_the_hr_itself_and_something_for_a_blurred_copy(shared):
    from srgan.data.degradation import benchmark_hr, degrade
    from srgan.evaluation.runner import bicubic_upscaler

    tool = _study_tool()
    hr = benchmark_hr(shared / "datasets" / "Set5" / "head.png", 4)[:, :96, :96]
    scorer = tool.Scorer()
    same = scorer(hr, hr, 4)
    assert same["mse"] == 0 and same["lpips"] == pytest.approx(0, abs=1e-6) and same["ssim"] == pytest.approx(1)
    blurred = scorer(bicubic_upscaler(4)(degrade(hr, 4)), hr, 4)
    assert blurred["mse"] > 10 and blurred["lpips"] > 0.05 and blurred["dists"] > 0.05 and blurred["psnr"] < 40


def test_report_tables_mark_what_is_not_run_yet():
    tool = _study_tool()
    rows = {"a": {"Set5": {"psnr": 30.0, "ssim": 0.9, "mse": 60.0}}, "b": None}
    lines = tool.table(rows, ["Set5"])
    assert lines[2].startswith("| a | Set5 | 30.00 | 0.9000 | 60.0 |") and "pending run" in lines[3]
    spread = tool.spread({"Set5": {"psnr": 30.0}}, {"Set5": {"psnr": 29.75}}, ["Set5"])
    assert spread == {"Set5": {"psnr": 0.25}}
