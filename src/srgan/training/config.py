"""Training configuration: one dataclass per section, read from YAML plus `key.sub=value` overrides.

Every key is checked against the dataclasses (`srgan.options`), so a typo or a wrong type stops the
run before it starts with one line naming the key (`train.iteratons`, `optim.lr_g: expected float,
got 'fast'`). Values on the command line are parsed as YAML scalars/lists (`data.folders=[a,b]`,
`train.ema=0.999`).

Loss terms and the discriminator are named BasicSR-style by a registered `type` with its options
beside it (`losses: {pixel: {type: l1, weight: 1.0}}`, `discriminator: {type: vgg, width: 64}`); the
valid types and their options come from the registries (`srgan.losses.registry`,
`srgan.models.discriminators`), so a new loss or discriminator needs no edit here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from srgan.errors import SrganError, one_line
from srgan.files import existing_file, os_reason
from srgan.hardware import PRECISIONS
from srgan.options import REQUIRED, check_options, convert, from_dict, parameters
from srgan.registry import Registry

MAX_CONFIG_BYTES = 1 << 20


@dataclass
class ModelConfig:
    """The generator: a preset from `srgan models`, field overrides, and optional starting weights.

    `init` is the phase-1 (pixel-loss SRResNet) weights file a GAN run starts from. With
    `init_strict: false` it may hold another generator (e.g. the x4 model for an x2 run): the tensors
    whose names and shapes match are transferred, the rest start fresh."""

    preset: str = "srresnet_x4"
    generator: dict[str, Any] = field(default_factory=dict)
    init: str | None = None
    init_strict: bool = True


@dataclass
class ColorJitterConfig:
    """Osnabrueck variant: brightness, saturation and darkening, each applied with probability `p`."""

    p: float = 0.0
    brightness: float = 0.2
    saturation: float = 0.2
    darken: float = 0.3


@dataclass
class DataConfig:
    folders: list[str] = field(default_factory=list)
    hr_crop: int = 96
    batch_size: int = 16
    flips: bool = True
    rotations: bool = True
    color_jitter: ColorJitterConfig = field(default_factory=ColorJitterConfig)
    small_images: Literal["pad", "skip"] = "pad"
    cache_mb: int = 2048
    workers: int = 0  # 0: load in the training process (fastest on a 2-core CPU; see dataset.py)
    quantize_lr: bool = True  # round LR to 8 bits like the evaluation protocol's uint8 LR images
    # how the LR input is made from the HR crop: {type: bicubic | realesrgan | bsrgan, options...}
    # (srgan.data.degradations); None is the benchmark protocol, MATLAB bicubic
    degradation: dict[str, Any] | None = None
    # Real-ESRGAN's unsharp-masked ground truth: degrade the sharpened crop and learn the sharpened
    # target for the content losses; the discriminator still sees the plain HR crop as real
    sharpen_hr: bool = False


@dataclass
class OptimConfig:
    """Adam for both networks (Ledig et al.: lr 1e-4, beta1 0.9) and one schedule shared by both."""

    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    schedule: Literal["constant", "step", "multistep", "cosine"] = "constant"
    step_size: int = 100_000
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    min_lr: float = 0.0
    warmup: int = 0  # linear learning-rate warm-up over this many first iterations (0 = none)
    d_steps: int = 1  # discriminator updates per generator update


@dataclass
class TrainConfig:
    iterations: int = 100_000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 2
    log_every: int = 100
    seed: int = 0
    precision: Literal[("auto", *PRECISIONS)] = "auto"  # auto: bf16 where native (srgan.hardware's table)
    channels_last: bool = True
    ema: float = 0.0  # EMA decay of the generator weights; 0 disables it
    grad_clip: float = 0.0  # max global gradient norm; 0 disables it
    deterministic: bool = False
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 keeps PyTorch's default
    out_dir: str | None = None  # default: runs/<config name>
    tensorboard: bool = False


@dataclass
class ValidationConfig:
    folder: str | None = None  # HR images (their LR made by MATLAB bicubic, unless lr_folder gives it)
    lr_folder: str | None = None  # LR images paired by name with `folder`, fed to the model as given (real-world)
    crop: int | None = None  # border pixels removed before scoring; default: the scale, 0 with lr_folder
    every: int = 1000
    max_images: int = 0  # 0: all
    lpips: bool = False  # also the mean LPIPS (AlexNet v0.1) against the HR, as `srgan eval` computes it
    lpips_weights: str | None = None  # folder or file of the LPIPS weights; default $SRGAN_WEIGHTS_DIR, torch hub
    niqe_folder: str | None = None  # also the mean NIQE of the output on this folder (a GAN's curve)
    niqe_model: str | None = None  # niqe_pris_params.npz to use instead of the shipped one
    niqe_lr: bool = False  # niqe_folder holds the model's inputs themselves (real photos, no HR), scored
    # uncropped as `srgan eval --lr DIR`; else its images are HR, bicubic-downscaled first as `--data DIR`


@dataclass
class DistributedConfig:
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    sync_bn: bool = False


@dataclass
class RecursiveConfig:
    """MIT "rGAN": an x2 generator trained twice. Stage 1 learns LR(x4 down) -> HR(x2 down); stage 2
    learns stage1(LR) -> HR, the generator starting from its stage-1 weights while a frozen copy of
    the stage-1 generator makes its inputs. Stage 1 is either trained in this run (`stage1_iterations`)
    or read from `stage1_weights`. The x4 result is the chain stage1 -> stage2."""

    enabled: bool = False
    stage1_iterations: int = 0
    stage1_weights: str | None = None


def _pixel_mse() -> dict[str, dict[str, Any] | None]:
    return {"pixel": {"type": "mse", "weight": 1.0}}


@dataclass
class Config:
    """`losses`: {term name: {type, weight (default 1), options...}}; the generator minimises the
    weighted sum of the terms, and the term names label them in the log. `discriminator`: None for
    phase 1 (no adversary), else {type, options...}; a GAN run needs one adversarial loss term.

    Validated when made (`validate`), from YAML or in Python alike, and trusted after that: change a
    made config with `dataclasses.replace`, which validates the new one."""

    name: str = "run"
    model: ModelConfig = field(default_factory=ModelConfig)
    discriminator: dict[str, Any] | None = None
    data: DataConfig = field(default_factory=DataConfig)
    losses: dict[str, dict[str, Any] | None] = field(default_factory=_pixel_mse)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    recursive: RecursiveConfig = field(default_factory=RecursiveConfig)

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def gan(self) -> bool:
        return self.discriminator is not None


# ---------------------------------------------------------------- loading and checking
def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config from a YAML file (or the defaults), with `key.sub=value` overrides applied."""
    import yaml

    raw: dict[str, Any] = {}
    name = "run"
    if path is not None:
        path = existing_file(path, "config file")
        raw = _read_with_base(path, ())
        name = path.stem
    raw.setdefault("name", name)
    raw.setdefault("losses", _pixel_mse())  # so that overrides edit the default terms, not replace them
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SrganError(f"override {item!r} is not key.sub=value")
        try:
            value = yaml.safe_load(text) if text else None
        except (yaml.YAMLError, RecursionError):
            value = text
        _set_dotted(raw, key.strip(), value)
    return from_dict(Config, raw)  # validated as it is made


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise SrganError(f"{path}: {path.stat().st_size:,d} bytes is too large for a YAML config")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise SrganError(f"{path}: not a text file (a YAML config is UTF-8 text)") from exc
    except OSError as exc:
        raise SrganError(f"{path}: cannot read this config file ({os_reason(exc)})") from exc
    except (yaml.YAMLError, RecursionError) as exc:
        raise SrganError(f"{path}: not valid YAML ({one_line(exc)})") from exc
    if not isinstance(raw, dict):
        raise SrganError(f"{path}: expected a mapping of sections at the top level, found {type(raw).__name__}")
    return raw


