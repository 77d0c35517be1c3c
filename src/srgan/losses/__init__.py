"""Training objectives, one file per family (pixel, SSIM, VGG perceptual, adversarial), each loss
registered by its `type:` name in `srgan.losses.registry`."""
