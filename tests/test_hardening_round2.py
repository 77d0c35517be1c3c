"""Issue 28, the second hardening round: ONNX files, weight files, manifests, concurrent runs and
the flags that landed since issue 9, tried as a careless or hostile user would. Every case asserts
the documented exit code, one line naming the file, no traceback, no crash (ONNX cases run in a
subprocess, so a runtime's SIGSEGV would show as a negative return code), no hang (a timeout),
nothing written that should not be, and the finished outputs kept."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import time
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
    lines = [line for line in err.replace("\r", "\n").splitlines() if line and not line.startswith("images:")]
    assert len(lines) == 1 and lines[0].startswith("srgan: error"), err  # progress bars aside
    return lines[0]


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
    assert main(["upscale", str(photo), "--model", str(model)]) == 0  # the default backend (OpenVINO if installed)
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


# ---------------------------------------------------------------- weight files
def _tiny_state(tiny_weights: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(tiny_weights)


def _weights_cases(tmp: Path, tiny_weights: str) -> dict[str, tuple[Path, str]]:
    from safetensors.torch import save_file

    from srgan.runfiles.resume_state import save_resume_state

    state = _tiny_state(tiny_weights)
    first = next(iter(state))
    cases = {}

    config = srgan.load_model(tiny_weights).config.to_dict()

    def pth(name: str, obj: dict, needle: str) -> None:  # srgan's own .pth layout: config beside the tensors
        torch.save({"config": config, "architecture": "srresnet", **obj}, tmp / f"{name}.pth")
        cases[name] = (tmp / f"{name}.pth", needle)

    pth("zero input channels", {**state, "head.0.weight": torch.zeros(8, 0, 9, 9)}, "has an empty shape (8, 0, 9, 9)")
    pth("width zero", {k: v[:0] if v.dim() else v for k, v in state.items()}, "has an empty shape")
    pth("integer key", {**state, 7: torch.zeros(3)}, "tensor key 7 is not a name")
    pth("float64 overflow", {**{k: v.double() for k, v in state.items()}, first: state[first].double() + 1e300},
        "overflowing")
    pth("complex", {**state, first: state[first].to(torch.complex64)}, "is complex (complex64)")
    pth("meta", {**state, first: torch.empty(state[first].shape, device="meta")}, "is on the meta device")
    pth("sparse", {**state, "head.0.bias": state["head.0.bias"].to_sparse()}, "is sparse")
    from safetensors import safe_open

    with safe_open(tiny_weights, "pt") as f:
        header = f.metadata()
    save_file({k: v.double() * 1e300 for k, v in state.items()}, str(tmp / "overflow.safetensors"), metadata=header)
    cases["safetensors float64 overflow"] = (tmp / "overflow.safetensors", "overflowing")
    resume = save_resume_state(tmp / "resume.safetensors", iteration=1, config={"model": {"preset": "srresnet_x4"}},
                               generator=state, ema=None)
    with safe_open(str(resume), "pt") as f:
        meta = f.metadata()
    save_file(_tiny_state(str(resume)), str(tmp / "resume_list.safetensors"), metadata={**meta, "config": "[1, 2]"})
    cases["resume config a list"] = (tmp / "resume_list.safetensors", "config is not a mapping")
    (tmp / "photo.pth").write_bytes((tmp / "photo.png").read_bytes() if (tmp / "photo.png").exists() else
                                    b"\x89PNG\r\n\x1a\n" + bytes(100))
    cases["image as .pth"] = (tmp / "photo.pth", "not a PyTorch weights file (neither")
    return cases


def test_damaged_weight_files_are_one_line_with_the_right_reason(tmp_path, tiny_weights, capsys):
    photo = _png(tmp_path / "a.png")
    for name, (path, needle) in _weights_cases(tmp_path, tiny_weights).items():
        line = _error(capsys, "upscale", str(photo), "--model", str(path))
        assert str(path) in line and needle in line, (name, line)
        assert "could run code" not in line, (name, line)
    assert not (tmp_path / "a_x4.png").exists()


def test_pickle_warning_only_for_real_pickles_naming_objects(tmp_path, tiny_weights, capsys):
    """An `.onnx` passed to `inspect`, an image to `--resume`: "not a weights file", not a security risk."""
    onnx_file = tmp_path / "m.onnx"
    assert main(["export", "--model", tiny_weights, "--onnx", str(onnx_file)]) == 0
    renamed = tmp_path / "m.pth"
    renamed.write_bytes(onnx_file.read_bytes())
    capsys.readouterr()
    assert "an ONNX model, not a weights file" in _error(capsys, "inspect", str(onnx_file))
    line = _error(capsys, "inspect", str(renamed))
    assert "not a PyTorch weights file" in line and "could run code" not in line
    image = _png(tmp_path / "b.png")
    checkpoint = tmp_path / "b.pt"
    checkpoint.write_bytes(image.read_bytes())
    from srgan.runfiles.safe_load import safe_torch_load

    with pytest.raises(SrganError, match="not a srgan checkpoint") as caught:
        safe_torch_load(checkpoint, "srgan checkpoint")
    assert "could run code" not in str(caught.value)
    torch.save({"params": {"w": torch.zeros(1)}, "hook": SrganError}, tmp_path / "evil.pth")
    assert "could run code" in _error(capsys, "inspect", str(tmp_path / "evil.pth"))


@pytest.mark.parametrize("device", ["meta", "sparse"])
def test_api_refuses_meta_and_sparse_images_in_one_line(tiny_weights, device):
    image = torch.empty(3, 8, 8, device="meta") if device == "meta" else torch.rand(3, 8, 8).to_sparse()
    with pytest.raises(SrganError, match=f"got a {device} tensor"):
        srgan.upscale(image, model=tiny_weights)


# ---------------------------------------------------------------- manifests
@pytest.mark.parametrize("kind", ["under a file", "folder", "fifo"])
def test_unusable_manifest_is_refused_before_any_work(tmp_path, tiny_weights, kind):
    photo = _png(tmp_path / "a.png")
    (tmp_path / "note.txt").write_text("x")
    target = {"under a file": tmp_path / "note.txt" / "run.jsonl", "folder": tmp_path / "runs",
              "fifo": tmp_path / "run.fifo"}[kind]
    if kind == "folder":
        target.mkdir()
    if kind == "fifo":
        os.mkfifo(target)
    line = _one_line(_cli("upscale", str(photo), "--model", tiny_weights, "--manifest", str(target), timeout=60))
    assert "manifest" in line and str(target) in line
    assert not (tmp_path / "a_x4.png").exists()


def test_manifest_write_failure_stops_cleanly_naming_the_files_done(tmp_path, tiny_weights, capsys, monkeypatch):
    import errno

    from srgan.inference import manifest

    folder = tmp_path / "in"
    folder.mkdir()
    for name in "abc":
        _png(folder / f"{name}.png")
    real_write, calls = os.write, []

    def full_disk(fd, data):
        calls.append(fd)
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(manifest.os, "write", full_disk)
    line = _error(capsys, "upscale", str(folder), "-o", str(tmp_path / "out"), "--model", tiny_weights,
                  "--manifest", str(tmp_path / "run.jsonl"), "--io-threads", "0")
    assert "No space left on device" in line and "stopped; 2 file(s) done before it are kept" in line
    assert "b_x4.png" in line
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x4.png", "b_x4.png"]
    assert len((tmp_path / "run.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("record, needle", [
    ({"input": ["a.png"], "status": "done"}, "field input must be text"),
    ({"input": "a.png", "status": "done", "out_size": "100x100"}, "field out_size must be [width, height]"),
    ({"input": "a.png", "status": "done", "start": "yesterday"}, "field start must be a finite number"),
    ({"input": "a.png", "status": "maybe"}, "field status must be done or failed"),
    ({"input": "a.png", "status": "done", "seconds": -1}, "field seconds must be a finite number >= 0"),
    ({"input": "a.png"}, "field status is missing"),
    ([1, 2], "a line is a JSON object"),
])
def test_summary_of_wrong_shaped_lines_names_file_line_and_field(tmp_path, capsys, record, needle):
    path = tmp_path / "run.jsonl"
    good = {"input": "b.png", "output": "b_x4.png", "status": "done", "in_size": [4, 4], "out_size": [16, 16],
            "start": 1.0, "end": 2.0}
    path.write_text(json.dumps(good) + "\n" + json.dumps(record) + "\n")
    line = _error(capsys, "upscale", "--summary", str(path))
    assert f"{path}:2: " in line and needle in line


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_summary_of_a_folder_or_fifo_says_what_it_is(tmp_path, kind):
    target = tmp_path / "run.jsonl"
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    line = _one_line(_cli("upscale", "--summary", str(target), timeout=60))
    assert ("a FIFO" if kind == "fifo" else "a folder") in line and "no such file" not in line


# ---------------------------------------------------------------- concurrent runs
def test_a_live_run_keeps_its_temp_file_when_the_same_job_starts_again(tmp_path, tiny_weights, capsys):
    """Two runs of one job at once: the second must not delete the first's file in progress."""
    from srgan import files

    photo = _png(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        in_progress = out / f".a_x4.png.{files.writer_id(writer.pid)}.abcd1234.tmp"
        in_progress.write_bytes(b"being written")
        assert main(["upscale", str(photo), "-o", str(out), "--model", tiny_weights]) == 0
        assert in_progress.exists() and (out / "a_x4.png").is_file()
    finally:
        writer.kill()
        writer.wait()
    (out / "a_x4.png").unlink()
    assert main(["upscale", str(photo), "-o", str(out), "--model", tiny_weights]) == 0
    assert not in_progress.exists()  # its writer is gone now
    capsys.readouterr()


def test_writer_with_a_reused_pid_or_another_host_is_judged_right():
    from srgan import files

    host, pid, start = files.writer_id().split("@")[0], os.getpid(), files.writer_id().rsplit("-", 1)[1]
    assert not files.writer_gone(files.writer_id())
    assert files.writer_gone(f"{host}@{pid}-{int(start) + 1}")  # same PID, started at another time
    assert not files.writer_gone(f"otherhost@{pid + 1}-1")  # cannot be checked from here: kept
    assert files.temp_target(f".a.png.{host}@{pid}-{start}.abcd1234.tmp") == ("a.png", f"{host}@{pid}-{start}")


# ---------------------------------------------------------------- flags: shard, int8, export outputs, torchrun
@pytest.mark.parametrize("shard, needle", [("0/1000000000", "N <= 1,000,000"), ("1/" + "9" * 5000, "shard must be I/N"),
                                           ("3/3", "0 <= I < N")])
def test_shard_out_of_bounds_is_refused_at_once(tmp_path, tiny_weights, shard, needle):
    line = _one_line(_cli("upscale", str(_png(tmp_path / "a.png")), "--model", tiny_weights, "--shard", shard,
                          timeout=60))
    assert needle in line
    assert not (tmp_path / "a_x4.png").exists()


@pytest.mark.parametrize("flags, needle", [(["--max-loss", "nan"], "finite"), (["--max-loss", "inf"], "finite"),
                                           (["--calibration-crops", "100000000"], "from 1 to")])
def test_int8_export_refuses_unusable_settings_before_work(tmp_path, tiny_weights, capsys, flags, needle):
    calibrate = tmp_path / "cal"
    calibrate.mkdir()
    for k in range(3):
        _png(calibrate / f"{k}.png", 24, 24)
    line = _error(capsys, "export", "--model", tiny_weights, "--onnx", str(tmp_path / "q.onnx"), "--int8",
                  "--calibrate", str(calibrate), *flags)
    assert needle in line and not (tmp_path / "q.onnx").exists()


def test_int8_calibration_of_tiny_images_is_refused_up_front(tmp_path, tiny_weights, capsys, monkeypatch):
    from srgan.export import quantize

    calibrate = tmp_path / "cal"
    calibrate.mkdir()
    for k in range(6):
        _png(calibrate / f"{k}.png", 3, 3)
    monkeypatch.setattr(quantize, "export_onnx", lambda *a, **k: pytest.fail("work started"))
    line = _error(capsys, "export", "--model", tiny_weights, "--onnx", str(tmp_path / "q.onnx"), "--int8",
                  "--calibrate", str(calibrate))
    assert "is 3x3" in line and "at least 16x16" in line


@pytest.mark.parametrize("kind", ["under a file", "folder"])
def test_export_output_is_checked_before_the_work(tmp_path, tiny_weights, capsys, monkeypatch, kind):
    from srgan import api

    (tmp_path / "note.txt").write_text("x")
    target = tmp_path / "note.txt" / "m.onnx" if kind == "under a file" else tmp_path / "m.onnx"
    if kind == "folder":
        target.mkdir()
    monkeypatch.setattr(api, "load_model", lambda *a, **k: pytest.fail("work started"))
    line = _error(capsys, "export", "--model", tiny_weights, "--onnx", str(target))
    assert str(target) in line


def test_torchrun_rank_with_a_skipped_file_exits_0_and_rank_0_says_incomplete(tmp_path, tiny_weights, capsys,
                                                                               monkeypatch):
    from srgan.inference.shard import Shard

    folder = tmp_path / "in"
    folder.mkdir()
    _png(folder / "a.png")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    monkeypatch.setattr(Shard, "meet_at_the_end", lambda self, counts: list(counts))
    monkeypatch.setattr("srgan.inference.shard.torchrun_shard", lambda: Shard(0, 1, torchrun=True))
    code = main(["upscale", str(folder), "-o", str(tmp_path / "out"), "--model", tiny_weights])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in out + err
    assert "b.png" in out and "INCOMPLETE" in out.splitlines()[-1]
    assert (tmp_path / "out" / "a_x4.png").is_file()


# ---------------------------------------------------------------- web server: slow and vanishing clients
BOUNDARY = "round2boundary"


def _form(png: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{BOUNDARY}--\r\n".encode()


def _head(length: int) -> bytes:
    return (f"POST /api/upscale HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


@pytest.fixture
def live_server(tiny_weights):
    """`srgan serve` (one worker, no queue: capacity 1) on a free loopback port, in a thread."""
    pytest.importorskip("fastapi")
    import threading

    import uvicorn

    from srgan.serve.app import create_app
    from srgan.serve.server import bind, header_timeout_protocol
    from srgan.serve.settings import ServeSettings

    settings = ServeSettings(model=tiny_weights, device="cpu", queue=0, workers=1, header_timeout=1.0,
                             upload_timeout=3.0, min_upload_kbps=16.0)
    sock = bind("127.0.0.1", 0)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           http=header_timeout_protocol(settings.header_timeout)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield sock.getsockname()[1], app
    server.should_exit = True
    thread.join(10)
    sock.close()


def _upscale(port: int, png: bytes) -> tuple[int, bytes]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/api/upscale", _form(png), {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def _read_reply(sock) -> str:
    """A whole HTTP reply from a raw socket: the head and `content-length` bytes of body, which may
    arrive in separate segments (or until the server closes)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _content_length(data):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def _content_length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _metrics(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def test_slow_uploads_do_not_lock_out_a_normal_client_and_get_408(live_server):
    import socket

    port, _ = live_server
    png = _png(Path(os.environ.get("TMPDIR", "/tmp")) / f"r2-{os.getpid()}.png").read_bytes()
    body = _form(png)
    slow = []
    for _ in range(3):  # more than workers + queue (1), each holding headers and a trickle of bytes
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(_head(len(body)) + body[:50])
        slow.append(s)
    time.sleep(0.3)
    status, answer = _upscale(port, png)
    assert status == 200 and Image.open(io.BytesIO(answer)).size == (48, 40)
    for s in slow:  # answered 408 once the body deadline passes (upload_timeout=3)
        s.settimeout(15)
        reply = _read_reply(s)
        assert reply.startswith("HTTP/1.1 408") and "upload too slow" in reply, reply[:200]
        s.close()
    assert 'srgan_upscale_errors_total{reason="slow_upload"} 3.0' in _metrics(port)


def test_half_open_headers_are_closed_after_the_header_timeout(live_server):
    import socket

    port, _ = live_server
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    start = time.monotonic()
    s.sendall(b"POST /api/upscale HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    for _ in range(5):
        time.sleep(0.3)
        with contextlib.suppress(OSError):
            s.sendall(b"X")  # one byte at a time (slowloris): the deadline still holds
    assert s.recv(4096) == b""  # closed by the server
    assert time.monotonic() - start < 8
    s.close()


def test_client_hanging_up_mid_upload_is_counted_499_without_a_traceback(live_server, caplog):
    import socket

    port, _ = live_server
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(_head(100_000) + b"--" + BOUNDARY.encode() + b"\r\n")
    time.sleep(0.3)
    s.close()
    deadline = time.monotonic() + 10
    while 'reason="client_closed"' not in (text := _metrics(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert 'srgan_upscale_errors_total{reason="client_closed"} 1.0' in text
    assert 'srgan_upscale_requests_total{status="499"} 1.0' in text and 'status="500"' not in text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
