"""Cross-session training state: a compact fp16 file continues a run (weights, EMA, schedule
position, LR warm-up), BN weights fold into the no-BN preset exactly, and an x4 trunk seeds x2."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch

from srgan.models.registry import create
from srgan.models.weights import load_model, save_model
from srgan.runfiles import resume_state
from srgan.runfiles.checkpoint import list_checkpoints
from srgan.training.config import load_config
from srgan.training.trainer import Trainer

TINY = ["model.generator.blocks=1", "model.generator.width=8", "data.hr_crop=32", "data.batch_size=2",
        "train.log_every=1", "train.threads=1", "validation.folder=null", "train.ema=0.9",
        "optim.schedule=cosine", "optim.lr_g=1e-3"]


def _config(shared, tmp_path, *extra):
    return load_config(None, [*TINY, f"data.folders={shared / 'datasets' / 'T91'}",
                              f"train.out_dir={tmp_path}", *extra])


def test_compact_state_continues_weights_ema_and_schedule(shared, tmp_path, one_thread):
    first = Trainer(_config(shared, tmp_path / "a", "train.iterations=4", "train.checkpoint_every=4"))
    first.fit()
    path = first.save_resume_state(tmp_path / "state.safetensors")
    weights = sum(v.numel() for v in first.generator.state_dict().values())
    assert path.stat().st_size < 2 * 2 * weights + 20_000  # fp16 weights and EMA, the config; no moments

    later = Trainer(_config(shared, tmp_path / "b", "train.iterations=1000"), resume=str(path))
    assert later.iteration == 4 and later.warmup_start == 4
    for before, after in ((first.generator, later.generator), (first.ema.model, later.ema.model)):
        for name, value in before.state_dict().items():
            expected = value.half().float() if value.is_floating_point() else value
            torch.testing.assert_close(after.state_dict()[name], expected)
    planned = 1e-3 * 0.5 * (1 + math.cos(math.pi * 4 / 1000))
    assert later.opt_g.param_groups[0]["lr"] == pytest.approx(planned / resume_state.WARMUP)
    later.config.train.iterations = 6
    later.fit()  # trains on from there; a checkpoint keeps the warm-up start
    assert later.iteration == 6
    resumed = Trainer(_config(shared, tmp_path / "b", "train.iterations=1000"),
                      resume=str(list_checkpoints(tmp_path / "b")[-1]))
    assert resumed.warmup_start == 4


def test_checkpoint_and_compact_state_load_as_the_runs_ema_generator(shared, tmp_path, one_thread):
    """`srgan upscale --model runs/x/checkpoints/ckpt_N.pt` (or a resume state) runs the EMA weights in
    the network the run's config names (here a 1-block, width-8 override of the preset), as its export."""
    run = Trainer(_config(shared, tmp_path / "a", "train.iterations=3", "train.checkpoint_every=3"))
    run.fit()
    compact = run.save_resume_state(tmp_path / "state.safetensors")
    exported = load_model(tmp_path / "a" / "generator.safetensors")
    for source, tolerance in ((list_checkpoints(tmp_path / "a")[-1], 0.0), (compact, 1e-3)):
        model = load_model(source)
        assert (model.config.blocks, model.config.width) == (1, 8)
        for name, value in exported.state_dict().items():
            torch.testing.assert_close(model.state_dict()[name], value, rtol=tolerance, atol=tolerance)
        assert not torch.equal(model.state_dict()["head.0.weight"], run.generator.state_dict()["head.0.weight"])


def test_compact_state_of_a_gan_keeps_a_small_discriminator(shared, tmp_path, one_thread):
    gan = ["discriminator={type: vgg, width: 8, pool_size: 1, dense: 16}",
           "losses.adversarial={type: bce, weight: 1e-3}"]
    first = Trainer(_config(shared, tmp_path / "a", "train.iterations=2", "train.checkpoint_every=2", *gan))
    first.fit()
    path = first.save_resume_state(tmp_path / "gan.safetensors")
    later = Trainer(_config(shared, tmp_path / "b", "train.iterations=10", *gan), resume=str(path))
    for name, value in first.discriminator.state_dict().items():
        expected = value.half().float() if value.is_floating_point() else value
        torch.testing.assert_close(later.discriminator.state_dict()[name], expected)
    assert later.opt_d.param_groups[0]["lr"] < later.config.optim.lr_d  # re-warms with the generator

    pixel_only = Trainer(_config(shared, tmp_path / "c", "train.iterations=2", "train.checkpoint_every=2"))
    pixel_only.fit()
    phase2 = Trainer(_config(shared, tmp_path / "d", "train.iterations=10", *gan),
                     resume=str(pixel_only.save_resume_state(tmp_path / "pixel.safetensors")))
    assert phase2.iteration == 2  # a pixel-loss state continues as a GAN with a fresh discriminator


