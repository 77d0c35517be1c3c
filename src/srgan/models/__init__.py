"""Networks: generator architectures with their named presets (registry.py, one file per
architecture such as srresnet.py), weight files, discriminators and the VGG19 feature extractor."""

from srgan.models.generator import Generator, GeneratorConfig
from srgan.models.registry import (
    architectures,
    create,
    describe,
    names,
    preset_config,
    register,
    register_architecture,
)
from srgan.models.weights import load_model, save_model

__all__ = ["Generator", "GeneratorConfig", "architectures", "create", "describe", "load_model", "names",
           "preset_config", "register", "register_architecture", "save_model"]
