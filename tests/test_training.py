"""The trainer end to end on tiny networks: every config runs, resume after SIGKILL is bit-identical,
2-process DDP works, and NaN / missing data / bad keys stop with one clear line."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import srgan
from srgan.cli import main
from srgan.evaluation.runner import evaluate
from srgan.models.weights import read_metadata
from srgan.runfiles.checkpoint import list_checkpoints, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

# shrink any config to seconds on a CPU: one 8-wide block, 32 px crops, batch 2, small discriminator
SMALL = ["model.init=null", "model.generator.blocks=1", "model.generator.width=8", "data.hr_crop=32",
         "data.batch_size=2", "train.iterations=3", "train.log_every=1", "train.threads=1", "validation.folder=null",
         "validation.lr_folder=null", "validation.lpips=false", "validation.lpips_weights=null",
         "recursive.stage1_iterations=1"]


def _small(shared: Path, vgg_weights: Path, extra: list[str] = (), perceptual: bool | str = False) -> list[str]:
    """SMALL on T91; `perceptual`: the config has a perceptual term, which reads the shared VGG19 file
    (or the VGG16 file, `perceptual="vgg16"`)."""
    if perceptual == "vgg16":
        vgg_weights = shared / "weights" / "vgg16_features_imagenet.safetensors"
    vgg = [f"losses.perceptual.weights_path={vgg_weights}"] if perceptual else []
    return [*SMALL, f"data.folders={shared / 'datasets' / 'T91'}", *vgg, *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    env.pop("WORLD_SIZE", None)
    return env


def _dsmall(path: Path) -> list[str]:
    """Small discriminator options for the config's discriminator kind."""
    import yaml

    kind = (yaml.safe_load(path.read_text()).get("discriminator") or {}).get("type")
    vgg = ["discriminator.width=8", "discriminator.dense=16"]
    fft = ["discriminator.grid=8", "discriminator.hidden=16"]
    if kind == "vgg":
        return vgg
    if kind == "fft":
        return fft
    if kind == "both":
        return [o.replace("discriminator.", "discriminator.vgg.", 1) for o in vgg] + \
               [o.replace("discriminator.", "discriminator.fft.", 1) for o in fft]
    return []


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_trains_a_few_iterations(path, shared, vgg_weights, tmp_path, capsys):
    import yaml

    raw = yaml.safe_load(path.read_text())
    perceptual = (raw.get("losses") or {}).get("perceptual")
    extra = _dsmall(path)
    deep = [name for name in (perceptual or {}).get("layers", {}) if name.endswith("5_4")]
    if deep:  # the shared partial VGG19 stops at conv3_4 / relu3_4 (srgan_x4.yaml: relu5_4, esrgan_x4.yaml: conv5_4)
        extra.append(f"losses.perceptual.layers={{{deep[0][:-3]}3_4: 1.0}}")
    args = _small(shared, vgg_weights, extra, perceptual=(perceptual or {}).get("network", bool(perceptual)))
    if "convs" in ((raw.get("model") or {}).get("generator") or {}):  # a Compact network: convs, not blocks
        args = ["model.generator.convs=1" if a == "model.generator.blocks=1" else a for a in args]
    assert main(["train", "-c", str(path), *args, "--out", str(tmp_path)]) == 0
    exported = tmp_path / "generator.safetensors"
    model = srgan.load_model(exported)
    meta = read_metadata(exported)
    assert meta["iterations"] == 3 and meta["preset"] == raw["model"]["preset"]
    x = torch.rand(1, 3, 8, 8)
    assert model(x).shape[-1] == 8 * model.scale
    if path.stem == "rgan_x4":
        assert (tmp_path / "stage1.safetensors").is_file() and meta["recursive"]["chain_scale"] == 4


