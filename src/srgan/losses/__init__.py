"""Training objectives: pixel, SSIM, VGG19 perceptual and adversarial losses."""
