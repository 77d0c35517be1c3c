"""Full-reference (PSNR, SSIM on the Y channel, as the papers compute them) and no-reference (NIQE) metrics."""
