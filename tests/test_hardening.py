"""Issue 9: no traceback, no lost data and no denial of service from any file, folder, signal or
setting a user or an attacker can give. Every case asserts the exit code, a one-line message naming
the file, no traceback, no leftover file and untouched inputs. Tests run as root here, where chmod
does not stop writes: write failures are provoked by patching the writer or by a path under a file."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import srgan
from srgan import files
from srgan.cli import main, parse_args
from srgan.errors import SrganError, SrganTypeError
from srgan.imaging import io as image_io

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(9)


def _png(path: Path, h: int = 10, w: int = 12) -> Path:
    Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def _error(capsys, *argv: str, code: int = 2) -> str:
    """The one-line error of a command that must fail with `code`."""
    got, out, err = _run(capsys, *argv)
    assert got == code, (out, err)
    lines = [line for line in err.strip().splitlines() if line.startswith("srgan: error")]
    assert len(lines) == 1 and len(err.strip().splitlines()) == 1, err
    return lines[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_temps(folder: Path) -> bool:
    return not [p for p in folder.rglob("*.tmp")]


def _edited(source: str, target: Path, **config_changes) -> Path:
    """`source` (an srgan .safetensors) with its metadata's config edited."""
    with safe_open(source, "pt") as f:
        meta = f.metadata()
    config = json.loads(meta["config"])
    config.update(config_changes)
    save_file(load_file(source), str(target), metadata={**meta, "config": json.dumps(config)})
    return target


# ---------------------------------------------------------------- weights: denial of service and damage
@pytest.mark.parametrize("change, needle", [({"blocks": 10_000_000}, "blocks must be a positive integer up to"),
                                            ({"width": 100_000}, "width must be a positive integer up to"),
                                            ({"blocks": 200}, "do not fit"), ({"head_kernel": 10_001}, "head_kernel")])
def test_weights_header_asking_for_a_huge_network_is_refused_before_building_it(tmp_path, capsys, tiny_weights,
                                                                                 change, needle):
    bad = _edited(tiny_weights, tmp_path / "bad.safetensors", **change)
    image = _png(tmp_path / "a.png")
    before = _snapshot(tmp_path)
    start = time.perf_counter()
    line = _error(capsys, "upscale", str(image), "--model", str(bad))
    assert time.perf_counter() - start < 10  # 10 million blocks used to grow to 22 GB before the OOM killer
    assert str(bad) in line and needle in line
    assert _snapshot(tmp_path) == before


def test_tiny_file_with_a_huge_network_in_its_metadata(tmp_path):
    """The issue's 388-byte file: one small tensor, metadata asking for 10 million blocks."""
    path = tmp_path / "tiny.safetensors"
    config = {"scale": 4, "blocks": 10_000_000, "width": 64}
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "srgan-generator-1", "architecture": '"srresnet"',
                                                          "config": json.dumps(config)})
    assert path.stat().st_size < 400
    with pytest.raises(SrganError, match=f"{path}: blocks must be"):
        srgan.load_model(path)


@pytest.mark.parametrize("meta, needle", [({"config": "{not json"}, "'config' is not a JSON mapping"),
                                          ({"architecture": "[1, 2]"}, "architecture [1, 2] is not a name"),
                                          ({"config": json.dumps({"scale": 4, "blocks": "abc"})}, "blocks: expected int")])
def test_damaged_srgan_metadata_is_one_line(tmp_path, tiny_weights, meta, needle):
    with safe_open(tiny_weights, "pt") as f:
        header = f.metadata()
    path = tmp_path / "damaged.safetensors"
    save_file(load_file(tiny_weights), str(path), metadata={**header, **meta})
    with pytest.raises(SrganError, match=str(path)) as caught:
        srgan.load_model(path)
    assert needle in str(caught.value)