def _read_with_base(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """The file's mapping laid over the one its `base:` names (relative to the file, chains allowed),
    so that a study variant is the few lines that differ from a published config."""
    if path.resolve() in chain:
        raise SrganError(f"{path}: `base:` chain loops back to itself ({' -> '.join(p.name for p in chain)})")
    raw = _read_yaml(path)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base:
        raise SrganError(f"{path}: base: expected the path of another config file, got {base!r}")
    try:
        base_path = existing_file(path.parent / base, "base config")
    except SrganError as exc:
        raise SrganError(f"{path}: base: {exc}") from exc
    return merge_config(_read_with_base(base_path, (*chain, path.resolve())), raw)


def merge_config(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid over `base`: mappings merge key by key, everything else is replaced. A mapping with
    a `type` (a loss term, the discriminator) replaces the base's whole, since its options belong to
    its type; `null` clears a key (no discriminator, a loss term removed)."""
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and "type" not in value:
            merged[key] = merge_config(old, value)
        else:
            merged[key] = value
    return merged


def config_changes(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """One line per key whose value differs between two `Config.to_dict()`s ("optim.lr_g: 0.0001 -> 0.0002"),
    for the log of a resumed run; keys only one side has show `(absent)` on the other."""
    lines = []
    for key in [*saved, *(k for k in current if k not in saved)]:
        old, new = saved.get(key, _ABSENT), current.get(key, _ABSENT)
        if isinstance(old, dict) and isinstance(new, dict) and old and new:
            lines += config_changes(old, new, f"{prefix}{key}.")
        elif old != new:
            lines.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return lines


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SrganError(f"{'.'.join(parts[:i + 1])} is not a section, cannot set {key}")
        node = child
    node[parts[-1]] = value


def validate(config: Config) -> None:
    """Cross-field checks that single types cannot express; the generator overrides, loss terms and
    discriminator are checked against their registries and stored with their values converted, and
    the generator config of the run is resolved (once: `generator_config`)."""
    from srgan.models.registry import PRESETS

    base = PRESETS.get(config.model.preset, "model.preset")()
    config.model.generator = check_options(type(base), config.model.generator, prefix="model.generator.",
                                           partial=True)
    config._generator = base.replace(**config.model.generator)
    scale = data_scale(config)
    if config.data.hr_crop <= 0 or config.data.hr_crop % scale:
        raise SrganError(f"data.hr_crop: must be a positive multiple of the scale {scale}, got {config.data.hr_crop}")
    d, o, t, j = config.data, config.optim, config.train, config.data.color_jitter
    for key, value, low, high in (  # inclusive bounds; None: unbounded
            ("data.batch_size", d.batch_size, 1, None), ("data.workers", d.workers, 0, None),
            ("data.cache_mb", d.cache_mb, 0, None), ("data.color_jitter.p", j.p, 0, 1),
            ("data.color_jitter.brightness", j.brightness, 0, 1), ("data.color_jitter.saturation", j.saturation, 0, 1),
            ("data.color_jitter.darken", j.darken, 0, 1), ("optim.weight_decay", o.weight_decay, 0, None),
            ("optim.step_size", o.step_size, 1, None), ("optim.gamma", o.gamma, 0, None),
            ("optim.min_lr", o.min_lr, 0, None), ("optim.warmup", o.warmup, 0, None),
            ("optim.d_steps", o.d_steps, 1, None), ("train.iterations", t.iterations, 1, None),
            ("train.checkpoint_every", t.checkpoint_every, 1, None), ("train.keep_checkpoints", t.keep_checkpoints, 0, None),
            ("train.log_every", t.log_every, 1, None), ("train.seed", t.seed, 0, 2**63 - 1),
            ("train.grad_clip", t.grad_clip, 0, None), ("train.threads", t.threads, 0, None),
            ("validation.every", config.validation.every, 1, None),
            ("validation.max_images", config.validation.max_images, 0, None),
            ("recursive.stage1_iterations", config.recursive.stage1_iterations, 0, None)):
        if value < low or (high is not None and value > high):
            raise SrganError(f"{key}: must be " + (f"between {low} and {high}" if high is not None else f"at least {low}")
                             + f", got {value}")
    if not 0.0 <= t.ema < 1.0:
        raise SrganError(f"train.ema: the EMA decay must be in [0, 1), got {t.ema}")
    if len(o.betas) != 2 or not all(0.0 <= b < 1.0 for b in o.betas):
        raise SrganError(f"optim.betas: expected two numbers in [0, 1), got {o.betas}")
    if o.lr_g <= 0 or o.lr_d <= 0:
        raise SrganError(f"optim.lr_g and optim.lr_d must be positive, got {o.lr_g} and {o.lr_d}")
    if any(m < 0 for m in o.milestones):
        raise SrganError(f"optim.milestones: iterations must not be negative, got {o.milestones}")
    _check_validation(config.validation)
    _check_losses_and_discriminator(config)
    if d.degradation is not None:
        from srgan.data.degradations import DEGRADATIONS

        d.degradation = _typed(DEGRADATIONS, d.degradation, "data.degradation")
    rec = config.recursive
    if rec.enabled:
        if generator_config(config).scale != 2:
            raise SrganError("recursive.enabled: the rGAN mode trains an x2 generator (use an x2 preset)")
        if rec.stage1_weights is None and rec.stage1_iterations < 1:
            raise SrganError("recursive: set recursive.stage1_iterations or recursive.stage1_weights")
        if rec.stage1_iterations >= config.train.iterations:
            raise SrganError("recursive.stage1_iterations must be below train.iterations")


def _check_validation(v: ValidationConfig) -> None:
    for key in ("niqe_model", "niqe_lr"):
        if getattr(v, key) and not v.niqe_folder:
            raise SrganError(f"validation.{key} needs validation.niqe_folder (the folder whose outputs NIQE scores)")
    for key in ("lr_folder", "lpips", "crop", "lpips_weights"):
        if getattr(v, key) not in (None, False) and not v.folder:
            raise SrganError(f"validation.{key} needs validation.folder (the HR images)")
    if v.crop is not None and v.crop < 0:
        raise SrganError(f"validation.crop must be >= 0, got {v.crop}")


def _check_losses_and_discriminator(config: Config) -> None:
    from srgan.losses.registry import LOSSES, is_adversarial
    from srgan.models.discriminators import DISCRIMINATORS

    config.losses = {name: _typed(LOSSES, spec, f"losses.{name}", weighted=True)
                     for name, spec in config.losses.items() if spec is not None}  # null removes a term
    if config.discriminator is not None:
        config.discriminator = _typed(DISCRIMINATORS, config.discriminator, "discriminator")
    adversarial = [name for name, term in config.losses.items() if is_adversarial(term["type"])]
    if len(adversarial) > 1:
        raise SrganError(f"losses: one adversarial term at most, got {' and '.join(adversarial)}")
    if adversarial and not config.gan:
        raise SrganError(f"losses.{adversarial[0]} is an adversarial loss but there is no discriminator: "
                         f"set discriminator.type ({', '.join(DISCRIMINATORS.names())}) or remove the term")
    if config.gan and not adversarial:
        kinds = ", ".join(n for n in LOSSES.names() if is_adversarial(n))
        raise SrganError(f"discriminator: a GAN run needs an adversarial loss term, e.g. "
                         f"losses.adversarial={{type: bce, weight: 1.0e-3}} (types: {kinds})")
    if not any(term["weight"] > 0 for term in config.losses.values()):
        raise SrganError("losses: no term has a positive weight, nothing to train")


def _typed(registry: Registry, spec: Any, where: str, weighted: bool = False) -> dict[str, Any]:
    """{type, [weight,] options...} with the type known, its options checked and converted, and the
    options not given set to their defaults."""
    if not isinstance(spec, dict):
        raise SrganError(f"{where}: expected a mapping with a type, got {spec!r}")
    options = dict(spec)
    if "kind" in options:  # the form before the registries
        kind = options["kind"]
        raise SrganError(f"{where}.kind: `kind: none` is now no {where} section" if kind == "none" else
                         f"{where}.kind: `kind: {kind}` is now `type: {kind}`, with the options beside it")
    if "type" not in options:
        raise SrganError(f"{where}.type: missing (known: {', '.join(registry.names())})")
    kind = options.pop("type")
    if not isinstance(kind, str):
        raise SrganError(f"{where}.type: expected a name, got {kind!r}")
    head: dict[str, Any] = {"type": kind}
    if weighted:
        head["weight"] = convert(float, options.pop("weight", 1.0), f"{where}.weight")
        if head["weight"] < 0:
            raise SrganError(f"{where}.weight: must not be negative, got {head['weight']}")
    checked = registry.options(kind, options, prefix=f"{where}.")
    defaults = {k: list(d) if isinstance(d, tuple) else d  # lists, as a saved config reads back
                for k, (_, d) in parameters(registry.get(kind)).items() if d is not REQUIRED}
    return {**head, **defaults, **checked}  # defaults spelled out, so a saved config says everything


def generator_config(config: Config) -> Any:
    """The run's generator config: the preset with the overrides, resolved when the config was made."""
    return config._generator


def data_scale(config: Config) -> int:
    """Down-scaling from HR crop to network input: x4 for rGAN (two x2 passes), else the model's."""
    scale = generator_config(config).scale
    return scale * scale if config.recursive.enabled else scale
