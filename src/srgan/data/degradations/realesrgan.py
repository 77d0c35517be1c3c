"""Real-ESRGAN's second-order degradation model (Wang et al., "Real-ESRGAN: Training Real-World Blind
Super-Resolution with Pure Synthetic Data", ICCVW 2021, section 3 and Fig. 2), with every default
range of its published training options (`options/train_realesrnet_x4plus.yml` of the authors'
repository; the GAN stage's file has the same degradation settings).

Each of two stages: blur (a kernel of odd size 7-21 from six families, or a sinc kernel), a random
resize (up / down / keep, area / bilinear / bicubic), Gaussian or Poisson noise (gray with its own
probability), JPEG; the second stage's blur is skipped with probability 1 - `second_blur_prob`. The
second stage's resize aims at the LR size times its factor; the end resizes to the LR size and adds
the sinc filter that imitates ringing, before or after the last JPEG with equal odds.

Differences, on purpose: JPEG is Pillow's real encoder at an integer quality (the authors use a
differentiable approximation on the GPU, with float qualities); the steps run on one CPU sample in
the data-loader workers, with the sample's generator, instead of on a GPU batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from srgan.data.degradations import kernels, register_degradation, steps
from srgan.imaging.quantize import round_to_8bit

KERNEL_SIZES = tuple(range(7, 22, 2))
KERNEL_PADDED = 21


class Stage:
    """One degradation stage's ranges (blur, resize, noise, JPEG)."""

    def __init__(self, *, kernel_probs: list[float], sinc_prob: float, sigma: list[float],
                 beta_generalized: list[float], beta_plateau: list[float], resize_probs: list[float],
                 resize_range: list[float], gaussian_noise_prob: float, noise_range: list[float],
                 poisson_scale_range: list[float], gray_noise_prob: float, jpeg_range: list[float]) -> None:
        self.kernel_probs, self.sinc_prob = kernel_probs, sinc_prob
        self.sigma, self.beta_generalized, self.beta_plateau = tuple(sigma), tuple(beta_generalized), tuple(beta_plateau)
        self.resize_probs, self.resize_range = resize_probs, resize_range
        self.gaussian_noise_prob, self.noise_range = gaussian_noise_prob, noise_range
        self.poisson_scale_range, self.gray_noise_prob, self.jpeg_range = poisson_scale_range, gray_noise_prob, jpeg_range

    def kernel(self, rng: np.random.Generator) -> np.ndarray:
        size = int(rng.choice(KERNEL_SIZES))
        if rng.random() < self.sinc_prob:
            low = math.pi / 3 if size < 13 else math.pi / 5  # small kernels cannot hold low cut-offs
            return kernels.sinc(size, float(rng.uniform(low, math.pi)))
        return kernels.random_mixed(rng, size, probabilities=self.kernel_probs, sigma=self.sigma,
                                    beta_generalized=self.beta_generalized, beta_plateau=self.beta_plateau)

    def resize_factor(self, rng: np.random.Generator) -> float:
        direction = int(rng.choice(3, p=np.asarray(self.resize_probs) / sum(self.resize_probs)))
        if direction == 0:
            return float(rng.uniform(1.0, self.resize_range[1]))
        if direction == 1:
            return float(rng.uniform(self.resize_range[0], 1.0))
        return 1.0

    def noise(self, image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        gaussian = rng.random() < self.gaussian_noise_prob
        gray = rng.random() < self.gray_noise_prob
        if gaussian:
            return steps.gaussian_noise(image, float(rng.uniform(*self.noise_range)) / 255.0, gray, rng)
        return steps.poisson_noise(image, float(rng.uniform(*self.poisson_scale_range)), gray, rng)

    def jpeg(self, image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return steps.jpeg(image, round(rng.uniform(*self.jpeg_range)))


def _mode(rng: np.random.Generator) -> str:
    return steps.RESIZE_MODES[int(rng.integers(len(steps.RESIZE_MODES)))]


class RealESRGANDegradation:
    def __init__(self, first: Stage, second: Stage, second_blur_prob: float, final_sinc_prob: float) -> None:
        self.first, self.second = first, second
        self.second_blur_prob, self.final_sinc_prob = second_blur_prob, final_sinc_prob

    def __call__(self, hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
        h, w = hr.shape[-2:]
        lr_size = (h // scale, w // scale)
        # first order
        out = steps.blur(hr, self.first.kernel(rng))
        factor = self.first.resize_factor(rng)
        out = steps.resize(out, (int(h * factor), int(w * factor)), _mode(rng))
        out = self.first.jpeg(self.first.noise(out, rng), rng)
        # second order: its resize is relative to the LR size
        if rng.random() < self.second_blur_prob:
            out = steps.blur(out, self.second.kernel(rng))
        factor = self.second.resize_factor(rng)
        out = steps.resize(out, (int(lr_size[0] * factor), int(lr_size[1] * factor)), _mode(rng))
        out = self.second.noise(out, rng)
        # the last resize to the LR size with the sinc filter, before or after the last JPEG
        final = self._final_kernel(rng)
        if rng.random() < 0.5:
            out = steps.blur(steps.resize(out, lr_size, _mode(rng)), final)
            out = self.second.jpeg(out, rng)
        else:
            out = self.second.jpeg(out, rng)
            out = steps.blur(steps.resize(out, lr_size, _mode(rng)), final)
        return round_to_8bit(out.clamp_(0.0, 1.0))

    def _final_kernel(self, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.final_sinc_prob:
            size = int(rng.choice(KERNEL_SIZES))
            return kernels.sinc(size, float(rng.uniform(math.pi / 3, math.pi)))
        return np.ones((1, 1))  # the identity


@register_degradation("realesrgan")
def realesrgan(
    kernel_probs: list[float] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03),  # over kernels.KERNEL_FAMILIES
    sinc_prob: float = 0.1, blur_sigma: list[float] = (0.2, 3.0),
    betag_range: list[float] = (0.5, 4.0), betap_range: list[float] = (1.0, 2.0),
    resize_prob: list[float] = (0.2, 0.7, 0.1), resize_range: list[float] = (0.15, 1.5),  # up, down, keep
    gaussian_noise_prob: float = 0.5, noise_range: list[float] = (1.0, 30.0),
    poisson_scale_range: list[float] = (0.05, 3.0), gray_noise_prob: float = 0.4,
    jpeg_range: list[float] = (30.0, 95.0),
    second_blur_prob: float = 0.8, sinc_prob2: float = 0.1, blur_sigma2: list[float] = (0.2, 1.5),
    resize_prob2: list[float] = (0.3, 0.4, 0.3), resize_range2: list[float] = (0.3, 1.2),
    gaussian_noise_prob2: float = 0.5, noise_range2: list[float] = (1.0, 25.0),
    poisson_scale_range2: list[float] = (0.05, 2.5), gray_noise_prob2: float = 0.4,
    jpeg_range2: list[float] = (30.0, 95.0), final_sinc_prob: float = 0.8,
) -> RealESRGANDegradation:
    """Real-ESRGAN's degradation; option names and defaults as in its training option files."""
    first = Stage(kernel_probs=list(kernel_probs), sinc_prob=sinc_prob, sigma=list(blur_sigma),
                  beta_generalized=list(betag_range), beta_plateau=list(betap_range),
                  resize_probs=list(resize_prob), resize_range=list(resize_range),
                  gaussian_noise_prob=gaussian_noise_prob, noise_range=list(noise_range),
                  poisson_scale_range=list(poisson_scale_range), gray_noise_prob=gray_noise_prob,
                  jpeg_range=list(jpeg_range))
    second = Stage(kernel_probs=list(kernel_probs), sinc_prob=sinc_prob2, sigma=list(blur_sigma2),
                   beta_generalized=list(betag_range), beta_plateau=list(betap_range),
                   resize_probs=list(resize_prob2), resize_range=list(resize_range2),
                   gaussian_noise_prob=gaussian_noise_prob2, noise_range=list(noise_range2),
                   poisson_scale_range=list(poisson_scale_range2), gray_noise_prob=gray_noise_prob2,
                   jpeg_range=list(jpeg_range2))
    return RealESRGANDegradation(first, second, second_blur_prob, final_sinc_prob)
