"""Issue 28, the second hardening round: ONNX files, weight files, manifests, concurrent runs and
the flags that landed since issue 9, tried as a careless or hostile user would. Every case asserts
the documented exit code, one line naming the file, no traceback, no crash (ONNX cases run in a
subprocess, so a runtime's SIGSEGV would show as a negative return code), no hang (a timeout),
nothing written that should not be, and the finished outputs kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import srgan
from srgan.cli import main
from srgan.errors import SrganError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
RNG = np.random.default_rng(28)


def _png(path: Path, h: int = 10, w: int = 12) -> Path:
    Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _error(capsys, *argv: str, code: int = 2) -> str:
    """The one-line error of a command that must fail with `code` (in this process)."""
    got = main(list(argv))
    out, err = capsys.readouterr()
    assert got == code, (out, err)
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1 and err.startswith("srgan: error"), err
    return err.strip()


def _cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`srgan ARGV` in a subprocess: a crash is a negative return code, not a dead test run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "srgan", *argv], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def _one_line(done: subprocess.CompletedProcess, code: int = 2) -> str:
    assert done.returncode == code, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("srgan: error"), done.stderr
    return lines[0]


# ---------------------------------------------------------------- ONNX: srgan's own export on any size
def test_default_export_of_srresnet_x4_upscales_an_image_of_any_size(tmp_path, capsys):
    """The issue's case: `export --onnx` with no other flag, then `upscale --model m.onnx` on an odd size."""
    model = tmp_path / "m.onnx"
    assert main(["export", "--model", "srresnet_x4", "--onnx", str(model)]) == 0
    assert "dynamic shape" in capsys.readouterr().out
    photo = _png(tmp_path / "photo.png", 37, 29)
    assert main(["upscale", str(photo), "--model", str(model), "--backend", "onnxruntime"]) == 0
    got = np.asarray(Image.open(tmp_path / "photo_x4.png")).astype(int)
    assert main(["upscale", str(photo), "--model", "srresnet_x4", "-o", str(tmp_path / "torch.png")]) == 0
    assert got.shape == (148, 116, 3)
    assert np.abs(got - np.asarray(Image.open(tmp_path / "torch.png")).astype(int)).max() <= 1


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_fixed_shape_export_runs_in_windows_of_its_size_exactly(tmp_path, tiny_weights, backend):
    pytest.importorskip(backend)
    from srgan.inference.cache import build_runner

    model = tmp_path / "fixed.onnx"
    assert main(["export", "--model", tiny_weights, "--onnx", str(model), "--size", "32", "40"]) == 0
    runner = build_runner(str(model), backend=backend, precision="fp32")
    image = torch.rand(3, 50, 45)
    with torch.no_grad():
        expected = srgan.load_model(tiny_weights)(image[None])[0]
    got = runner(image, tile=None, tile_pad=None)
    assert got.shape == expected.shape and (got - expected).abs().max() < 1e-4
    assert runner(image[:, :9, :11], tile=None, tile_pad=None).shape == (3, 36, 44)  # smaller than the window


def test_fixed_shape_model_too_small_for_its_context_says_so(tmp_path, tiny_weights, capsys):
    model = tmp_path / "fixed.onnx"
    assert main(["export", "--model", tiny_weights, "--onnx", str(model), "--size", "16", "16"]) == 0
    capsys.readouterr()
    line = _error(capsys, "upscale", str(_png(tmp_path / "a.png", 40, 40)), "--model", str(model),
                  "--backend", "onnxruntime")
    assert "too small" in line and "dynamic shape" in line
    assert not (tmp_path / "a_x4.png").exists()


# ---------------------------------------------------------------- ONNX: hostile and damaged files
def _onnx_cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    from onnx_graphs import expanding_graph, srgan_metadata, upscaling_graph

    garbage = tmp / "garbage.onnx"
    garbage.write_bytes(bytes(range(256)) * 8)
    cases = {"expands to 100000x100000": (expanding_graph(tmp / "bomb.onnx"), "over the memory budget"),
             "garbage bytes": (garbage, "not an ONNX model")}
    for name, change, needle in [("scale abc", {"scale": "abc"}, "scale must be a whole number"),
                                 ("config not JSON", {"srgan_config": "{oops"}, "srgan_config is not JSON"),
                                 ("config a list", {"srgan_config": "[1, 2]"}, "not a JSON mapping"),
                                 ("input multiple 0", {"srgan_input_multiple": "0"}, "srgan_input_multiple must"),
                                 ("context a string", {"srgan_context": '"wide"'}, "srgan_context must"),
                                 ("precision", {"srgan_precision": "int4"}, "fp32 or int8"),
                                 ("scale against config", {"scale": "2"}, "the config says 4"),
                                 ("huge value", {"srgan_config": "[" * 100_000}, "longer than")]:
        cases[name] = (upscaling_graph(tmp / f"{name.replace(' ', '_')}.onnx", srgan_metadata(**change)), needle)
    return cases


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_hostile_or_damaged_onnx_files_are_one_line_without_a_crash(tmp_path, backend):
    pytest.importorskip(backend)
    photo = _png(tmp_path / "photo.png")
    cases = _onnx_cases(tmp_path)
    script = ("import sys\nfrom srgan.cli import main\ncodes = []\n"
              "for model in sys.argv[2:]:\n"
              "    codes.append(main(['upscale', sys.argv[1], '--model', model, '--backend', '" + backend + "']))\n"
              "print(codes)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script, str(photo), *(str(p) for p, _ in cases.values())],
                          capture_output=True, text=True, env=env, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]  # a SIGSEGV would be -11
    assert json.loads(done.stdout.strip()) == [2] * len(cases)
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and len(lines) == len(cases), done.stderr
    for line, (name, (path, needle)) in zip(lines, cases.items()):
        assert line.startswith(f"srgan: error: {path}") and needle in line, (name, line)
        assert "\\x" not in line, line  # no raw bytes echoed
    assert not (tmp_path / "photo_x4.png").exists()


def test_runtime_failure_and_wrong_input_size_are_one_line(tmp_path, tiny_weights):
    from srgan.inference.onnx_backend import OnnxRunner

    model = tmp_path / "fixed.onnx"
    assert main(["export", "--model", tiny_weights, "--onnx", str(model), "--size", "32", "32"]) == 0
    runner = OnnxRunner(model)
    with pytest.raises(SrganError, match=r"takes only 1x3x32x32 inputs, got 1x3x40x40"):
        runner(torch.rand(1, 3, 40, 40))

    def broken(array):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION :\nNon-zero status code\n  in Conv")

    runner._run = broken
    with pytest.raises(SrganError) as caught:
        runner(torch.rand(1, 3, 32, 32))
    assert "the model failed on a 32x32 input" in str(caught.value) and "\n" not in str(caught.value)
