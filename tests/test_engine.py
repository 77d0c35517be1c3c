"""prepare_model: same outputs as the trained model, faster layout, never touching the caller's model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srgan.inference.engine import prepare_model
from srgan.models import create
from srgan.models.srresnet import subpixel_tail


def _trained_looking(preset: str, **overrides) -> nn.Module:
    """Random weights plus non-trivial BN statistics, so folding has something to fold."""
    torch.manual_seed(0)
    model = create(preset, **overrides)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    return model.eval()


@pytest.mark.parametrize("preset", ["srresnet_x4", "fpt_x4", "uos_x4"])
def test_folded_model_gives_the_same_output(preset: str) -> None:
    model = _trained_looking(preset, blocks=3)
    x = torch.rand(1, 3, 23, 19)
    with torch.no_grad():
        expected = model(x)
    prepared = prepare_model(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in prepared.modules())
    assert not prepared.training
    with torch.inference_mode():
        got = prepared(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_caller_model_is_untouched() -> None:
    model = _trained_looking("srresnet_x4", blocks=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepare_model(model, precision="bf16")
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 2 * 2 + 1


def test_bf16_stays_within_one_level() -> None:
    model = _trained_looking("srresnet_x4", blocks=2)
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        fp32 = prepare_model(model)(x)
        bf16 = prepare_model(model, precision="bf16")(x.to(torch.bfloat16).contiguous(
            memory_format=torch.channels_last)).float()
    levels = lambda t: (t.clamp(0, 1) * 255).round()
    assert (levels(bf16) - levels(fp32)).abs().max() <= 1


@pytest.mark.parametrize(("preset", "rewritten"), [("srresnet_x4", True), ("srresnet_x2", True),
                                                    ("fpt_x4", False), ("mit_x4", False)])
def test_subpixel_tail_is_exact_where_it_applies(preset: str, rewritten: bool) -> None:
    model = _trained_looking(preset, blocks=1)
    copy = prepare_model(model)  # prepare_model calls subpixel_tail on its own copy
    assert isinstance(copy.tail, nn.Sequential) == rewritten
    fresh = _trained_looking(preset, blocks=1)
    assert subpixel_tail(fresh) == rewritten
    x = torch.rand(1, 3, 21, 26)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), rtol=1e-5, atol=1e-5)
