"""Community models (issue 12): ESRGAN / Real-ESRGAN / BSRGAN / Compact / MSRResNet files are recognised
from their tensor names and shapes, computed exactly as their published architectures define them, read
safely, tiled, upscaled with metadata kept, run on every backend, exported back, inspected and trained.

The state dicts are made here from the key layouts of the published code (golden key lists and shapes
below), never downloaded; the numerics are checked against straightforward functional forwards written
in this file from the papers, not against srgan's modules."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms

import srgan
from srgan.cli import main
from srgan.errors import SrganError
from srgan.inference.engine import prepare_model
from srgan.inference.tiling import tiled_forward
from srgan.models import create
from srgan.models.foreign import detect
from srgan.models.weights import SHIPPED_DIR, read_metadata

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# ---------------------------------------------------------------- golden layouts
def _esrgan_old_names(ups: int) -> dict[str, object]:
    return {"first": "model.0", "rdb": "model.1.sub.{b}.RDB{r}.conv{c}.0", "trunk": "model.1.sub.{nb}",
            "up": lambda i: f"model.{3 * i}", "hr": f"model.{3 * ups + 2}", "last": f"model.{3 * ups + 4}"}


BASICSR = {"first": "conv_first", "rdb": "body.{b}.rdb{r}.conv{c}", "trunk": "conv_body",
           "up": lambda i: f"conv_up{i}", "hr": "conv_hr", "last": "conv_last"}
BSRGAN = {"first": "conv_first", "rdb": "RRDB_trunk.{b}.RDB{r}.conv{c}", "trunk": "trunk_conv",
          "up": lambda i: f"upconv{i}", "hr": "HRconv", "last": "conv_last"}


def rrdb_shapes(names: dict, nf: int, nb: int, gc: int, ups: int, cin: int = 3, cout: int = 3
                ) -> dict[str, tuple[int, ...]]:
    """ESRGAN's RRDBNet (Wang et al. 2018, Fig. 4): conv_first, nb RRDBs of 3 dense blocks whose conv c
    takes nf + (c-1) * gc channels and gives gc (c < 5) or nf (c = 5), the trunk conv, `ups` nearest+conv
    stages, conv_hr and conv_last; every conv 3x3 with a bias."""
    convs = {names["first"]: (nf, cin), names["trunk"].format(nb=nb): (nf, nf), names["hr"]: (nf, nf),
             names["last"]: (cout, nf)}
    for b in range(nb):
        for r in (1, 2, 3):
            for c in range(1, 6):
                convs[names["rdb"].format(b=b, r=r, c=c)] = (gc if c < 5 else nf, nf + (c - 1) * gc)
    for i in range(1, ups + 1):
        convs[names["up"](i)] = (nf, nf)
    return _with_biases(convs)


def compact_shapes(nf: int, convs: int, scale: int, c: int = 3) -> dict[str, tuple[int, ...]]:
    """Real-ESRGAN SRVGGNetCompact: body.0 conv, body.1 PReLU(nf), (conv, PReLU) x convs, last conv to c*s^2."""
    shapes = {"body.0.weight": (nf, c, 3, 3), "body.0.bias": (nf,), "body.1.weight": (nf,)}
    for i in range(1, convs + 1):
        shapes |= {f"body.{2 * i}.weight": (nf, nf, 3, 3), f"body.{2 * i}.bias": (nf,), f"body.{2 * i + 1}.weight": (nf,)}
    last = 2 * convs + 2
    return shapes | {f"body.{last}.weight": (c * scale**2, nf, 3, 3), f"body.{last}.bias": (c * scale**2,)}


def msrresnet_shapes(nf: int, nb: int, scale: int, c: int = 3) -> dict[str, tuple[int, ...]]:
    """BasicSR MSRResNet: conv_first, nb (conv1, conv2) blocks, upconv1 (x2, x3: nf*s^2; x4: nf*4) and
    upconv2 (x4 only), conv_hr, conv_last."""
    convs = {"conv_first": (nf, c), "conv_hr": (nf, nf), "conv_last": (c, nf)}
    for b in range(nb):
        convs |= {f"body.{b}.conv1": (nf, nf), f"body.{b}.conv2": (nf, nf)}
    if scale == 4:
        convs |= {"upconv1": (nf * 4, nf), "upconv2": (nf * 4, nf)}
    else:
        convs["upconv1"] = (nf * scale * scale, nf)
    return _with_biases(convs)


def _with_biases(convs: dict[str, tuple[int, int]]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for name, (cout, cin) in convs.items():
        shapes |= {f"{name}.weight": (cout, cin, 3, 3), f"{name}.bias": (cout,)}
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors, in a shuffled key order (detection must not depend on it)."""
    g = torch.Generator().manual_seed(seed)
    keys = list(shapes)
    random.Random(seed).shuffle(keys)
    state = {}
    for key in keys:
        shape = shapes[key]
        if len(shape) == 4:
            state[key] = torch.randn(shape, generator=g) * (0.5 / (shape[1] * 9) ** 0.5)
        else:  # biases and PReLU slopes
            state[key] = torch.rand(shape, generator=g) * 0.2
    return state


