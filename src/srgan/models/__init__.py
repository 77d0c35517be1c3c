"""Networks: the generator with its named presets, discriminators and the VGG19 feature extractor."""

from srgan.models.generator import Generator, GeneratorConfig
from srgan.models.registry import create, describe, names, preset_config
from srgan.models.weights import load_model, save_model

__all__ = ["Generator", "GeneratorConfig", "create", "describe", "load_model", "names", "preset_config", "save_model"]

from srgan.models.discriminator import VGGStyleDiscriminator
from srgan.models.discriminators import build_discriminator
from srgan.models.spectral_discriminator import CombinedDiscriminator, FFTDiscriminator
from srgan.models.vgg import VGG19Features

__all__ += ["CombinedDiscriminator", "FFTDiscriminator", "VGG19Features", "VGGStyleDiscriminator", "build_discriminator"]
