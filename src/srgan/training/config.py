"""Training configuration: one dataclass per section, read from YAML plus `key.sub=value` overrides.

Every key is checked against the dataclasses, so a typo or a wrong type stops the run before it
starts with one line naming the key (`train.iteratons`, `optim.lr_g: expected float, got 'fast'`).
Values on the command line are parsed as YAML scalars/lists (`data.folders=[a,b]`, `train.ema=0.999`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from srgan.errors import SrganError, one_line


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
class DiscriminatorConfig:
    """`kind: none` is phase 1 (no adversary); vgg is Ledig's conv net, fft the MIT "fftGAN" one,
    both sums the two adversarial terms. `options` go to `build_discriminator` unchanged."""

    kind: Literal["none", "vgg", "fft", "both"] = "none"
    options: dict[str, Any] = field(default_factory=dict)


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


@dataclass
class PixelLossConfig:
    kind: Literal["mse", "l1", "charbonnier"] = "mse"
    weight: float = 1.0
    eps: float = 1e-3  # Charbonnier epsilon


@dataclass
class SSIMLossConfig:
    weight: float = 0.0


@dataclass
class PerceptualLossConfig:
    """VGG19 feature loss. `layers` maps layer names (relu2_2, relu5_4, ...) to weights. `weights_path`
    is a VGG19 safetensors file; the shared partial file only reaches relu3_4."""

    weight: float = 0.0
    layers: dict[str, float] = field(default_factory=lambda: {"relu5_4": 1.0})
    criterion: Literal["mse", "l1"] = "mse"
    weights_path: str | None = None
    feature_scale: float = 1.0 / 12.75  # Ledig et al. 2017: VGG feature maps rescaled by 1/12.75


@dataclass
class AdversarialLossConfig:
    kind: Literal["bce", "lsgan", "hinge", "ragan"] = "bce"
    weight: float = 1e-3


@dataclass
class LossesConfig:
    pixel: PixelLossConfig = field(default_factory=PixelLossConfig)
    ssim: SSIMLossConfig = field(default_factory=SSIMLossConfig)
    perceptual: PerceptualLossConfig = field(default_factory=PerceptualLossConfig)
    adversarial: AdversarialLossConfig = field(default_factory=AdversarialLossConfig)


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
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 where native (srgan.hardware)
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
    folder: str | None = None
    every: int = 1000
    max_images: int = 0  # 0: all


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


@dataclass
class Config:
    name: str = "run"
    model: ModelConfig = field(default_factory=ModelConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    data: DataConfig = field(default_factory=DataConfig)
    losses: LossesConfig = field(default_factory=LossesConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    recursive: RecursiveConfig = field(default_factory=RecursiveConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def gan(self) -> bool:
        return self.discriminator.kind != "none"


# ---------------------------------------------------------------- loading and checking
def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config from a YAML file (or the defaults), with `key.sub=value` overrides applied."""
    import yaml

    raw: dict[str, Any] = {}
    name = "run"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise SrganError(f"config file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SrganError(f"{path}: not valid YAML ({one_line(exc)})") from None
        if not isinstance(raw, dict):
            raise SrganError(f"{path}: expected a mapping of sections at the top level")
        name = path.stem
    raw.setdefault("name", name)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SrganError(f"override {item!r} is not key.sub=value")
        try:
            value = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            value = text
        _set_dotted(raw, key.strip(), value)
    config = from_dict(Config, raw)
    validate(config)
    return config


def config_from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a `Config` saved with `to_dict()` (e.g. inside a checkpoint)."""
    config = from_dict(Config, values)
    validate(config)
    return config


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SrganError(f"{'.'.join(parts[:i + 1])} is not a section, cannot set {key}")
        node = child
    node[parts[-1]] = value


def from_dict(cls: type, values: Any, prefix: str = "") -> Any:
    if not isinstance(values, dict):
        raise SrganError(f"{prefix or 'config'}: expected a section (mapping), got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            where = f"{prefix}.{key}" if prefix else str(key)
            raise SrganError(f"unknown config key {where!r} (known in {prefix or 'top level'}: "
                             f"{', '.join(sorted(known))})")
    kwargs = {}
    for key, value in values.items():
        where = f"{prefix}.{key}" if prefix else key
        kwargs[key] = _convert(hints[key], value, where)
    return cls(**kwargs)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value if value is not None else {}, where)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except SrganError as exc:
                errors.append(str(exc))
        raise SrganError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise SrganError(f"{where}: expected one of {', '.join(map(str, allowed))}, got {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single folder or milestone
        if not isinstance(value, (list, tuple)):
            raise SrganError(f"{where}: expected a list, got {value!r}")
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, value_tp = typing.get_args(tp)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise SrganError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _convert(value_tp, v, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 1e5 in YAML
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str and isinstance(value, str):
        return value
    raise SrganError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def validate(config: Config) -> None:
    """Cross-field checks that single types cannot express."""
    from srgan.models.generator import GeneratorConfig
    from srgan.models.registry import names

    if config.model.preset not in names():
        raise SrganError(f"model.preset: unknown preset {config.model.preset!r} (known: {', '.join(names())})")
    known = {f.name for f in dataclasses.fields(GeneratorConfig)}
    for key in config.model.generator:
        if key not in known:
            raise SrganError(f"unknown config key 'model.generator.{key}' (known: {', '.join(sorted(known))})")
    scale = data_scale(config)
    if config.data.hr_crop <= 0 or config.data.hr_crop % scale:
        raise SrganError(f"data.hr_crop: must be a positive multiple of the scale {scale}, got {config.data.hr_crop}")
    positive = {"data.batch_size": config.data.batch_size, "train.iterations": config.train.iterations,
                "train.checkpoint_every": config.train.checkpoint_every, "train.log_every": config.train.log_every,
                "validation.every": config.validation.every, "optim.d_steps": config.optim.d_steps}
    for key, value in positive.items():
        if value < 1:
            raise SrganError(f"{key}: must be at least 1, got {value}")
    if config.data.workers < 0 or config.data.cache_mb < 0 or config.optim.warmup < 0:
        raise SrganError("data.workers, data.cache_mb and optim.warmup must not be negative")
    if not 0.0 <= config.train.ema < 1.0:
        raise SrganError(f"train.ema: the EMA decay must be in [0, 1), got {config.train.ema}")
    if len(config.optim.betas) != 2:
        raise SrganError(f"optim.betas: expected two numbers, got {config.optim.betas}")
    if config.optim.lr_g <= 0 or config.optim.lr_d <= 0:
        raise SrganError("optim.lr_g and optim.lr_d must be positive")
    terms = [config.losses.pixel.weight, config.losses.ssim.weight, config.losses.perceptual.weight]
    if not any(w > 0 for w in terms) and not (config.gan and config.losses.adversarial.weight > 0):
        raise SrganError("losses: every loss weight is 0, nothing to train")
    if config.losses.perceptual.weight > 0 and not config.losses.perceptual.layers:
        raise SrganError("losses.perceptual.layers: name at least one VGG19 layer")
    rec = config.recursive
    if rec.enabled:
        if generator_config(config).scale != 2:
            raise SrganError("recursive.enabled: the rGAN mode trains an x2 generator (use an x2 preset)")
        if rec.stage1_weights is None and rec.stage1_iterations < 1:
            raise SrganError("recursive: set recursive.stage1_iterations or recursive.stage1_weights")
        if rec.stage1_iterations >= config.train.iterations:
            raise SrganError("recursive.stage1_iterations must be below train.iterations")


def generator_config(config: Config) -> Any:
    from srgan.models.registry import preset_config

    return preset_config(config.model.preset, **config.model.generator)


def data_scale(config: Config) -> int:
    """Down-scaling from HR crop to network input: x4 for rGAN (two x2 passes), else the model's."""
    scale = generator_config(config).scale
    return scale * scale if config.recursive.enabled else scale