# ---------------------------------------------------------------- independent reference forwards
def _conv(state: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, state[f"{name}.weight"], state[f"{name}.bias"], padding=1)


def ref_rrdbnet(state: dict, names: dict, x: torch.Tensor, nb: int, ups: int, unshuffle: int = 1) -> torch.Tensor:
    lrelu = lambda t: F.leaky_relu(t, 0.2)
    if unshuffle > 1:
        x = F.pixel_unshuffle(x, unshuffle)
    feat = _conv(state, names["first"], x)
    trunk = feat
    for b in range(nb):
        h = trunk
        for r in (1, 2, 3):
            grown = [h]
            for c in range(1, 5):
                grown.append(lrelu(_conv(state, names["rdb"].format(b=b, r=r, c=c), torch.cat(grown, 1))))
            h = h + 0.2 * _conv(state, names["rdb"].format(b=b, r=r, c=5), torch.cat(grown, 1))
        trunk = trunk + 0.2 * h
    feat = feat + _conv(state, names["trunk"].format(nb=nb), trunk)
    for i in range(1, ups + 1):
        feat = lrelu(_conv(state, names["up"](i), F.interpolate(feat, scale_factor=2, mode="nearest")))
    return _conv(state, names["last"], lrelu(_conv(state, names["hr"], feat)))


def ref_compact(state: dict, x: torch.Tensor, convs: int, scale: int) -> torch.Tensor:
    h = x
    for i in range(convs + 1):
        h = F.prelu(_conv(state, f"body.{2 * i}", h), state[f"body.{2 * i + 1}.weight"])
    h = F.pixel_shuffle(_conv(state, f"body.{2 * convs + 2}", h), scale)
    return h + F.interpolate(x, scale_factor=scale, mode="nearest")


def ref_msrresnet(state: dict, x: torch.Tensor, nb: int, scale: int) -> torch.Tensor:
    lrelu = lambda t: F.leaky_relu(t, 0.1)
    h = lrelu(_conv(state, "conv_first", x))
    for b in range(nb):
        h = h + _conv(state, f"body.{b}.conv2", F.relu(_conv(state, f"body.{b}.conv1", h)))
    for name in (["upconv1", "upconv2"] if scale == 4 else ["upconv1"]):
        h = lrelu(F.pixel_shuffle(_conv(state, name, h), 2 if scale == 4 else scale))
    h = _conv(state, "conv_last", lrelu(_conv(state, "conv_hr", h)))
    return h + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------- the cases
