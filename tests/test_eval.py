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

from srgan.cli import main
from srgan.evaluation import evaluate
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
                           "no readable images")
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
    data = tmp_path / "mixed"
    data.mkdir()
    shutil.copy(shared / "datasets" / "Set5" / "bird.png", data / "bird.png")
    (data / "notes.txt").write_text("not an image")
    (data / "zz_broken.png").write_bytes(b"not a png at all")
    np.save(data / "array.npy", np.zeros(3))
    with caplog.at_level(logging.WARNING):
        code = main(["eval", "--model", "bicubic", "--data", str(data), "--scale", "4"])
    assert code == 0
    warned = caplog.text
    assert "notes.txt" in warned and "zz_broken.png" in warned and "array.npy" in warned
    assert "skipped 3 of 4" in warned
    assert "skipped 3 file(s)" in capsys.readouterr().err