def test_weights_holding_nan_are_refused_naming_the_tensor(tmp_path, capsys, tiny_weights):
    state = load_file(tiny_weights)
    with safe_open(tiny_weights, "pt") as f:
        header = f.metadata()
    name = min(k for k, v in state.items() if v.is_floating_point())
    state[name].view(-1)[0] = float("nan")
    bad = tmp_path / "nan.safetensors"
    save_file(state, str(bad), metadata=header)
    image = _png(tmp_path / "a.png")
    line = _error(capsys, "upscale", str(image), "--model", str(bad))
    assert str(bad) in line and f"tensor {name} holds" in line and "NaN" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "nan.safetensors"]  # no black image


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unsafe_pth_is_refused_in_one_line_without_torch_advice(tmp_path, capsys):
    evil = tmp_path / "evil.pth"
    torch.save({"params": {"w": torch.zeros(1)}, "x": _Evil()}, evil)
    image = _png(tmp_path / "a.png")
    for argv in (["upscale", str(image), "--model", str(evil)], ["train", "--resume", str(evil), "-c",
                                                                  str(ROOT / "configs" / "tiny.yaml"),
                                                                  "--out", str(tmp_path / "run")]):
        line = _error(capsys, *argv)
        assert str(evil) in line and "refused" in line and "posix.system" in line
        assert "\x1b[" not in line and "weights_only=False" not in line.replace(" ", "")
    assert not (tmp_path / "a_x4.png").exists()


def test_folder_or_fifo_as_model_or_input_is_named_for_what_it_is(tmp_path, capsys, tiny_weights):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    image = _png(tmp_path / "a.png")
    assert "is a FIFO (named pipe), not a weights file" in _error(capsys, "upscale", str(image), "--model", str(fifo))
    assert "is a folder, not a weights file" in _error(capsys, "upscale", str(image), "--model", str(folder))
    line = _error(capsys, "upscale", str(fifo), "--model", tiny_weights)  # must not block reading the pipe
    assert str(fifo) in line and "FIFO" in line
    line = _error(capsys, "train", "-c", str(fifo))
    assert str(fifo) in line and "FIFO" in line


# ---------------------------------------------------------------- outputs that cannot be written
def _failing_save(monkeypatch, error: OSError, fail: set[str]):
    """Make the image writer raise `error` for outputs whose name is in `fail` (after writing part of them)."""
    real = image_io._save

    def save(target, image, fmt, quality, strip_metadata, path):
        if Path(path).name in fail:
            with open(target, "wb") as f:
                f.write(b"\x89PNG partial")
            raise error
        return real(target, image, fmt, quality, strip_metadata, path)

    monkeypatch.setattr(image_io, "_save", save)