# (id, state shapes, reference, architecture, expected config fields, how the file is written)
NF, NB, GC = 8, 2, 4
CASES = {
    "esrgan-old-x4": (rrdb_shapes(_esrgan_old_names(2), NF, NB, GC, 2),
                      lambda s, x: ref_rrdbnet(s, _esrgan_old_names(2), x, NB, 2), "rrdbnet",
                      {"scale": 4, "width": NF, "blocks": NB, "growth": GC, "pixel_unshuffle": 1}, "pth"),
    "esrgan-old-x1": (rrdb_shapes(_esrgan_old_names(0), NF, NB, GC, 0),
                      lambda s, x: ref_rrdbnet(s, _esrgan_old_names(0), x, NB, 0), "rrdbnet",
                      {"scale": 1, "pixel_unshuffle": 1}, "safetensors"),
    "esrgan-old-x8": (rrdb_shapes(_esrgan_old_names(3), NF, 1, GC, 3),
                      lambda s, x: ref_rrdbnet(s, _esrgan_old_names(3), x, 1, 3), "rrdbnet",
                      {"scale": 8, "blocks": 1}, "pth"),
    "basicsr-x4": (rrdb_shapes(BASICSR, NF, NB, GC, 2), lambda s, x: ref_rrdbnet(s, BASICSR, x, NB, 2), "rrdbnet",
                   {"scale": 4, "width": NF, "blocks": NB, "growth": GC, "pixel_unshuffle": 1}, "params_ema"),
    "realesrgan-x2-unshuffle": (rrdb_shapes(BASICSR, NF, NB, GC, 2, cin=12),
                                lambda s, x: ref_rrdbnet(s, BASICSR, x, NB, 2, unshuffle=2), "rrdbnet",
                                {"scale": 2, "in_channels": 3, "pixel_unshuffle": 2}, "params"),
    "realesrgan-x1-unshuffle": (rrdb_shapes(BASICSR, NF, 1, GC, 2, cin=48),
                                lambda s, x: ref_rrdbnet(s, BASICSR, x, 1, 2, unshuffle=4), "rrdbnet",
                                {"scale": 1, "in_channels": 3, "pixel_unshuffle": 4}, "safetensors-fp16"),
    "bsrgan-x4": (rrdb_shapes(BSRGAN, NF, NB, GC, 2), lambda s, x: ref_rrdbnet(s, BSRGAN, x, NB, 2), "rrdbnet",
                  {"scale": 4, "blocks": NB, "growth": GC}, "module"),
    "bsrgan-x2": (rrdb_shapes(BSRGAN, NF, 1, GC, 1), lambda s, x: ref_rrdbnet(s, BSRGAN, x, 1, 1), "rrdbnet",
                  {"scale": 2, "pixel_unshuffle": 1}, "state_dict"),
    "compact-x4": (compact_shapes(NF, 3, 4), lambda s, x: ref_compact(s, x, 3, 4), "srvgg_compact",
                   {"scale": 4, "width": NF, "convs": 3}, "safetensors"),
    "compact-x2": (compact_shapes(NF, 2, 2), lambda s, x: ref_compact(s, x, 2, 2), "srvgg_compact",
                   {"scale": 2, "convs": 2}, "params"),
    "msrresnet-x4": (msrresnet_shapes(NF, NB, 4), lambda s, x: ref_msrresnet(s, x, NB, 4), "msrresnet",
                     {"scale": 4, "width": NF, "blocks": NB}, "params_ema"),
    "msrresnet-x3": (msrresnet_shapes(NF, 1, 3), lambda s, x: ref_msrresnet(s, x, 1, 3), "msrresnet",
                     {"scale": 3, "blocks": 1}, "model"),
}


