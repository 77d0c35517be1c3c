"""`srgan eval`: tables, report files, models, and one-line errors for bad input."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import srgan
from srgan.cli import main
from srgan.data.degradation import benchmark_hr, degrade
from srgan.evaluation import evaluate
from srgan.evaluation import runner as evaluation_runner
from srgan.evaluation.runner import make_upscaler
from srgan.inference.cache import build_runner
from srgan.models import create
from srgan.models.weights import save_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _srgan_command() -> list[str]:
    script = Path(sys.executable).with_name("srgan")
    return [str(script)] if script.exists() else [sys.executable, "-m", "srgan"]


def _table_psnr(stdout: str, model: str) -> float:
    return float(re.search(rf"^{model}\s+([\d.]+)\s+[\d.]+", stdout, re.MULTILINE).group(1))


def test_cli_subprocess_set5_x4(shared, tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([*_srgan_command(), "eval", "--model", "bicubic", "--data", str(shared / "datasets" / "Set5"),
                           "--scale", "4", "--out", str(out)], check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "Y of BT.601" in proc.stdout and "crop = 4" in proc.stdout and "11x11 Gaussian" in proc.stdout
    assert round(_table_psnr(proc.stdout, "bicubic"), 2) == 28.42
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["image"] for r in rows] == ["baby.png", "bird.png", "butterfly.png", "head.png", "woman.png", "MEAN"]
    data = json.loads((out / "results.json").read_text())
    assert round(data["datasets"]["Set5"]["bicubic"]["psnr"], 2) == 28.42
    assert "crop = 4" in data["protocol"]
    html = (out / "report.html").read_text()
    pngs = re.findall(r'src="([^"]+\.png)"', html)
    assert len(pngs) == 3 * 3  # 3 crops (default) x (LR nearest, bicubic, HR)
    for name in pngs:
        with Image.open(out / name) as im:
            assert im.width >= 128  # zoomed, readable


def test_models_gray_images_and_niqe(shared, tmp_path, capsys):
    """A weights file and lanczos beside bicubic; a gray image goes through the model as RGB."""
    data = tmp_path / "mini"
    data.mkdir()
    with Image.open(shared / "datasets" / "Set5" / "bird.png") as im:
        im.crop((0, 0, 250, 140)).save(data / "a_rgb.png")
    with Image.open(shared / "datasets" / "Set14" / "bridge.png") as im:
        im.crop((0, 0, 250, 141)).save(data / "b_gray.png")  # not a multiple of 4: mod-cropped
    torch.manual_seed(0)
    weights = save_model(create("srresnet_x4", blocks=1, width=8), tmp_path / "tiny.safetensors")
    out = tmp_path / "out"
    code = main(["eval", "--model", "bicubic", "--model", str(weights), "--model", "lanczos", "--data", str(data),
                 "--scale", "4", "--out", str(out), "--niqe", str(shared / "weights" / "niqe_pris_params.npz"),
                 "--crops", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "NIQE" in printed and str(weights) in printed
    report = json.loads((out / "results.json").read_text())
    assert {r["model"] for r in report["images"]} == {"bicubic", str(weights), "lanczos"}
    assert all(r["niqe"] is not None and r["seconds"] >= 0 for r in report["images"])
    means = report["datasets"]["mini"]
    assert means["lanczos"]["psnr"] > means[str(weights)]["psnr"]  # an untrained net is worse than interpolation
    assert len(list(out.glob("crop_mini_b-gray_*.png"))) == 5  # LR, bicubic, model, lanczos, HR


def _mini_dataset(shared, folder):
    """A colour and a gray crop (LR 62x35 at x4: 2 x 2 tiles of 32)."""
    folder.mkdir()
    with Image.open(shared / "datasets" / "Set5" / "bird.png") as im:
        im.crop((0, 0, 250, 140)).save(folder / "a_rgb.png")
    with Image.open(shared / "datasets" / "Set14" / "bridge.png") as im:
        im.crop((0, 0, 250, 141)).save(folder / "b_gray.png")
    return folder


def _record_model_inputs(monkeypatch) -> list[tuple[tuple[int, ...], torch.dtype]]:
    """(shape, dtype) of every batch the models of `evaluate` are called with."""
    calls: list[tuple[tuple[int, ...], torch.dtype]] = []
    hooked: list = []  # the models themselves: an id() of a freed model can come back for the next one

    def spy(*args, **kwargs):
        runner = build_runner(*args, **kwargs)
        if not any(model is runner.model for model in hooked):
            hooked.append(runner.model)
            runner.model.register_forward_pre_hook(lambda _, inputs: calls.append((tuple(inputs[0].shape),
                                                                                   inputs[0].dtype)))
        return runner

    monkeypatch.setattr(evaluation_runner, "build_runner", spy)
    return calls


def test_tiled_evaluation_scores_exactly_as_the_whole_image(shared, tmp_path, capsys, monkeypatch):
    """Models run through the inference engine: with the default context (the receptive field) tiles
    give the whole-image scores, and --device/--precision/--tile reach it from the command line."""
    data = _mini_dataset(shared, tmp_path / "mini")
    calls = _record_model_inputs(monkeypatch)
    whole = evaluate(["srresnet_x4"], [data], 4, progress=False, tile=0, device="cpu")
    assert calls == [((1, 3, 35, 62), torch.float32)] * 2  # gray goes in as RGB
    calls.clear()
    tiled = evaluate(["srresnet_x4"], [data], 4, progress=False, tile=32, device="cpu")
    assert len(calls) == 2 * 4  # 2 x 2 tiles per image
    assert [r.image for r in tiled.images] == ["a_rgb.png", "b_gray.png"]
    for a, b in zip(whole.images, tiled.images, strict=True):
        assert a.image == b.image and abs(a.psnr - b.psnr) <= 1e-9 and abs(a.ssim - b.ssim) <= 1e-9
    calls.clear()
    code = main(["eval", "--model", "srresnet_x4", "--data", str(data), "--scale", "4", "--device", "cpu",
                 "--precision", "bf16", "--tile", "32"])
    assert code == 0 and len(calls) == 8 and {dtype for _, dtype in calls} == {torch.bfloat16}
    bf16 = _table_psnr(capsys.readouterr().out, "srresnet_x4")
    assert abs(bf16 - whole.summary("mini", "srresnet_x4")["psnr"]) < 0.05
    args = ["eval", "--model", "srresnet_x4", "--data", str(data), "--scale", "4", "--device", "cpu"]
    _assert_one_line_error(capsys, main([*args, "--precision", "fp16"]), "fp16")
    _assert_one_line_error(capsys, main([*args, "--tile", "big"]), "tile")


def test_models_see_gray_and_colour_images_as_srgan_upscale_does(shared, tmp_path):
    """Evaluation's SR image is `srgan.upscale`'s, pixel for pixel: gray LR replicated to RGB and the
    output averaged back to one channel, rounded to 8 bits."""
    data = _mini_dataset(shared, tmp_path / "mini")
    run = make_upscaler("srresnet_x4", 4, device="cpu", precision="fp32", tile="auto")
    for name, channels in (("a_rgb.png", 3), ("b_gray.png", 1)):
        lr = degrade(benchmark_hr(data / name, 4), 4)
        assert lr.shape[0] == channels
        array = lr.permute(1, 2, 0).numpy()
        expected = srgan.upscale(array[..., 0] if channels == 1 else array, "srresnet_x4", device="cpu",
                                 precision="fp32")
        sr = run(lr).permute(1, 2, 0).numpy()
        assert np.array_equal(sr[..., 0] if channels == 1 else sr, expected)


def test_api_results_match_direct_metrics(shared):
    results = evaluate(["bicubic", "lanczos"], [shared / "datasets" / "Set5"], 4, progress=False, crops=1)
    assert [r.image for r in results.images if r.model == "lanczos"] == sorted(
        p.name for p in (shared / "datasets" / "Set5").glob("*.png"))
    (panel,) = results.crops
    assert list(panel.tiles) == ["LR (nearest)", "bicubic", "lanczos", "HR"]
    _, _, h, w = panel.box
    assert panel.tiles["HR"].shape[-2:] == (h, w) and panel.tiles["LR (nearest)"].shape[-2:] == (h // 4, w // 4)


def _assert_one_line_error(capsys, code: int, needle: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert needle in err, err


def test_bad_input_errors(shared, tmp_path, capsys):
    set5 = str(shared / "datasets" / "Set5")
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_one_line_error(capsys, main(["eval", "--model", "bicubic", "--data", str(empty), "--scale", "4"]),
                           "no readable images")
    _assert_one_line_error(capsys, main(["eval", "--model", "bicubic", "--data", str(tmp_path / "nope"),
                                         "--scale", "4"]), "not found")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    _assert_one_line_error(capsys, main(["eval", "--model", "bicubic", "--data", str(corrupt), "--scale", "4"]),
                           "could be scored (broken.png: corrupt or truncated image")
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--model", "bicubic", "--data", set5, "--scale", "3"])
    _assert_one_line_error(capsys, exc.value.code, "invalid choice")
    _assert_one_line_error(capsys, main(["eval", "--model", "no_such_preset", "--data", set5, "--scale", "4"]),
                           "no_such_preset")
    _assert_one_line_error(capsys, main(["eval", "--model", str(tmp_path / "missing.safetensors"), "--data", set5,
                                         "--scale", "4"]), "missing.safetensors")
    x2 = save_model(create("srresnet_x2", blocks=1, width=8), tmp_path / "x2.safetensors")
    _assert_one_line_error(capsys, main(["eval", "--model", str(x2), "--data", set5, "--scale", "4"]), "x2")
    _assert_one_line_error(capsys, main(["eval", "--model", "bicubic", "--data", set5, "--scale", "4",
                                         "--niqe", str(tmp_path / "none.npz")]), "none.npz")


def test_bad_files_among_good_ones_are_skipped_with_a_warning(shared, tmp_path, capsys, caplog):
    """Images that cannot be scored are skipped, each named with its reason, and the exit code is 1
    (as `srgan upscale` on skips); other files are only mentioned, as upscale ignores them in folders."""
    data = tmp_path / "mixed"
    data.mkdir()
    shutil.copy(shared / "datasets" / "Set5" / "bird.png", data / "bird.png")
    (data / "notes.txt").write_text("not an image")
    (data / "zz_broken.png").write_bytes(b"not a png at all")
    Image.new("RGB", (16, 16)).save(data / "tiny.png")
    np.save(data / "array.npy", np.zeros(3))
    with caplog.at_level(logging.WARNING):
        code = main(["eval", "--model", "bicubic", "--data", str(data), "--scale", "4"])
    assert code == 1
    warned = caplog.text
    assert "notes.txt" in warned and "zz_broken.png" in warned and "array.npy" in warned
    assert "skipped 2 of 3 image(s)" in warned
    err = capsys.readouterr().err
    assert f"skipped {data / 'zz_broken.png'}: not an image file that can be read" in err
    assert f"skipped {data / 'tiny.png'}: 16x16 is too small for x4 evaluation" in err
    assert "notes.txt" not in err and "Traceback" not in err
    for name in ("zz_broken.png", "tiny.png"):
        (data / name).unlink()
    assert main(["eval", "--model", "bicubic", "--data", str(data), "--scale", "4"]) == 0


# ---------------------------------------------------------------- real pairs, no reference, perceptual metrics
def _paired_folders(shared, root: Path) -> tuple[Path, Path]:
    """HR crops (192x128, so NIQE has patches) and their MATLAB-bicubic LR, saved as a real pair set."""
    hr_dir, lr_dir = root / "hr", root / "lr"
    hr_dir.mkdir(parents=True)
    lr_dir.mkdir()
    for name, box in (("baby.png", (100, 150, 292, 278)), ("butterfly.png", (32, 64, 224, 192))):
        with Image.open(shared / "datasets" / "Set5" / name) as im:
            im.crop(box).save(hr_dir / name)
        lr = degrade(benchmark_hr(hr_dir / name, 4), 4)
        Image.fromarray(lr.permute(1, 2, 0).numpy()).save(lr_dir / name)
    return lr_dir, hr_dir


def test_paired_evaluation_with_every_metric(shared, tmp_path, capsys):
    """Given LR images paired by name with HR: all five metrics per image in results.csv, their means
    in results.json, crops in the report; with the classic crop the PSNR/SSIM are the classic protocol's."""
    lr_dir, hr_dir = _paired_folders(shared, tmp_path)
    out = tmp_path / "report"
    code = main(["eval", "--model", "srgan_x4", "--lr", str(lr_dir), "--data", str(hr_dir), "--scale", "4",
                 "--metrics", "psnr,ssim,lpips,dists,niqe", "--metric-weights", str(shared / "weights"),
                 "--out", str(out), "--crops", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "paired with the HR by file name" in printed and "crop = 0" in printed and "LPIPS" in printed
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["image"] for r in rows] == ["baby.png", "butterfly.png", "MEAN"]
    assert list(rows[0]) == ["dataset", "model", "image", "psnr_y", "ssim_y", "lpips", "dists", "niqe", "seconds"]
    assert all(float(r[k]) > 0 for r in rows for k in ("lpips", "dists", "niqe"))
    data = json.loads((out / "results.json").read_text())
    means = data["datasets"]["hr"]["srgan_x4"]
    assert data["mode"] == "paired" and data["crop"] == 0
    for key, column in (("psnr", "psnr_y"), ("lpips", "lpips"), ("dists", "dists")):
        assert means[key] == pytest.approx(np.mean([float(r[column]) for r in rows[:2]]), abs=1e-6)
    assert 0 < means["lpips"] < 0.5 and 0 < means["dists"] < 0.4
    assert len(re.findall(r'src="([^"]+\.png)"', (out / "report.html").read_text())) == 4  # LR, bicubic, model, HR
    paired = evaluate(["bicubic"], [hr_dir], 4, lr_folders=[lr_dir], metrics="psnr,ssim", crop=4, progress=False)
    classic = evaluate(["bicubic"], [hr_dir], 4, metrics=["psnr", "ssim"], progress=False)
    assert [(r.psnr, r.ssim) for r in paired.images] == [(r.psnr, r.ssim) for r in classic.images]


def test_no_reference_evaluation_of_realsrset(shared, tmp_path, capsys):
    """LR images without HR: NIQE (shipped parameters, no argument) and the output's statistics."""
    out = tmp_path / "report"
    code = main(["eval", "--model", "bicubic", "--lr", str(shared / "datasets" / "RealSRSet"), "--scale", "2",
                 "--metrics", "niqe", "--out", str(out), "--crops", "1"])
    assert code == 0
    assert "no reference" in capsys.readouterr().out
    data = json.loads((out / "results.json").read_text())
    assert data["metrics"] == ["niqe"] and len(data["images"]) == 20
    first = data["images"][0]
    assert first["image"] == "Lincoln.png" and first["width"] == 320 and 0 < first["std"] < 128 and first["niqe"] > 0
    assert 3 < data["datasets"]["RealSRSet"]["bicubic"]["niqe"] < 15
    assert len(list(out.glob("crop_*.png"))) == 2  # LR (nearest) and bicubic: no HR


def test_niqe_flag_uses_the_shipped_parameters(shared, tmp_path):
    data = _mini_dataset(shared, tmp_path / "mini")
    given = evaluate(["bicubic"], [data], 4, metrics="psnr", niqe_model=shared / "weights" / "niqe_pris_params.npz",
                     progress=False)
    shipped = evaluate(["bicubic"], [data], 4, metrics="psnr,niqe", progress=False)
    assert given.metrics == shipped.metrics == ["psnr", "niqe"]
    for a, b in zip(given.images, shipped.images, strict=True):
        assert a.niqe == pytest.approx(b.niqe, abs=1e-6)


def test_bad_paired_and_metric_input_is_one_line_exit_2(shared, tmp_path, capsys, monkeypatch):
    lr_dir, hr_dir = _paired_folders(shared, tmp_path)
    base = ["eval", "--model", "bicubic", "--scale", "4"]
    (lr_dir / "butterfly.png").rename(tmp_path / "moved.png")
    code = main([*base, "--lr", str(lr_dir), "--data", str(hr_dir)])
    assert code == 2
    _assert_one_line_error(capsys, code, "HR image(s) of")
    (tmp_path / "moved.png").rename(lr_dir / "butterfly.png")
    with Image.open(hr_dir / "baby.png") as im:
        im.crop((0, 0, im.width - 1, im.height)).save(hr_dir / "baby.png")  # not 4 x the LR
    code = main([*base, "--lr", str(lr_dir), "--data", str(hr_dir)])
    assert code == 2
    _assert_one_line_error(capsys, code, "x4 needs HR 192x128")
    monkeypatch.delenv("SRGAN_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    set5 = str(shared / "datasets" / "Set5")
    code = main([*base, "--data", set5, "--metrics", "psnr,lpips"])
    assert code == 2
    _assert_one_line_error(capsys, code, "lpips_alex.safetensors")
    for args, needle in ((["--data", set5, "--metrics", "psnr,fid"], "unknown metric 'fid'"),
                         (["--lr", str(lr_dir), "--metrics", "psnr"], "psnr need HR images"),
                         (["--data", set5, "--crop", "-1"], "crop must be >= 0"),
                         (["--lr", str(lr_dir), "--lr", set5, "--data", set5], "pair folders in order")):
        code = main([*base, *args])
        assert code == 2
        _assert_one_line_error(capsys, code, needle)
    default = evaluate(["bicubic"], [set5], 4, progress=False)  # without weights: what applies and is present
    assert default.metrics == ["psnr", "ssim", "niqe"]