@pytest.mark.parametrize("error, reason", [(PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
                                           (OSError(errno.ENOSPC, "No space left on device"), "No space left on device")])
def test_write_failure_skips_that_file_and_the_batch_goes_on(tmp_path, capsys, tiny_weights, monkeypatch, error, reason):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        _png(inputs / name)
    before = _snapshot(inputs)
    _failing_save(monkeypatch, error, {"a_x4.png"})
    code, out, _ = _run(capsys, "upscale", str(inputs), "--model", tiny_weights, "-o", str(tmp_path / "out"))
    assert code == 1
    assert f"skipped {inputs / 'a.png'}: {tmp_path / 'out' / 'a_x4.png'}: cannot write ({reason})" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b_x4.png", "c_x4.png"]  # later files tried
    assert _no_temps(tmp_path) and _snapshot(inputs) == before


def test_write_failure_of_a_single_file_is_one_line(tmp_path, capsys, tiny_weights, monkeypatch):
    image = _png(tmp_path / "a.png")
    _failing_save(monkeypatch, OSError(errno.EROFS, "Read-only file system"), {"a_x4.png"})
    line = _error(capsys, "upscale", str(image), "--model", tiny_weights)
    assert line == f"srgan: error: {tmp_path / 'a_x4.png'}: cannot write (Read-only file system)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_output_folder_under_a_file_is_refused_before_any_work(tmp_path, capsys, tiny_weights, monkeypatch):
    image = _png(tmp_path / "a.png")
    (tmp_path / "afile").write_text("precious")
    monkeypatch.setattr(image_io, "_save", lambda *a: pytest.fail("no work may start"))
    for out in ("afile", "afile/sub"):
        line = _error(capsys, "upscale", str(image), str(image), "--model", tiny_weights, "-o", str(tmp_path / out))
        assert "afile is a file, not a folder" in line or "it is a file, not a folder" in line
    assert (tmp_path / "afile").read_text() == "precious"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_refused_before_any_work(tmp_path, capsys, tiny_weights):
    image = _png(tmp_path / "a.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        line = _error(capsys, "upscale", str(image), "--model", tiny_weights, "-o", str(locked))
        assert str(locked) in line and "permission denied" in line
    finally:
        locked.chmod(0o755)


def test_out_naming_an_existing_file_is_refused_for_eval_and_train(tmp_path, capsys, shared):
    afile = tmp_path / "afile"
    afile.write_text("precious")
    line = _error(capsys, "eval", "--model", "bicubic", "--data", str(shared / "datasets" / "Set5"), "--scale", "4",
                  "--out", str(afile))
    assert line == f"srgan: error: report folder {afile}: it is a file, not a folder"
    line = _error(capsys, "train", "-c", str(ROOT / "configs" / "tiny.yaml"), "--out", str(afile))
    assert line == f"srgan: error: run folder {afile}: it is a file, not a folder"
    assert afile.read_text() == "precious"


# ---------------------------------------------------------------- outputs never replace what is there
def test_output_created_by_another_program_during_the_run_is_kept(tmp_path, capsys, tiny_weights, monkeypatch):
    """The start-up check and the final rename are far apart: a file that appears in between is never
    replaced without --overwrite (the finished file is hard-linked into place, which fails if it exists)."""
    image = _png(tmp_path / "a.png")
    real = image_io._save

    def save_while_someone_else_writes(target, image, fmt, quality, strip_metadata, path):
        Path(path).write_bytes(b"another program's file")
        return real(target, image, fmt, quality, strip_metadata, path)

    monkeypatch.setattr(image_io, "_save", save_while_someone_else_writes)
    line = _error(capsys, "upscale", str(image), "--model", tiny_weights)
    assert str(tmp_path / "a_x4.png") in line and "created by something else" in line and "--overwrite" in line
    assert (tmp_path / "a_x4.png").read_bytes() == b"another program's file" and _no_temps(tmp_path)
    code, _, _ = _run(capsys, "upscale", str(image), "--model", tiny_weights, "--overwrite")
    assert code == 0 and Image.open(tmp_path / "a_x4.png").size == (48, 40)


def test_without_hard_links_the_name_is_claimed_exclusively(tmp_path, monkeypatch):
    """File systems without hard links (FAT, some network shares): exclusive create, then rename."""
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = files.atomic_write(tmp_path / "x.txt", lambda tmp: Path(tmp).write_text("one"))
    assert target.read_text() == "one"
    with pytest.raises(SrganError, match="created by something else"):
        files.atomic_write(target, lambda tmp: Path(tmp).write_text("two"))
    assert target.read_text() == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
    files.atomic_write(target, lambda tmp: Path(tmp).write_text("three"), overwrite=True)
    assert target.read_text() == "three"


def test_suffix_cannot_write_outside_the_input_folder(tmp_path, capsys, tiny_weights):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    image = _png(tmp_path / "deep" / "er" / "a.png")
    for suffix in ("/../../x", "\\..\\x", ".."):
        line = _error(capsys, "upscale", str(image), "--model", tiny_weights, "--suffix", suffix)
        assert "path separator" in line
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.png"]


# ---------------------------------------------------------------- training run folders
def _tiny_config(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        _png(data / f"{i}.png", 24, 24)
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {{preset: srresnet_x4, generator: {{blocks: 1, width: 8}}}}\n"
                      f"data: {{folders: [{data}], hr_crop: 24, batch_size: 2, cache_mb: 0}}\n"
                      "train: {iterations: 2, checkpoint_every: 1, log_every: 1, device: cpu, precision: fp32}\n")
    return config


def test_new_training_run_refuses_a_folder_holding_a_run(tmp_path, capsys):
    config, run = _tiny_config(tmp_path), tmp_path / "run"
    assert _run(capsys, "train", "-c", str(config), "--out", str(run))[0] == 0
    before = _snapshot(run / "checkpoints") | {"generator": (run / "generator.safetensors").read_bytes()}
    line = _error(capsys, "train", "-c", str(config), "--out", str(run), "train.seed=1")
    assert f"run folder {run} holds a previous run (2 checkpoint(s), generator.safetensors)" in line
    assert "--resume auto" in line and "--overwrite" in line
    assert _snapshot(run / "checkpoints") | {"generator": (run / "generator.safetensors").read_bytes()} == before
    assert "choose one" in _error(capsys, "train", "-c", str(config), "--out", str(run), "--resume", "auto",
                                  "--overwrite")
    # --overwrite starts over: the old checkpoints go, so a later --resume auto continues the new run
    assert _run(capsys, "train", "-c", str(config), "--out", str(run), "--overwrite", "train.iterations=1")[0] == 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["ckpt_000000001.pt"]
    code, _, _ = _run(capsys, "train", "-c", str(config), "--out", str(run), "--resume", "auto")
    assert code == 0
    assert torch.load(run / "checkpoints" / "ckpt_000000002.pt", weights_only=True)["config"]["train"]["iterations"] == 2


def test_stale_temps_of_killed_writes_are_removed_at_start(tmp_path, capsys, tiny_weights):
    """SIGKILL leaves `.NAME.HOST@PID-START.RANDOM.tmp` files; the next run removes those of its own
    outputs whose writer is gone (issue 28: never by age alone), and nothing else."""
    config, run = _tiny_config(tmp_path), tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = files.writer_id(gone.pid)
    gone.wait()
    stale = [run / "checkpoints" / f".ckpt_000000001.pt.{dead}.a1b2c3d4.tmp", run / f".generator.safetensors.{dead}.zz_9y8x7.tmp"]
    kept = [run / "checkpoints" / ".notes.tmp", run / "checkpoints" / ".ckpt_000000001.pt.tmp",
            run / "checkpoints" / ".ckpt_000000001.pt.a1b2c3d4.tmp",  # no writer on record: kept, however old
            run / "checkpoints" / f".ckpt_000000002.pt.{files.writer_id()}.q1w2e3r4.tmp"]  # a live writer's
    old = time.time() - 3600
    for path in stale + kept:
        path.write_bytes(b"partial")
        os.utime(path, (old, old))
    assert _run(capsys, "train", "-c", str(config), "--out", str(run), "train.iterations=1")[0] == 0
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)

    image = _png(tmp_path / "a.png")
    leftover = tmp_path / f".a_x4.png.{dead}.k9j8h7g6.tmp"
    leftover.write_bytes(b"partial")
    assert _run(capsys, "upscale", str(image), "--model", tiny_weights)[0] == 0
    assert not leftover.exists() and (tmp_path / "a_x4.png").is_file()


# ---------------------------------------------------------------- signals
_SIGTERM_DURING_WRITE = """
import os, signal, sys
from srgan.imaging import io
from srgan.cli import main
real = io._save
def save(target, *args):
    with open(target, "wb") as f:
        f.write(b"partial")
    os.kill(os.getpid(), signal.SIGTERM)
    return real(target, *args)
io._save = save
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_a_write_leaves_no_temp_file(tmp_path, tiny_weights):
    image = _png(tmp_path / "a.png")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _SIGTERM_DURING_WRITE, "upscale", str(image), "--model", tiny_weights,
                           "--io-threads", "0"], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "terminated (SIGTERM)" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


# ---------------------------------------------------------------- images
def test_truncated_zlib_16_bit_tiff_is_one_line(tmp_path, capsys, tiny_weights):
    import tifffile

    good = tmp_path / "good.tif"
    tifffile.imwrite(good, RNG.integers(0, 65535, (40, 40, 3)).astype(np.uint16), photometric="rgb", compression="zlib")
    bad = tmp_path / "bad.tif"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    line = _error(capsys, "upscale", str(bad), "--model", tiny_weights, "-o", str(tmp_path / "out.png"))
    assert str(bad) in line and "corrupt or truncated image" in line
    code, out, _ = _run(capsys, "upscale", str(bad), str(good), "--model", tiny_weights, "-o", str(tmp_path / "o"))
    assert code == 1 and f"skipped {bad}: corrupt or truncated image" in out
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["good_x4.tif"]


def test_image_too_small_for_a_reflect_padded_model_is_one_line(tmp_path, capsys):
    model = tmp_path / "fpt.safetensors"
    srgan.save_model(srgan.create_model("fpt_x4", blocks=1, width=8), model)
    image = _png(tmp_path / "a.png", 3, 2)
    line = _error(capsys, "upscale", str(image), "--model", str(model))
    assert str(image) in line and "2x3 pixels is too small for this model" in line


def test_bad_arrays_are_refused_not_silently_wrong(tiny_weights):
    for array, needle in ((np.full((5, 5, 3), np.nan, np.float32), "NaN or infinite"),
                          (np.full((5, 5, 3), np.inf), "NaN or infinite"),
                          (np.full((5, 5, 3), 200.0, np.float32), "divide 8-bit data by 255"),
                          (np.zeros((0, 5, 3), np.uint8), "empty image")):
        with pytest.raises(SrganError, match=needle):
            srgan.upscale(array, tiny_weights)
    with pytest.raises(ValueError, match="NaN"):  # an SrganError is a ValueError
        srgan.upscale(torch.full((3, 4, 4), float("nan")), tiny_weights)
    with pytest.raises(ValueError, match="device must be"):
        srgan.upscale(np.zeros((5, 5, 3), np.uint8), tiny_weights, device=5)
    assert srgan.upscale(np.zeros((5, 5, 3), np.uint8), tiny_weights, outscale="2").shape == (10, 10, 3)
    ringing = np.clip(RNG.random((5, 5, 3)), 0, 1) * 1.2 - 0.1  # resampling overshoot is still accepted
    assert srgan.upscale(ringing, tiny_weights).max() <= 1


# ---------------------------------------------------------------- configs
@pytest.mark.parametrize("override, needle", [
    ("optim.lr_g=nan", "optim.lr_g: expected a finite number, got 'nan'"),
    ("optim.lr_d=.inf", "optim.lr_d: expected a finite number"),
    ("model.generator.blocks=abc", "model.generator.blocks: expected int, got 'abc'"),
    ("model.generator.blocks=100000", "blocks must be a positive integer up to"),
    ("train.seed=-1", "train.seed: must be between 0 and"),
    ("optim.betas=[0.9,1.5]", "optim.betas: expected two numbers in [0, 1)"),
    ("data.color_jitter.p=2", "data.color_jitter.p: must be between 0 and 1"),
    ("train.keep_checkpoints=-1", "train.keep_checkpoints: must be at least 0"),
])
def test_config_values_are_checked_by_type_and_range_at_load(tmp_path, capsys, override, needle):
    line = _error(capsys, "train", "-c", str(ROOT / "configs" / "tiny.yaml"), override, "--out", str(tmp_path / "r"))
    assert needle in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("content, needle", [(bytes(range(256)) * 4, "not a text file"),
                                             (b"- a\n- b\n", "expected a mapping of sections"),
                                             (b"\x00\x01binary", "not valid YAML"),
                                             (b"train: {iterations: [[[[[[", "not valid YAML")])
def test_broken_config_file_is_one_line(tmp_path, capsys, content, needle):
    config = tmp_path / "bad.yaml"
    config.write_bytes(content)
    line = _error(capsys, "train", "-c", str(config))
    assert str(config) in line and needle in line


def test_wrong_types_are_type_errors_and_every_refusal_a_value_error():
    from srgan.training.config import load_config

    with pytest.raises(TypeError, match="train.iterations: expected int"):
        load_config(None, ["train.iterations=abc"])
    assert issubclass(SrganTypeError, SrganError) and issubclass(SrganError, ValueError)
    with pytest.raises(ValueError, match="outscale"):
        srgan.UpscaleOptions(outscale=-1)


# ---------------------------------------------------------------- command line
def test_overrides_may_follow_options():
    args = parse_args(["train", "-c", "x.yaml", "a.b=1", "--resume", "auto", "train.iterations=2", "--out", "r",
                       "c.d=3"])
    assert args.overrides == ["a.b=1", "train.iterations=2", "c.d=3"] and args.resume == "auto" and args.out == "r"
    with pytest.raises(SystemExit):
        parse_args(["upscale", "a.png", "--tile", "64", "extra=1"])  # upscale has no overrides


def test_verbose_shows_the_cause_chain(tmp_path, capsys, tiny_weights):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert main(["-v", "upscale", str(bad), "--model", tiny_weights]) == 2
    err = capsys.readouterr().err
    assert "direct cause" in err and "PIL.UnidentifiedImageError" in err  # Pillow's own exception, then srgan's
    assert err.strip().splitlines()[-1].startswith(f"srgan: error: {bad}: ")
