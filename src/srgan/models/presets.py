"""Every published SRGAN generator variant as a few lines of configuration.

Parameter counts are for the default 3-channel network and are checked by the tests.
"""

from srgan.models.generator import GeneratorConfig
from srgan.models.registry import register


@register
def srresnet_x4() -> GeneratorConfig:
    """Ledig et al. 2017 SRResNet/SRGAN x4: 16 blocks, BN, PixelShuffle, 9x9 head/tail; 1,549,462 parameters."""
    return GeneratorConfig(scale=4)


@register
def srresnet_x2() -> GeneratorConfig:
    """Ledig et al. 2017 architecture at x2 (one PixelShuffle stage); 1,401,749 parameters."""
    return GeneratorConfig(scale=2)


@register
def fpt_x4() -> GeneratorConfig:
    """FPT report (Pham & Nguyen): 20 blocks, reflect ("symmetric") padding, BN momentum 0.5, nearest+conv x4; 1,624,346 parameters."""
    return GeneratorConfig(scale=4, blocks=20, padding="reflect", bn_momentum=0.5, upsampler="nearest")


@register
def keras_x4() -> GeneratorConfig:
    """Keras SRGAN slides (Cheung): 16 blocks, nearest upsampling + conv, BN momentum 0.5, trained 32->128; 1,327,894 parameters."""
    return GeneratorConfig(scale=4, bn_momentum=0.5, upsampler="nearest")


@register
def ssim_x4() -> GeneratorConfig:
    """IIIT SSIM-loss report (Shreyas et al.): 20 blocks, otherwise Ledig x4; 1,845,914 parameters."""
    return GeneratorConfig(scale=4, blocks=20)


@register
def ssim_x2() -> GeneratorConfig:
    """IIIT SSIM-loss report (Shreyas et al.): 20 blocks, otherwise Ledig x2; 1,698,201 parameters."""
    return GeneratorConfig(scale=2, blocks=20)


@register
def mit_x4() -> GeneratorConfig:
    """MIT report (Zheng, Du, Li): 16 blocks, transposed-convolution ("deconvolution") x4; 1,385,238 parameters."""
    return GeneratorConfig(scale=4, upsampler="transposed")


@register
def mit_x2() -> GeneratorConfig:
    """MIT report (Zheng, Du, Li): 16 blocks, transposed-convolution ("deconvolution") x2; 1,319,637 parameters."""
    return GeneratorConfig(scale=2, upsampler="transposed")


@register
def uos_x4() -> GeneratorConfig:
    """Osnabrueck report (ben Ahmed, Hoffmann, Zielinski): 8 blocks, conv + transposed-conv x4; 866,190 parameters."""
    return GeneratorConfig(scale=4, blocks=8, upsampler="transposed", upsample_pre_conv=True)


@register
def srresnet_nobn_x4() -> GeneratorConfig:
    """Ledig x4 without batch norm (as ESRGAN and BasicSR's MSRResNet found, BN costs PSNR and adds artefacts); 1,545,238 parameters."""
    return GeneratorConfig(scale=4, batch_norm=False)


@register
def srresnet_nobn_x2() -> GeneratorConfig:
    """Ledig x2 without batch norm; the trunk transfers from srresnet_nobn_x4 (as EDSR did); 1,397,525 parameters."""
    return GeneratorConfig(scale=2, batch_norm=False)
