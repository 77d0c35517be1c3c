"""BSRGAN's degradation model (Zhang et al., "Designing a Practical Degradation Model for Deep Blind
Image Super-Resolution", ICCV 2021, section 3 and Fig. 2; `degradation_bsrgan` of the authors' KAIR
code): blur twice (isotropic and anisotropic Gaussians), downsample, Gaussian noise (channel-
independent, gray, or with a random 3x3 channel covariance), JPEG, in a random order, then JPEG again.

For x4, with probability 1/4 the image is first halved (bilinear, bicubic, area or MATLAB bicubic)
and the rest works at x2. The downsample is then split in two: `down2` shrinks by a random factor in
[1, 2 sf] (or blurs with a shifted Gaussian and keeps every sf-th pixel), `down3` resizes to the LR
size; the order is shuffled with `down3` kept after `down2`. The camera ISP step needs the authors'
ISP model and is left out, as in their code when no model is given. The shifted-kernel step uses
linear interpolation by `scipy.ndimage.map_coordinates` instead of the removed `interp2d`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

from srgan.data.degradations import kernels, register_degradation, steps
from srgan.imaging.imresize import imresize
from srgan.imaging.quantize import round_to_8bit


def _blur(image: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
    """BSRGAN's add_blur: an anisotropic Gaussian given by its covariance's eigenvalues (<= 4 + sf)
    or an isotropic one (sigma <= 2 + 0.2 sf), of odd size 7-25."""
    if rng.random() < 0.5:
        wide = 4.0 + scale
        size = 2 * int(rng.integers(2, 12)) + 3
        theta, l1, l2 = rng.random() * math.pi, wide * rng.random(), wide * rng.random()
        v = np.array([math.cos(theta), math.sin(theta)])
        basis = np.array([[v[0], v[1]], [v[1], -v[0]]])
        cov = basis @ np.diag([max(l1, 1e-3), max(l2, 1e-3)]) @ np.linalg.inv(basis)
        kernel = kernels.gaussian(size, cov)
    else:
        size = 2 * int(rng.integers(2, 12)) + 3
        kernel = kernels.fspecial_gaussian(size, max((2.0 + 0.2 * scale) * rng.random(), 1e-3))
    return steps.blur(image, kernel)


def _shift(kernel: np.ndarray, scale: int) -> np.ndarray:
    """The kernel moved by (sf - 1) / 2 pixels to the upper left, so that keeping every sf-th pixel
    samples the centre of each sf x sf block (BSRGAN's shift_pixel), renormalised."""
    h, w = kernel.shape
    shift = (scale - 1) * 0.5
    ys = np.clip(np.arange(h) + shift, 0, h - 1)
    xs = np.clip(np.arange(w) + shift, 0, w - 1)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    moved = ndimage.map_coordinates(kernel, [yy, xx], order=1, mode="nearest")
    return moved / moved.sum()


def _noise(image: torch.Tensor, rng: np.random.Generator, low: int = 2, high: int = 25) -> torch.Tensor:
    level = int(rng.integers(low, high + 1)) / 255.0
    draw = rng.random()
    if draw > 0.6:  # colour: each channel its own noise
        return steps.gaussian_noise(image, level, False, rng)
    if draw < 0.4:  # gray
        return steps.gaussian_noise(image, level, True, rng)
    # channel-correlated: covariance U' D U with a random orthonormal U and diagonal D in [0, 1)
    diag = np.diag(rng.random(3))
    basis, _ = np.linalg.qr(rng.random((3, 3)))
    cov = np.abs((high / 255.0) ** 2 * basis.T @ diag @ basis)
    noise = rng.multivariate_normal(np.zeros(3), cov, size=image.shape[1:], method="eigh")
    return (image + torch.from_numpy(noise.astype(np.float32)).permute(2, 0, 1)).clamp_(0.0, 1.0)


def _jpeg(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    return steps.jpeg(image, int(rng.integers(30, 96)))


def _mode(rng: np.random.Generator) -> str:
    return ("bilinear", "bicubic", "area")[int(rng.integers(3))]


class BSRGANDegradation:
    def __init__(self, jpeg_prob: float, scale2_prob: float) -> None:
        self.jpeg_prob, self.scale2_prob = jpeg_prob, scale2_prob

    def __call__(self, hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
        h, w = hr.shape[-2:]
        lr_size = (h // scale, w // scale)
        out, sf = hr, scale
        if scale == 4 and rng.random() < self.scale2_prob:  # first halve, then work at x2
            if rng.random() < 0.5:
                out = steps.resize(out, (h // 2, w // 2), _mode(rng))
            else:
                out = imresize(out, 0.5)
            out, sf = out.clamp_(0.0, 1.0), 2
        order = [int(i) for i in rng.permutation(7)]
        i2, i3 = order.index(2), order.index(3)
        if i2 > i3:  # down3 (to the LR size) after down2
            order[i2], order[i3] = order[i3], order[i2]
        for step in order:
            if step in (0, 1):
                out = _blur(out, sf, rng)
            elif step == 2:
                out = self._down2(out, sf, rng)
            elif step == 3:
                out = steps.resize(out, lr_size, _mode(rng)).clamp_(0.0, 1.0)
            elif step == 4:
                out = _noise(out, rng)
            elif step == 5 and rng.random() < self.jpeg_prob:
                out = _jpeg(out, rng)
            # step 6: the camera ISP model, not available
        return round_to_8bit(_jpeg(out, rng))

    @staticmethod
    def _down2(image: torch.Tensor, sf: int, rng: np.random.Generator) -> torch.Tensor:
        h, w = image.shape[-2:]
        if rng.random() < 0.75:
            factor = float(rng.uniform(1, 2 * sf))
            out = steps.resize(image, (int(h / factor), int(w / factor)), _mode(rng))
        else:
            kernel = _shift(kernels.fspecial_gaussian(25, float(rng.uniform(0.1, 0.6 * sf))), sf)
            out = steps.blur(image, kernel)[:, ::sf, ::sf].contiguous()
        return out.clamp_(0.0, 1.0)


@register_degradation("bsrgan")
def bsrgan(jpeg_prob: float = 0.9, scale2_prob: float = 0.25) -> BSRGANDegradation:
    """BSRGAN's degradation with its published probabilities."""
    return BSRGANDegradation(jpeg_prob, scale2_prob)