def test_compact_state_from_a_checkpoint_and_bad_files(shared, tmp_path, one_thread, capsys):
    Trainer(_config(shared, tmp_path / "a", "train.iterations=2", "train.checkpoint_every=2")).fit()
    out = tmp_path / "state.safetensors"
    assert resume_state.main([str(list_checkpoints(tmp_path / "a")[-1]), str(out)]) == 0
    assert resume_state.load_resume_state(out)["iteration"] == 2
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(Exception, match="not a readable resume state"):
        resume_state.load_resume_state(junk)
    weights = save_model(create("srresnet_x4", blocks=1, width=8), tmp_path / "w.safetensors")
    with pytest.raises(Exception, match="not an srgan resume state"):
        resume_state.load_resume_state(weights)


def test_bn_weights_fold_into_the_nobn_preset(shared, tmp_path, one_thread):
    bn = create("srresnet_x4", blocks=2, width=8)
    with torch.no_grad():  # non-trivial running statistics, so folding has something to do
        for module in bn.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
    src = save_model(bn.eval(), tmp_path / "bn.safetensors", preset="srresnet_x4")
    trainer = Trainer(_config(shared, tmp_path / "run", "model.preset=srresnet_nobn_x4", "model.generator.blocks=2",
                              f"model.init={src}", "train.iterations=1"))
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(trainer.generator.eval()(x), load_model(src)(x), atol=1e-5, rtol=1e-4)


def test_x4_trunk_initialises_an_x2_network(shared, tmp_path, one_thread):
    x4 = save_model(create("srresnet_nobn_x4", blocks=1, width=8), tmp_path / "x4.safetensors")
    args = ["model.preset=srresnet_nobn_x2", f"model.init={x4}", "train.iterations=1"]
    with pytest.raises(Exception, match="different generator"):
        Trainer(_config(shared, tmp_path / "strict", *args))
    trainer = Trainer(_config(shared, tmp_path / "run", *args, "model.init_strict=false"))
    source = load_model(x4).state_dict()
    state = trainer.generator.state_dict()
    assert torch.equal(state["body.0.body.0.weight"], source["body.0.body.0.weight"])
    assert torch.equal(state["tail.weight"], source["tail.weight"])
    assert "upsample.1.0.weight" not in state


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_checkpoint_from_before_the_registries_resumes_and_continues_the_same_run(shared, tmp_path, one_thread,
                                                                                     caplog):
    """tests/fixtures holds a checkpoint (iteration 2 of 3) and the final export of one run made with the code
    before loss/discriminator types were registered (commit 1f56cc9): old config keys
    `losses.pixel.kind=l1 discriminator.kind=fft discriminator.options.grid=4 discriminator.options.hidden=8
    losses.adversarial.kind=lsgan losses.adversarial.weight=1e-3`, srresnet_x4 with 1 block of width 4, 32 px
    crops of T91, batch 2, EMA 0.9, cosine schedule, deterministic. The same settings in today's form resume
    it and end where that run ended."""
    old = FIXTURES / "ckpt_before_registries.pt"
    config = load_config(None, [
        "model.generator.blocks=1", "model.generator.width=4", "data.hr_crop=32", "data.batch_size=2",
        f"data.folders={shared / 'datasets' / 'T91'}", "train.iterations=3", "train.checkpoint_every=2",
        "train.threads=1", "train.ema=0.9", "train.deterministic=true", "losses.pixel.type=l1",
        "discriminator={type: fft, grid: 4, hidden: 8}", "losses.adversarial={type: lsgan, weight: 1e-3}",
        "validation.folder=null", "optim.schedule=cosine", "train.precision=fp32", f"train.out_dir={tmp_path}"])
    with caplog.at_level(logging.INFO, logger="srgan.training"):
        trainer = Trainer(config, resume=str(old))
    saved = torch.load(old, weights_only=True)
    assert trainer.iteration == 2
    for part, state in (("generator", trainer.generator), ("discriminator", trainer.discriminator),
                        ("ema", trainer.ema.model)):
        assert all(torch.equal(state.state_dict()[k], v) for k, v in saved[part].items())
    changed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("config changed since")]
    assert "config changed since ckpt_before_registries.pt: losses.adversarial.kind: 'lsgan' -> (absent)" in changed
    assert any("discriminator.type: (absent) -> 'fft'" in line for line in changed)
    assert not any("optim" in line or "train.iterations" in line for line in changed)
    exported = trainer.fit()
    before, after = load_model(FIXTURES / "generator_before_registries.safetensors"), load_model(exported)
    for name, value in before.state_dict().items():  # bit-identical on the machine that made it; other
        torch.testing.assert_close(after.state_dict()[name], value, rtol=1e-5, atol=1e-5)  # CPUs: 1.4e-6
