"""`srgan.api`: the one layer the CLI and the server call. Options are validated where they are made,
models are loaded once per cache (also from many threads), and the CLI depends on nothing else."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import srgan
from srgan import api
from srgan.api import ModelCache, SrganError, UpscaleOptions

CLI = Path(srgan.__file__).with_name("cli.py")


def test_cli_imports_only_the_api_and_serve():
    tree = ast.parse(CLI.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "srgan":
            imported |= {node.module} if node.module != "srgan" else {f"srgan.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names if a.name.split(".")[0] == "srgan"}
    assert imported == {"srgan.api", "srgan.serve"}  # serve is its own entry point (api.py knows nothing of it)


def test_options_normalise_what_users_type():
    opts = UpscaleOptions(tile="256", outscale="2", quality="90", lowpass="gaussian:0.5", format="JPEG",
                          precision="BF16", color_fix="hist")
    assert (opts.tile, opts.outscale, opts.quality, opts.format, opts.precision) == (256, 2.0, 90, "jpg", "bf16")
    assert str(opts.lowpass) == "gaussian:0.5"
    assert UpscaleOptions(tile="none").tile is None and UpscaleOptions(tile=0).tile is None
    with pytest.raises(AttributeError):
        opts.tile = 3  # frozen: validated once, never changed behind its back


@pytest.mark.parametrize("field, value, words", [
    ("tile", "big", "tile"), ("tile", -1, "tile"), ("outscale", 0, "outscale"), ("outscale", "nan", "finite"),
    ("outscale", 17, "outscale"), ("quality", 0, "quality"), ("quality", 101, "quality"), ("quality", 2.5, "quality"),
    ("precision", "fp64", "precision"), ("backend", "tensorrt", "backend"), ("color_fix", "auto", "color_fix"),
    ("alpha", "drop", "alpha"), ("format", "gif", "format"), ("lowpass", "box:1", "low-pass"),
    ("tile_pad", -2, "tile_pad"), ("strip_metadata", "yes", "strip_metadata"),
])
def test_bad_options_are_one_error_naming_the_option(field, value, words):
    with pytest.raises(SrganError, match=words):
        UpscaleOptions(**{field: value})


def test_replace_refuses_unknown_options():
    with pytest.raises(SrganError, match="unknown upscale option 'scale'"):
        UpscaleOptions().replace(scale=2)
    with pytest.raises(SrganError, match="unknown upscale option"):
        srgan.upscale(np.zeros((4, 4, 3), np.uint8), tiles=3)


def test_cache_loads_a_model_once_for_many_threads(tiny_weights, monkeypatch):
    import srgan.models.weights as weights_module

    loads = []
    real = weights_module.load_model

    def counting(*args, **kwargs):
        loads.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(weights_module, "load_model", counting)
    cache = ModelCache(size=2)
    runners = []
    threads = [threading.Thread(target=lambda: runners.append(cache.runner(tiny_weights, device="cpu")))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len({id(r) for r in runners}) == 1
    assert cache.runner(tiny_weights, device="cpu", precision="bf16") is not runners[0]  # another setting
    assert len(cache) == 2


def test_upscale_with_options_object_and_keywords(tiny_weights):
    image = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    opts = UpscaleOptions(model=tiny_weights, device="cpu", tile=None)
    a = srgan.upscale(image, options=opts)
    b = srgan.upscale(image, tiny_weights, device="cpu", tile=None)
    c = srgan.upscale(image, options=opts, outscale=2)
    assert a.shape == (32, 36, 3) and np.array_equal(a, b) and c.shape == (16, 18, 3)


def test_upscale_files_reports_each_file(tiny_weights, tmp_path):
    for i in range(3):
        Image.fromarray(np.full((6, 7, 3), 40 * i, np.uint8)).save(tmp_path / f"im{i}.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    seen = []
    summary = api.upscale_files([tmp_path], tmp_path / "out", options=UpscaleOptions(model=tiny_weights),
                                on_file=lambda job, error: seen.append((Path(job.name).name, error)))
    assert len(summary.done) == 3 and [s[0] for s in summary.skipped] == [str(tmp_path / "broken.png")]
    assert sorted(name for name, error in seen if error is None) == ["im0.png", "im1.png", "im2.png"]
    assert all(Image.open(p).size == (28, 24) for p in summary.done)
    with pytest.raises(SrganError, match="path separator"):
        api.upscale_files([tmp_path / "im0.png"], options=UpscaleOptions(model=tiny_weights), suffix="/../../x")


def test_list_models_shows_presets_and_shipped_weights_with_scores():
    infos = {m.name: m for m in api.list_models()}
    assert infos["srresnet_nobn_x4"].parameters == 1_545_238 and not infos["srresnet_nobn_x4"].shipped
    shipped = [m for m in infos.values() if m.shipped]
    assert shipped and all(m.scores.get("Set5") for m in shipped)