def write(state: dict[str, torch.Tensor], path: Path, how: str) -> Path:
    """A file as the community writes them: bare, in a training container, or with DataParallel names."""
    if how.startswith("safetensors"):  # "safetensors-fp16": half precision, as many community files are
        from safetensors.torch import save_file

        path = path.with_suffix(".safetensors")
        save_file({k: v.half() if how.endswith("fp16") else v for k, v in state.items()}, str(path),
                  metadata={"format": "pt"})
        return path
    path = path.with_suffix(".pth")
    if how == "params_ema":  # BasicSR keeps both; the EMA weights are the ones to use
        noise = {k: torch.randn_like(v) for k, v in state.items()}
        obj: object = {"params": noise, "params_ema": state}
    elif how == "module":
        obj = {f"module.{k}": v for k, v in state.items()}
    elif how in ("params", "state_dict", "model"):
        obj = {how: state, "iter": 1000}
    else:
        obj = state
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_layout_is_detected_and_computes_the_published_network(case: str, tmp_path: Path) -> None:
    shapes, reference, architecture, expected, how = CASES[case]
    state = random_state(shapes)
    path = write(state, tmp_path / case, how)
    if how.endswith("fp16"):
        state = {k: v.half().float() for k, v in state.items()}
    model = srgan.load_model(path)
    assert model.architecture == architecture
    for field, value in expected.items():
        assert getattr(model.config, field) == value, field
    x = torch.rand(1, 3, 12, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, want = model(x), reference(state, x)
    assert got.shape == want.shape == (1, 3, 12 * model.scale, 8 * model.scale)
    assert (got - want).abs().max() <= 1e-5


def test_detection_does_not_depend_on_key_order() -> None:
    shapes = rrdb_shapes(_esrgan_old_names(2), NF, NB, GC, 2)
    configs = {detect(random_state(shapes, seed)).config for seed in range(3)}  # three shuffled orders
    assert len(configs) == 1


def test_unshuffle_models_take_any_size_like_real_esrgan() -> None:
    """Real-ESRGAN pads x2/x1 inputs to a multiple of the unshuffle factor by reflection and crops."""
    shapes, reference, *_ = CASES["realesrgan-x2-unshuffle"]
    state = random_state(shapes)
    model = detect(state)
    net = srgan.models.registry.build(model.config).eval()
    net.load_state_dict(model.state)
    x = torch.rand(1, 3, 13, 9)
    with torch.no_grad():
        got = net(x)
        want = reference(state, F.pad(x, (0, 1, 0, 1), mode="reflect"))[..., :26, :18]
    assert (got - want).abs().max() <= 1e-5


@pytest.mark.parametrize("preset, shapes", [
    ("esrgan_x4", rrdb_shapes(BASICSR, 64, 23, 32, 2)),
    ("realesrgan_x2plus", rrdb_shapes(BASICSR, 64, 23, 32, 2, cin=12)),
    ("realesrgan_x4plus_anime_6b", rrdb_shapes(_esrgan_old_names(2), 64, 6, 32, 2)),
    ("realesr_general_x4v3", compact_shapes(64, 32, 4)),
    ("realesr_animevideov3", compact_shapes(64, 16, 4)),
    ("msrresnet_x4", msrresnet_shapes(64, 16, 4)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_published_sizes_match_their_presets_and_golden_keys(preset: str, shapes: dict) -> None:
    """Full-size golden key lists (no memory: zero-stride tensors) are recognised as the preset, whose own
    state dict is exactly the BasicSR / Real-ESRGAN layout."""
    state = {k: torch.zeros(()).expand(shape) for k, shape in shapes.items()}
    found = detect(state)
    assert found.config == srgan.models.preset_config(preset)
    with torch.device("meta"):  # shapes only
        model = create(preset)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in found.state.items()}
    if preset == "esrgan_x4":
        assert sum(p.numel() for p in model.parameters()) == 16_697_987  # ESRGAN's RRDB_ESRGAN_x4
        assert model.receptive_field() == 349 and model.context() is None


# ---------------------------------------------------------------- refusals, one line each
class _Evil:
    """Unpickling this opens (creates) the marker file: what a malicious model file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("container", ["zip", "legacy-pickle"])
def test_a_malicious_pickle_is_refused_and_never_runs(container: str, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    if container == "zip":
        torch.save({"params_ema": random_state(compact_shapes(4, 1, 2)), "extra": _Evil(marker)}, path)
    else:  # a plain pickle, as torch.save wrote before PyTorch 1.6
        path.write_bytes(pickle.dumps({"params_ema": {"body.0.weight": [0.0]}, "extra": _Evil(marker)}, protocol=2))
    with pytest.raises(SrganError, match=r"refused: .*\(io\.open\)") as err:
        srgan.load_model(path)
    assert "\n" not in str(err.value)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    assert main(["upscale", str(tmp_path / "a.png"), "--model", str(path)]) == 2
    assert main(["inspect", str(path)]) == 2
    _, stderr = capsys.readouterr()
    assert stderr.count("\n") == 2 and "refused" in stderr
    assert not marker.exists() and not (tmp_path / "a_x2.png").exists()
    # the file really is malicious: an unsafe load runs it
    torch.load(path, weights_only=False) if container == "zip" else pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_truncated_file_is_one_line(suffix: str, tmp_path: Path) -> None:
    path = write(random_state(compact_shapes(4, 1, 2)), tmp_path / "m", "safetensors" if suffix == ".safetensors" else "")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SrganError, match=f"{path.name}: not a readable") as err:
        srgan.load_model(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("change, message", [
    ("missing", r"missing body\.1\.rdb2\.conv3\.weight"),
    ("extra", r"unexpected model\.1\.sub\.0\.RDB1\.conv6\.0\.weight"),
    ("shape", r"body\.0\.rdb3\.conv4\.weight has shape \(4, 19, 3, 3\) where the network needs \(4, 20, 3, 3\)"),
])
def test_missing_extra_and_misshapen_tensors_are_one_line(change: str, message: str, tmp_path: Path) -> None:
    state = random_state(rrdb_shapes(_esrgan_old_names(2), NF, NB, GC, 2))
    if change == "missing":
        del state["model.1.sub.1.RDB2.conv3.0.weight"]
    elif change == "extra":
        state["model.1.sub.0.RDB1.conv6.0.weight"] = torch.zeros(4, 8, 3, 3)
    else:
        state["model.1.sub.0.RDB3.conv4.0.weight"] = torch.zeros(4, 19, 3, 3)
    path = write(state, tmp_path / "m", "")
    with pytest.raises(SrganError, match=message) as err:
        srgan.load_model(path)
    assert "\n" not in str(err.value) and "ESRGAN (original model.N layout)" in str(err.value)


def test_an_unknown_layout_names_what_it_found_and_what_is_supported(tmp_path: Path) -> None:
    path = write({"encoder.0.weight": torch.zeros(4, 3, 3, 3), "decoder.0.weight": torch.zeros(3, 4, 3, 3)},
                 tmp_path / "swinir", "safetensors")
    with pytest.raises(SrganError, match=r"unknown weight layout \(found decoder\.0\.weight, encoder\.0\.weight\); "
                                         r"supported: ESRGAN .*Compact.*MSRResNet") as err:
        srgan.load_model(path)
    assert "\n" not in str(err.value)


def test_a_compact_model_without_prelu_slopes_says_why_it_is_not_supported() -> None:
    state = {k: v for k, v in random_state(compact_shapes(4, 2, 2)).items() if not k.endswith(("1.weight", "3.weight",
                                                                                                  "5.weight"))}
    with pytest.raises(SrganError, match="PReLU slope per channel.*cannot be told apart"):
        detect(state)


# ---------------------------------------------------------------- tiling, upscaling, backends
def _measured_context(model: torch.nn.Module, size: int) -> int:
    """How far, in LR pixels, one input pixel reaches in the output. Measured on an impulse with
    non-negative averaging convolutions and no biases: the output is exactly zero wherever the impulse
    does not reach and positive (if tiny: float64) wherever it does, so no path cancels or rounds away."""
    model = model.double().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.fill_(1 / module.weight[0].numel())
                module.bias.zero_()
        impulse = torch.zeros(1, 3, size, size, dtype=torch.float64)
        impulse[..., size // 2, size // 2] = 1.0
        changed = torch.nonzero(model(impulse).amax(dim=(0, 1)) > 0)
    lr = changed // model.scale
    assert lr.min() > 0 and lr.max() < size - 1, "the change reached the border: use a larger image"
    return int((lr - size // 2).abs().max())


@pytest.mark.parametrize("preset, overrides", [
    ("esrgan_small_x4", {"width": 4, "growth": 2}), ("realesr_animevideov3", {"width": 4, "convs": 4}),
    ("msrresnet_x4", {"width": 4, "blocks": 2}), ("msrresnet_x4", {"width": 4, "blocks": 1, "scale": 3}),
])
def test_declared_context_is_the_measured_receptive_field(preset: str, overrides: dict) -> None:
    model = create(preset, **overrides)
    assert model.context() == _measured_context(model, 2 * model.context() + 5)


@pytest.fixture(scope="module")
def esrgan_file(tmp_path_factory) -> Path:
    """A detected old-layout ESRGAN x4 (2 blocks: 34-pixel context, tiles exact)."""
    state = random_state(rrdb_shapes(_esrgan_old_names(2), 8, 2, 4, 2), seed=3)
    return write(state, tmp_path_factory.mktemp("esrgan") / "4x_community", "")


@pytest.fixture(scope="module")
def compact_file(tmp_path_factory) -> Path:
    return write(random_state(compact_shapes(8, 4, 4), seed=4), tmp_path_factory.mktemp("compact") / "compact", "safetensors")


@pytest.mark.parametrize("which", ["esrgan_file", "compact_file"])
def test_detected_files_tile_exactly(which: str, request) -> None:
    model = prepare_model(srgan.load_model(request.getfixturevalue(which)))
    x = torch.rand(1, 3, 41, 37, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        whole = model(x)
    assert (tiled_forward(model, x, scale=4, tile=20) - whole).abs().max() < 1e-5


def test_unshuffle_models_tile_exactly_on_their_pixel_grid() -> None:
    """A Real-ESRGAN x2 network groups 2x2 input blocks: tiles follow that grid (`input_multiple`), so a
    small one tiles exactly even with odd tile sides and an odd image, where unaligned tiles do not."""
    torch.manual_seed(0)
    model = prepare_model(create("realesrgan_x2plus", blocks=1, width=8, growth=4))
    assert model.input_multiple() == 2 and model.context() == 2 * 19
    x = torch.rand(1, 3, 61, 58, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        whole = model(x)
    assert (tiled_forward(model, x, scale=2, tile=23) - whole).abs().max() < 1e-5
    model.input_multiple = lambda: 1  # the same tiles, ignoring the grid
    assert (tiled_forward(model, x, scale=2, tile=23) - whole).abs().max() > 1e-3


def test_a_field_too_large_to_carry_is_tiled_with_blended_overlaps() -> None:
    """23-block models (349 LR pixels) and this 2-block x2 one (2 x 34) declare no context: their tiles
    are blended, which hides the seams that tiles cropped without context show."""
    torch.manual_seed(0)
    model = prepare_model(create("realesrgan_x2plus", blocks=2, width=8, growth=4))
    assert model.context() is None
    x = torch.rand(1, 3, 64, 60, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        whole = model(x)
    blended = tiled_forward(model, x, scale=2, tile=32)
    cropped = tiled_forward(model, x, scale=2, tile=32, tile_pad=0)
    assert blended.shape == whole.shape
    assert (blended - whole).abs().mean() < 0.5 * (cropped - whole).abs().mean()


@pytest.mark.parametrize("which", ["esrgan_file", "compact_file"])
def test_upscale_with_a_community_file_keeps_alpha_16_bits_and_icc(which: str, request, tmp_path: Path,
                                                                   capsys) -> None:
    import png

    from srgan.imaging.io import LoadedImage, write_image

    rng = np.random.default_rng(0)
    data = torch.from_numpy((rng.integers(0, 255, (4, 10, 12)) * 257 + 1) / 65535).float()
    write_image(tmp_path / "deep.png", LoadedImage(pixels=data[:3], alpha=data[3:], bit_depth=16, icc_profile=SRGB_ICC))
    code = main(["upscale", str(tmp_path / "deep.png"), "--model", str(request.getfixturevalue(which)), "--tile", "16"])
    out, err = capsys.readouterr()
    assert code == 0 and "upscaled 1 image(s)" in out, err
    width, height, _, info = png.Reader(filename=str(tmp_path / "deep_x4.png")).read()
    assert (width, height, info["bitdepth"], info["planes"]) == (48, 40, 16, 4)
    with Image.open(tmp_path / "deep_x4.png") as result:
        assert result.info.get("icc_profile") == SRGB_ICC


@pytest.mark.parametrize("which", ["esrgan_file", "compact_file"])
def test_onnxruntime_backend_matches_torch(which: str, request) -> None:
    pytest.importorskip("onnxruntime")
    path = request.getfixturevalue(which)
    x = torch.rand(3, 21, 19, generator=torch.Generator().manual_seed(6))
    torch_out = srgan.upscale(x, str(path), tile=None, precision="fp32")
    onnx_out = srgan.upscale(x, str(path), tile=None, backend="onnxruntime")
    assert (torch_out - onnx_out).abs().max() < 1e-4


def test_unshuffle_model_exports_to_onnx_with_dynamic_size(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from srgan.inference.onnx_backend import OnnxRunner, export_onnx

    model = create("realesrgan_x2plus", blocks=1, width=8, growth=4).eval()
    runner = OnnxRunner(export_onnx(model, tmp_path / "x2.onnx"))
    assert (runner.context(), runner.input_multiple()) == (38, 2)
    for h, w in [(13, 11), (16, 16)]:
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            assert (runner(x) - model(x)).abs().max() < 1e-5


# ---------------------------------------------------------------- export, inspect, models
@pytest.mark.parametrize("preset, overrides, golden", [
    ("esrgan_small_x4", {}, rrdb_shapes(BASICSR, 32, 2, 16, 2)),
    ("realesrgan_x2plus", {"blocks": 1, "width": 8, "growth": 4}, rrdb_shapes(BASICSR, 8, 1, 4, 2, cin=12)),
    ("realesr_animevideov3", {"convs": 2, "width": 8}, compact_shapes(8, 2, 4)),
    ("msrresnet_x4", {"blocks": 2, "width": 8}, msrresnet_shapes(8, 2, 4)),
])
def test_export_basicsr_writes_the_published_keys(preset: str, overrides: dict, golden: dict, tmp_path: Path,
                                                  capsys) -> None:
    torch.manual_seed(0)
    source = srgan.save_model(create(preset, **overrides), tmp_path / "mine.safetensors")
    for name in ("out.pth", "out.safetensors"):
        assert main(["export", "--model", str(source), "--layout", "basicsr", str(tmp_path / name)]) == 0
    assert "basicsr layout" in capsys.readouterr().out
    pth = torch.load(tmp_path / "out.pth", weights_only=True)
    assert list(pth) == ["params_ema"]
    assert {k: tuple(v.shape) for k, v in pth["params_ema"].items()} == golden
    from safetensors.torch import load_file

    assert {k: tuple(v.shape) for k, v in load_file(tmp_path / "out.safetensors").items()} == golden
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        mine = srgan.load_model(source)(x)
        assert (srgan.load_model(tmp_path / "out.pth")(x) - mine).abs().max() == 0
    assert srgan.inspect_weights(tmp_path / "out.safetensors").layout != "srgan"


def test_export_without_a_basicsr_equivalent_points_to_onnx(tmp_path: Path, capsys) -> None:
    source = srgan.save_model(create("srresnet_nobn_x4", blocks=1), tmp_path / "s.safetensors")
    assert main(["export", "--model", str(source), "--layout", "basicsr", str(tmp_path / "s.pth")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no exact BasicSR" in err and "--onnx" in err
    assert not (tmp_path / "s.pth").exists()
    assert main(["export", "--model", str(source), str(tmp_path / "s.pth")]) == 2  # neither --onnx nor --layout


def test_inspect_prints_what_a_file_is_without_running_it(esrgan_file: Path, capsys) -> None:
    assert main(["inspect", str(esrgan_file)]) == 0
    out = capsys.readouterr().out
    assert "layout        ESRGAN (original model.N layout)" in out
    assert "architecture  rrdbnet" in out and "scale         x4" in out
    info = srgan.inspect_weights(esrgan_file)
    model = srgan.load_model(esrgan_file)
    assert info.parameters == sum(p.numel() for p in model.parameters()) and f"{info.parameters:,d}" in out
    assert info.context == 34 and info.config["blocks"] == 2


def test_models_lists_architectures_presets_and_shipped_weights(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    head, listed = out.splitlines()[0].split(": ")
    assert head == "architectures" and {"msrresnet", "rrdbnet", "srresnet", "srvgg_compact"} <= set(listed.split(", "))
    assert "esrgan_x4" in out and "16,697,987" in out and "realesr_general_x4v3" in out
    for path in SHIPPED_DIR.glob("*.safetensors"):  # each shipped file with its scores, as MODELS.md prints them
        line = next(x for x in out.splitlines() if x.startswith(f"{path.stem} ") and " weights " in x)
        set5 = read_metadata(path)["scores"]["Set5"]
        assert f"Set5 {set5['psnr']:.2f} / {set5['ssim']:.4f}" in line


@pytest.mark.parametrize("name", ["esrgan_x4", "realesrgan_x2plus", "realesrgan_x4plus_anime_6b", "esrgan_small_x4",
                                  "realesr_general_x4v3", "realesr_animevideov3", "msrresnet_x4"])
def test_preset_docstring_states_its_parameter_count(name: str) -> None:
    with torch.device("meta"):
        count = sum(p.numel() for p in create(name).parameters())
    assert f"{count:,} parameters" in srgan.models.describe(name)


# ---------------------------------------------------------------- training
def test_esrgan_config_trains_rrdbnet_with_ragan_and_preactivation_vgg(shared: Path, vgg_weights: Path,
                                                                      tmp_path: Path, one_thread: None) -> None:
    from srgan.models.weights import read_metadata
    from srgan.training.config import load_config
    from srgan.training.trainer import Trainer

    config = load_config(Path(__file__).parents[1] / "configs" / "esrgan_x4.yaml", [
        "model.preset=esrgan_small_x4", "model.init=null", f"data.folders=[{shared / 'datasets' / 'T91'}]",
        "data.hr_crop=32", "data.batch_size=2", "train.iterations=2", "train.threads=1", "validation.folder=null",
        "losses.perceptual.layers={conv2_2: 0.5, conv3_4: 1.0}", f"losses.perceptual.weights_path={vgg_weights}",
        f"train.out_dir={tmp_path}"])
    assert config.losses["adversarial"]["type"] == "ragan" and config.losses["pixel"]["type"] == "l1"
    exported = Trainer(config).fit()
    meta = read_metadata(exported)
    assert meta["architecture"] == "rrdbnet" and meta["iterations"] == 2
    trained = srgan.load_model(exported)
    torch.manual_seed(config.train.seed)
    fresh = create("esrgan_small_x4")
    assert any(not torch.equal(a, b) for a, b in zip(trained.state_dict().values(), fresh.state_dict().values()))


def test_preactivation_vgg_layers_are_the_convolutions_before_the_relu(vgg_weights: Path) -> None:
    """ESRGAN's perceptual loss uses VGG features before the activation: conv3_4 keeps negative values
    (and so the information relu3_4 clips), relu3_4 is exactly its positive part."""
    from srgan.models.vgg import VGGFeatures

    vgg = VGGFeatures(["conv3_4", "relu3_4"], weights=vgg_weights)
    with torch.no_grad():
        out = vgg(torch.rand(1, 3, 32, 32))
    assert (out["conv3_4"] < 0).any()
    assert torch.equal(out["relu3_4"], out["conv3_4"].clamp_min(0))