def test_relu5_4_with_the_partial_vgg_file_is_one_clear_error(shared, vgg_weights, tmp_path, capsys):
    args = _small(shared, vgg_weights, ["discriminator.width=8", "discriminator.dense=16"], perceptual=True)
    assert main(["train", "-c", str(ROOT / "configs" / "srgan_x4.yaml"), *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "relu3_4" in err and "relu5_4" in err


def test_gan_phase_starts_from_the_phase1_export_and_records_validation(shared, vgg_weights, tmp_path):
    phase1 = tmp_path / "phase1"
    assert main(["train", "-c", str(ROOT / "configs" / "srresnet_x4.yaml"), *_small(shared, vgg_weights),
                 "train.iterations=2", f"validation.folder={shared / 'datasets' / 'Set5'}",
                 "validation.max_images=1", "--out", str(phase1)]) == 0
    meta = read_metadata(phase1 / "generator.safetensors")
    assert meta["val_psnr_y"] > 0 and meta["iterations"] == 2
    phase2, niqe_images = tmp_path / "phase2", tmp_path / "niqe"
    niqe_images.mkdir()
    shutil.copy(shared / "datasets" / "BSD100" / "3096.png", niqe_images)
    with Image.open(shared / "datasets" / "Set5" / "baby.png") as im:  # too small for NIQE: left out, not fatal
        im.crop((0, 0, 40, 40)).save(niqe_images / "small.png")
    niqe_model = shared / "weights" / "niqe_pris_params.npz"
    args = _small(shared, vgg_weights, ["discriminator.width=8", "discriminator.dense=16",
                                        "losses.perceptual.layers={relu3_4: 1.0}", "train.iterations=1",
                                        "optim.lr_g=1e-12", "train.ema=0.5", "train.precision=fp32",
                                        f"validation.folder={shared / 'datasets' / 'Set5'}", "validation.max_images=1",
                                        f"validation.niqe_folder={niqe_images}", f"validation.niqe_model={niqe_model}"],
                  perceptual=True)
    args[0] = f"model.init={phase1 / 'generator.safetensors'}"
    assert main(["train", "-c", str(ROOT / "configs" / "srgan_x4.yaml"), *args, "--out", str(phase2)]) == 0
    before, after = load_file(phase1 / "generator.safetensors"), load_file(phase2 / "generator.safetensors")
    # one step at lr 1e-12 barely moves the weights: the GAN phase really started from phase 1
    assert all(torch.allclose(before[k].float(), after[k].float(), atol=1e-6) for k in before
               if "running" not in k and "num_batches" not in k)
    # the NIQE the run logs is the one `srgan eval --niqe` gives its exported generator (to 5e-3: the two
    # paths' convolution kernels differ, and on an AMX Xeon a pixel rounded the other way moved it 2.5e-3)
    logged = re.search(r"NIQE on niqe: ([\d.]+)", (phase2 / "train.log").read_text()).group(1)
    scored = evaluate([str(phase2 / "generator.safetensors")], [niqe_images], 4, niqe_model=niqe_model,
                      progress=False, device="cpu")
    assert float(logged) == pytest.approx(scored.summary("niqe", str(phase2 / "generator.safetensors"))["niqe"],
                                          abs=5e-3)


def test_validation_on_given_lr_images_logs_lpips(shared, vgg_weights, tmp_path):
    """A real-world run validates on a fixed degraded copy (validation.lr_folder) and logs PSNR / SSIM /
    LPIPS as `srgan eval --lr --data` scores the exported generator, and NIQE on real photos without
    HR (validation.niqe_lr) as `srgan eval --lr` alone does: the photos themselves are the input, not
    their bicubic downscales."""
    hr_dir, lr_dir, photos = tmp_path / "hr", tmp_path / "lr", tmp_path / "photos"
    hr_dir.mkdir()
    lr_dir.mkdir()
    photos.mkdir()
    shutil.copy(shared / "datasets" / "RealSRSet" / "oldphoto2.png", photos)
    for name in ("3096.png", "8023.png"):
        with Image.open(shared / "datasets" / "BSD100" / name) as im:
            hr = im.convert("RGB").crop((0, 0, 128, 96))
        hr.save(hr_dir / name)
        hr.resize((32, 24), Image.Resampling.BOX).save(lr_dir / name.replace(".png", ".jpg"), quality=60)
    run = tmp_path / "run"
    args = _small(shared, vgg_weights, ["train.iterations=2", f"validation.folder={hr_dir}",
                                        f"validation.lr_folder={lr_dir}", "validation.lpips=true",
                                        f"validation.lpips_weights={shared / 'weights'}", "train.precision=fp32",
                                        f"validation.niqe_folder={photos}", "validation.niqe_lr=true"])
    assert main(["train", "-c", str(ROOT / "configs" / "srresnet_x4.yaml"), *args, "--out", str(run)]) == 0
    log = (run / "train.log").read_text()
    assert "LPIPS" in log
    niqe = float(re.search(r"NIQE on photos: ([\d.]+)", log).group(1))
    psnr, ssim, lpips = map(float, re.findall(r"^\s+mean\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", log, re.MULTILINE)[-1])
    generator = str(run / "generator.safetensors")
    scored = evaluate([generator], [hr_dir], 4, lr_folders=[lr_dir], metrics="psnr,ssim,lpips",
                      metric_weights=shared / "weights", progress=False, device="cpu").summary("hr", generator)
    assert psnr == pytest.approx(scored["psnr"], abs=0.01) and ssim == pytest.approx(scored["ssim"], abs=1e-4)
    assert lpips == pytest.approx(scored["lpips"], abs=5e-4)
    real = evaluate([generator], [], 4, lr_folders=[photos], metrics="niqe", progress=False, device="cpu")
    assert niqe == pytest.approx(real.summary("photos", generator)["niqe"], abs=5e-3)


def test_init_with_a_different_architecture_is_refused(shared, vgg_weights, tmp_path, capsys):
    other = tmp_path / "other.safetensors"
    srgan.save_model(srgan.create_model("srresnet_x4", blocks=2, width=8), other)
    args = _small(shared, vgg_weights)
    args[0] = f"model.init={other}"
    assert main(["train", "-c", str(ROOT / "configs" / "tiny.yaml"), *args, "--out", str(tmp_path / "r")]) == 2
    assert "different generator" in capsys.readouterr().err


def test_missing_data_folder_is_one_line(shared, vgg_weights, tmp_path, capsys):
    args = _small(shared, vgg_weights, [f"data.folders={tmp_path / 'nowhere'}"])
    assert main(["train", "-c", str(ROOT / "configs" / "tiny.yaml"), *args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "image folder not found" in err and "nowhere" in err


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(shared, vgg_weights, tmp_path, capsys):
    args = _small(shared, vgg_weights, ["optim.lr_g=1e30", "train.iterations=6", "train.checkpoint_every=1",
                                        "train.ema=0"])
    assert main(["train", "-c", str(ROOT / "configs" / "tiny.yaml"), *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "not finite" in err and "last good checkpoint" in err.lower()
    kept = list_checkpoints(tmp_path)
    assert kept, "the checkpoint written before the loss blew up must stay"
    state = load_checkpoint(kept[-1])
    assert all(torch.isfinite(v).all() for v in state["generator"].values() if v.is_floating_point())
    assert not (tmp_path / "generator.safetensors").exists()


_SLOW_AFTER = """
import sys, time
from srgan.training import trainer
step = trainer.Trainer.train_step
def slow(self, *a):
    out = step(self, *a)
    if self.iteration >= 3:
        time.sleep(1.0)  # leave time for the test to SIGKILL the run after the iteration-4 checkpoint
    return out
trainer.Trainer.train_step = slow
from srgan.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_sigkill_then_resume_auto_is_bit_identical(shared, vgg_weights, tmp_path):
    base = ["train", "-c", str(ROOT / "configs" / "tiny.yaml"),
            *_small(shared, vgg_weights, ["train.iterations=8", "train.checkpoint_every=2", "train.deterministic=true",
                                          "train.ema=0.9", "train.precision=fp32", "optim.schedule=cosine",
                                          "data.batch_size=3", "discriminator.type=vgg",
                                          "discriminator.width=8", "discriminator.dense=16",
                                          "losses.adversarial={type: bce, weight: 1e-3}"])]
    straight = tmp_path / "straight"
    assert subprocess.run([sys.executable, "-m", "srgan", *base, "--out", str(straight)], env=_env(),
                          capture_output=True, timeout=300, check=False).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_AFTER, *base, "--out", str(killed)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not (killed / "checkpoints" / "ckpt_000000004.pt").exists():
            assert proc.poll() is None and time.time() < deadline, "run ended before its iteration-4 checkpoint"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "generator.safetensors").exists()
    resumed = subprocess.run([sys.executable, "-m", "srgan", *base, "--out", str(killed), "--resume", "auto"],
                             env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    a, b = load_file(straight / "generator.safetensors"), load_file(killed / "generator.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ca = load_checkpoint(list_checkpoints(straight)[-1])
    cb = load_checkpoint(list_checkpoints(killed)[-1])
    assert all(torch.equal(ca["generator"][k], cb["generator"][k]) for k in ca["generator"])
    assert ca["opt_g"]["state"][0]["exp_avg_sq"].equal(cb["opt_g"]["state"][0]["exp_avg_sq"])
    assert all(torch.equal(ca["discriminator"][k], cb["discriminator"][k]) for k in ca["discriminator"])
    assert all(torch.equal(ca["ema"][k], cb["ema"][k]) for k in ca["ema"])


def test_resume_from_an_explicit_checkpoint_continues_the_count(shared, vgg_weights, tmp_path):
    args = ["train", "-c", str(ROOT / "configs" / "tiny.yaml"),
            *_small(shared, vgg_weights, ["train.iterations=2", "train.checkpoint_every=1"]), "--out", str(tmp_path)]
    assert main(args) == 0
    first = list_checkpoints(tmp_path)[0]
    assert main([*args[:-2], "train.iterations=4", "--out", str(tmp_path), "--resume", str(first)]) == 0
    assert read_metadata(tmp_path / "generator.safetensors")["iterations"] == 4
    assert main([*args[:-2], "--out", str(tmp_path), "--resume", str(tmp_path / "nope.pt")]) == 2


def test_resume_needs_no_init_file_the_checkpoint_holds_the_weights(shared, vgg_weights, tmp_path):
    init = tmp_path / "init.safetensors"
    srgan.save_model(srgan.create_model("srresnet_x4", blocks=1, width=8), init)
    args = ["train", "-c", str(ROOT / "configs" / "tiny.yaml"), *_small(shared, vgg_weights, ["train.iterations=2"]),
            f"model.init={init}", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    init.unlink()  # e.g. a later session on another machine, or the init file replaced
    assert main([*args[:-2], "train.iterations=3", "--out", str(tmp_path / "run"), "--resume", "auto"]) == 0
    assert read_metadata(tmp_path / "run" / "generator.safetensors")["iterations"] == 3
    assert main([*args[:-2], "--out", str(tmp_path / "fresh"), "--resume", "auto"]) == 2  # nothing to resume


def test_two_process_ddp_with_gloo(shared, vgg_weights, tmp_path):
    args = _small(shared, vgg_weights, ["discriminator.type=vgg", "discriminator.width=8",
                                        "discriminator.dense=16", "losses.adversarial={type: bce, weight: 1e-3}",
                                        "train.checkpoint_every=2"])
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "-m", "srgan", "train", "-c", str(ROOT / "configs" / "tiny.yaml"), *args,
                             "--out", str(tmp_path)], env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, [l for l in result.stderr.splitlines() if "srgan" in l][-5:]
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["generator.safetensors"]
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_000000002.pt", "ckpt_000000003.pt"]
    assert srgan.load_model(tmp_path / "generator.safetensors").config.blocks == 1
    assert result.stdout.count("generator.safetensors") == 1  # only rank 0 exports and prints


def test_tensorboard_scalars_and_text_log(shared, vgg_weights, tmp_path):
    pytest.importorskip("tensorboard")
    args = _small(shared, vgg_weights, ["train.tensorboard=true", "train.iterations=2", "validation.every=2",
                                        f"validation.folder={shared / 'datasets' / 'Set5'}", "validation.max_images=1"])
    assert main(["train", "-c", str(ROOT / "configs" / "tiny.yaml"), *args, "--out", str(tmp_path)]) == 0
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    log_text = (tmp_path / "train.log").read_text()
    assert "iter 2" in log_text and "it/s" in log_text and "PSNR-Y" in log_text and "baby" in log_text


def test_schedules_follow_the_config():
    from srgan.training.config import load_config
    from srgan.training.trainer import _lr_lambda

    cosine = _lr_lambda(load_config(None, ["train.iterations=100", "optim.schedule=cosine", "optim.min_lr=1e-6"]),
                        1e-4)
    assert cosine(0) == 1.0 and cosine(50) == pytest.approx(0.505) and cosine(100) == pytest.approx(0.01)
    multi = _lr_lambda(load_config(None, ["optim.schedule=multistep", "optim.milestones=[10, 20]"]), 1e-4)
    assert [multi(i) for i in (9, 10, 19, 20)] == pytest.approx([1.0, 0.1, 0.1, 0.01])


def test_ema_warms_up_then_averages():
    from srgan.training.trainer import EMA

    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, 0.99)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, 0)  # decay min(0.99, 1/10): the first update moves 90% of the way
    assert ema.model.weight.item() == pytest.approx(0.9)
    for step in range(1, 2000):
        ema.update(model, step)
    assert ema.model.weight.item() == pytest.approx(1.0, abs=1e-6)


def test_rgan_resumed_at_the_stage_boundary_matches_a_straight_run(shared, vgg_weights, tmp_path):
    import shutil

    args = ["train", "-c", str(ROOT / "configs" / "rgan_x4.yaml"),
            *_small(shared, vgg_weights, ["train.iterations=4", "recursive.stage1_iterations=2",
                                          "train.checkpoint_every=2", "train.deterministic=true",
                                          "discriminator.width=8", "discriminator.dense=16",
                                          "train.keep_checkpoints=5"])]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main([*args, "--out", str(straight)]) == 0
    boundary = list_checkpoints(straight)[0]
    assert boundary.name == "ckpt_000000002.pt" and "stage1" not in load_checkpoint(boundary)
    assert "stage1" in load_checkpoint(list_checkpoints(straight)[-1])
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(boundary, resumed / "checkpoints" / boundary.name)
    assert main([*args, "--out", str(resumed), "--resume", "auto"]) == 0
    for name in ("generator.safetensors", "stage1.safetensors"):
        a, b = load_file(straight / name), load_file(resumed / name)
        assert all(torch.equal(a[k], b[k]) for k in a)
    stage1, final = load_file(straight / "stage1.safetensors"), load_file(straight / "generator.safetensors")
    assert not all(torch.equal(stage1[k], final[k]) for k in stage1)  # stage 2 trained on
