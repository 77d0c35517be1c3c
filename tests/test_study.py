"""The study configs (configs/study/, STUDY.md): `base:` inheritance, every entry loads, builds and
trains two steps on a tiny crop, and every starting point is a shipped file or another entry's output;
tools/study.py's state kept in git (save, restore, resume), its committed scores and its crops."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from test_training import SMALL
from tool_scripts import load_tool

from srgan.cli import main
from srgan.errors import SrganError
from srgan.training.config import load_config

ROOT = Path(__file__).resolve().parents[1]
STUDY = sorted((ROOT / "configs" / "study").glob("*.yaml"))


def _study_tool():
    return load_tool("study")


@pytest.fixture
def study(tmp_path, monkeypatch):
    """The tool with its run folders (runs/study, relative), committed state and docs under tmp_path."""
    tool = _study_tool()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tool, "STATE", tmp_path / "training" / "resume" / "study")
    monkeypatch.setattr(tool, "DOCS", tmp_path / "docs" / "study")
    return tool


def _train_tiny(shared: Path, name: str) -> Path:
    """Two steps of the entry on a 1-block, width-8 generator, a checkpoint after each, as `run` would."""
    out = Path("runs/study") / name
    small = [*SMALL, "train.iterations=2", "train.checkpoint_every=1", f"data.folders={shared / 'datasets' / 'T91'}"]
    assert main(["train", "-c", str(ROOT / "configs" / "study" / f"{name}.yaml"), *small, "--out", str(out)]) == 0
    return out


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
    assert same["shift"] == 0 and blurred["shift"] < 2  # a blur keeps each channel's mean
    tinted = hr.clone()
    tinted[0] = hr[0].clamp(max=240) + 12  # red up by 12 levels where it can be
    assert scorer(tinted, hr, 4)["shift"] == pytest.approx(12 - float((hr[0].double() - 240).clamp(min=0)[4:-4, 4:-4].mean()))


def test_report_tables_mark_what_is_not_run_yet():
    tool = _study_tool()
    rows = {"a": {"Set5": {"psnr": 30.0, "ssim": 0.9, "mse": 60.0}}, "b": None}
    lines = tool.table(rows, ["Set5"])
    assert lines[2].startswith("| a | Set5 | 30.00 | 0.9000 | 60.0 |") and "pending run" in lines[3]
    spread = tool.spread({"Set5": {"psnr": 30.0}}, {"Set5": {"psnr": 29.75}}, ["Set5"])
    assert spread == {"Set5": {"psnr": 0.25}}


def test_save_keeps_a_running_entry_compact_a_dependency_fp16_and_drops_a_trained_entry_s_resume_state(study, shared):
    from safetensors import safe_open

    import srgan
    from srgan.runfiles.resume_state import load_resume_state

    trained = _train_tiny(shared, "pretrain16_x4")  # every x4 GAN entry starts from it
    _train_tiny(shared, "pad_reflect_x4")  # nothing starts from it
    running = _train_tiny(shared, "pretrain20_x4")
    (running / "generator.safetensors").unlink()  # stopped before its end: checkpoints only
    with (running / "train.log").open("a") as log:
        log.write("2026-01-01 00:00:00,000 INFO validation at iteration 500 (x4):\n  mean     30.00   0.9000\n")
    curve = study.DOCS / "curves" / "pretrain20_x4.csv"
    curve.parent.mkdir(parents=True)
    curve.write_text("iteration,psnr_y,ssim_y\n250,29.00,0.8800\n")  # an earlier session's point
    study.STATE.mkdir(parents=True)
    for name in ("pretrain16_x4", "pad_reflect_x4"):  # left by the sessions that trained them
        (study.STATE / f"{name}.resume.safetensors").write_bytes(b"earlier")
    study.save()
    saved = {p.name: p.read_bytes() for p in study.STATE.iterdir()}
    assert sorted(saved) == ["pretrain16_x4.safetensors", "pretrain20_x4.resume.safetensors"]
    study.save()
    assert {p.name: p.read_bytes() for p in study.STATE.iterdir()} == saved  # nothing new: git sees no change
    state = load_resume_state(study.STATE / "pretrain20_x4.resume.safetensors")
    assert state["iteration"] == 2 and state["config"]["model"]["generator"]["blocks"] == 1
    assert curve.read_text() == "iteration,psnr_y,ssim_y\n250,29.00,0.8800\n500,30.00,0.9000\n"
    logged = [dict(pair.split("=") for pair in line.split(" it/s ")[1].split())  # the terms of each progress line
              for line in (running / "train.log").read_text().splitlines() if " iter " in line]
    assert (study.DOCS / "curves" / "pretrain20_x4.terms.csv").read_text().splitlines() == [
        "iteration,pixel,g", *(f"{i},{float(t['pixel']):.4g},{float(t['g']):.4g}" for i, t in enumerate(logged, 1))]
    with safe_open(str(study.STATE / "pretrain16_x4.safetensors"), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}  # noqa: SIM118
    final, run = (srgan.load_model(p) for p in (study.STATE / "pretrain16_x4.safetensors", trained / "generator.safetensors"))
    lr = torch.rand(1, 3, 8, 8)
    assert torch.allclose(final(lr), run(lr), atol=2e-3) and not torch.equal(final(lr), run(lr))
    assert study.state("pretrain20_x4") == "at iteration 2"


def test_run_restores_a_dependency_from_its_committed_final_and_its_dependents_start_from_it(study, shared, monkeypatch):
    _train_tiny(shared, "pretrain16_x4")
    study.save()
    shutil.rmtree("runs")  # a new machine: only the repository
    assert study.state("pretrain16_x4") == "trained"
    with monkeypatch.context() as patch:
        patch.setattr(study.subprocess, "run", lambda *_, **__: pytest.fail("trained instead of restored"))
        study.train("pretrain16_x4", fresh=False)
    restored, final = Path("runs/study/pretrain16_x4/generator.safetensors"), study.STATE / "pretrain16_x4.safetensors"
    assert restored.read_bytes() == final.read_bytes()
    before = final.read_bytes()
    study.save()
    assert final.read_bytes() == before  # a restored final is not written again
    with_init = [s for s in SMALL if s != "model.init=null"]  # model.init: runs/study/pretrain16_x4/generator.safetensors
    assert main(["train", "-c", str(ROOT / "configs" / "study" / "baseline_x4.yaml"), *with_init, "train.iterations=1",
                 f"data.folders={shared / 'datasets' / 'T91'}", "discriminator.width=8", "discriminator.dense=16",
                 "--out", "runs/study/baseline_x4"]) == 0


def test_run_resumes_from_the_committed_state_only_without_checkpoints(study, shared, monkeypatch):
    (_train_tiny(shared, "pretrain20_x4") / "generator.safetensors").unlink()
    study.save()
    shutil.rmtree("runs")
    assert study.state("pretrain20_x4") == "at iteration 2 (committed state)"
    commands = []
    monkeypatch.setattr(study.subprocess, "run",
                        lambda command, **_: commands.append(command) or subprocess.CompletedProcess(command, 0))
    study.train("pretrain20_x4", fresh=False)
    assert commands[-1][-2:] == ["--resume", str(study.STATE / "pretrain20_x4.resume.safetensors")]
    checkpoint = Path("runs/study/pretrain20_x4/checkpoints/ckpt_000000003.pt")  # this machine's run went on
    checkpoint.parent.mkdir(parents=True)
    checkpoint.touch()
    study.train("pretrain20_x4", fresh=False)
    assert commands[-1][-2:] == ["--resume", "auto"]


def test_a_run_past_its_length_ends_at_the_checkpoint_of_that_length(study, shared, monkeypatch):
    import srgan
    from srgan.models.weights import read_metadata

    run = _train_tiny(shared, "pretrain16_x4")  # the pilot: trained and scored past the budget chosen after it
    scores = study.committed("pretrain16_x4")["scores"]
    scores.parent.mkdir(parents=True)
    scores.write_text("{}")
    monkeypatch.setattr(study.load("pretrain16_x4").train, "iterations", 1)
    monkeypatch.setattr(study.subprocess, "run", lambda *_, **__: pytest.fail("trained instead of cut"))
    study.train("pretrain16_x4", fresh=False)
    cut = run / "generator.safetensors"
    assert read_metadata(cut)["iterations"] == 1 and not scores.exists()
    first, last, model = (srgan.load_model(p).state_dict() for p in (run / "checkpoints" / "ckpt_000000001.pt",
                                                                      run / "checkpoints" / "ckpt_000000002.pt", cut))
    assert all(torch.equal(model[k], first[k]) for k in first) and not all(torch.equal(model[k], last[k]) for k in last)
    (run / "checkpoints" / "ckpt_000000001.pt").unlink()
    cut.unlink()
    with pytest.raises(SystemExit, match="no checkpoint at its length 1"):
        study.train("pretrain16_x4", fresh=False)


def test_report_and_list_read_the_committed_scores(study, capsys):
    scores = {"Set5": {"psnr": 31.5, "ssim": 0.88, "mse": 70.0, "lpips": 0.2, "dists": 0.15, "niqe": 7.0, "images": {}}}
    (study.DOCS / "runs").mkdir(parents=True)
    (study.DOCS / "runs" / "pretrain16_x4.json").write_text(json.dumps(scores))
    study.report(["Set5"])
    assert "| pretrain16_x4 | Set5 | 31.50 | 0.8800 | 70.0 | 0.2000 | 0.1500 | 7.00 |" in capsys.readouterr().out
    assert study.state("pretrain16_x4") == "trained, scored on Set5"


def test_crops_are_the_fixed_regions_of_the_output_side_by_side(study, shared):
    from PIL import Image

    from srgan.evaluation.runner import bicubic_upscaler

    study.save_crops("baseline_x2", 2, bicubic_upscaler(2))
    strip = np.asarray(Image.open(study.DOCS / "crops" / "baseline_x2.png"), dtype=np.float64)
    size = study.CROP
    assert strip.shape == (size, len(study.REGIONS) * size, 3)
    hr = study.regions(None, 2).permute(1, 2, 0).numpy().astype(np.float64)
    error = [[np.abs(strip[:, i * size:(i + 1) * size] - hr[:, j * size:(j + 1) * size]).mean()
              for j in range(len(study.REGIONS))] for i in range(len(study.REGIONS))]
    for i, row in enumerate(error):  # each tile is its own region upscaled, far closer to it than to the others
        assert row[i] < 20 and 3 * row[i] < min(row[:i] + row[i + 1:]), error
    sheet = study.claim_picture(study.CLAIMS["Claim 1 (002) x2"], study.to_image(study.regions(None, 4)))
    assert sheet.size == (3 * (2 * size + 4) - 4, len(study.REGIONS) * (2 * size + 14 + 4) - 4)  # HR, bicubic, it


def test_seam_picture_is_black_beside_a_pointwise_model_and_lights_the_tile_border_of_a_3x3_one(study, shared):
    size, zoom = study.CROP, 2
    pointwise = torch.nn.Sequential(torch.nn.Conv2d(3, 48, 1), torch.nn.PixelShuffle(4)).eval()
    spatial = torch.nn.Sequential(torch.nn.Conv2d(3, 48, 3, padding=1), torch.nn.PixelShuffle(4)).eval()
    pointwise.context, spatial.context = (lambda: 0), (lambda: 1)  # LR pixels each looks past its own
    sheet = np.asarray(study.seam_picture({"pointwise": pointwise, "3x3": spatial}), dtype=np.float64)
    tile_h, tile_w = zoom * size + 14, zoom * size
    assert sheet.shape == (2 * (tile_h + 4) - 4, 2 * len(study.SEAM_IMAGES) * (tile_w + 4) - 4, 3)

    def difference(row: int) -> np.ndarray:  # the first image's |no context - exact| tile, without its label
        top, left = row * (tile_h + 4) + 14, tile_w + 4
        return sheet[top:top + zoom * size, left:left + tile_w].mean(-1)

    assert difference(0).max() == 0  # no context needed: no seam
    spatial_difference = difference(1)  # a one-pixel receptive field past the border: only there
    border = zoom * size // 2  # the crop is centred on the tile corner
    assert spatial_difference[:, border - 8:border + 8].mean() > 10 * spatial_difference[:, :border - 16].mean() + 1
