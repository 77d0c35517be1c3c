"""Random blur kernels of the real-world degradation models, from their published definitions.

Real-ESRGAN (Wang et al., ICCVW 2021, section 3.1) draws a kernel of odd size 7-21 from six families:
isotropic and anisotropic Gaussians, their generalized form exp(-0.5 (x' S^-1 x)^beta) (sharper or
flatter shoulders than a Gaussian), plateau kernels 1 / (1 + (x' S^-1 x)^beta), and, with its own
probability, the sinc kernel of an ideal circular low-pass filter (ringing and overshoot, Eq. 5).
S = R diag(sigma_x^2, sigma_y^2) R' with R a rotation by theta. BSRGAN (Zhang et al., ICCV 2021,
section 3.1) uses Gaussians given by the eigenvalues of their covariance and MATLAB's fspecial.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

KERNEL_FAMILIES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def grid(size: int) -> np.ndarray:
    """(size, size, 2) pixel offsets (x, y) from the centre of an odd-sized kernel."""
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    xx, yy = np.meshgrid(ax, ax)
    return np.stack([xx, yy], axis=-1)


def covariance(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """R(theta) diag(sigma_x^2, sigma_y^2) R(theta)'."""
    c, s = math.cos(theta), math.sin(theta)
    rotation = np.array([[c, -s], [s, c]])
    return rotation @ np.diag([sigma_x ** 2, sigma_y ** 2]) @ rotation.T


def _mahalanobis(size: int, cov: np.ndarray) -> np.ndarray:
    """x' S^-1 x at every offset x of the kernel."""
    offsets = grid(size)
    return np.einsum("...i,ij,...j->...", offsets, np.linalg.inv(cov), offsets)


def gaussian(size: int, cov: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """The (generalized, for beta != 1) Gaussian kernel exp(-0.5 (x' S^-1 x)^beta), summing to 1."""
    kernel = np.exp(-0.5 * np.power(_mahalanobis(size, cov), beta))
    return kernel / kernel.sum()


def plateau(size: int, cov: np.ndarray, beta: float) -> np.ndarray:
    """The plateau kernel 1 / (1 + (x' S^-1 x)^beta), summing to 1."""
    kernel = 1.0 / (np.power(_mahalanobis(size, cov), beta) + 1.0)
    return kernel / kernel.sum()


def sinc(size: int, cutoff: float) -> np.ndarray:
    """The ideal circular low-pass filter of angular cutoff `cutoff` (radians per pixel), truncated to
    `size` and normalised: omega J1(omega r) / (2 pi r), with its limit omega^2 / (4 pi) at r = 0."""
    r = np.hypot(*np.moveaxis(grid(size), -1, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = cutoff * special.j1(cutoff * r) / (2 * np.pi * r)
    kernel[r == 0] = cutoff ** 2 / (4 * np.pi)
    return kernel / kernel.sum()


def pad_to(kernel: np.ndarray, size: int) -> np.ndarray:
    """An odd kernel zero-padded to `size` x `size`, centred (so every kernel of a batch has one size)."""
    pad = (size - kernel.shape[0]) // 2
    return np.pad(kernel, pad) if pad > 0 else kernel


def _beta(rng: np.random.Generator, beta_range: tuple[float, float]) -> float:
    """Real-ESRGAN's shape draw: below or above 1 (sharper or flatter than a Gaussian) with equal odds."""
    low, high = beta_range
    return float(rng.uniform(low, 1.0) if rng.random() < 0.5 else rng.uniform(1.0, high))


def random_mixed(rng: np.random.Generator, size: int, *, probabilities: list[float],
                 sigma: tuple[float, float], beta_generalized: tuple[float, float],
                 beta_plateau: tuple[float, float]) -> np.ndarray:
    """One Real-ESRGAN kernel: a family drawn with `probabilities` (over `KERNEL_FAMILIES`), sigma_x
    and (anisotropic) sigma_y uniform in `sigma`, the angle uniform in [-pi, pi]."""
    family = KERNEL_FAMILIES[int(rng.choice(len(KERNEL_FAMILIES), p=np.asarray(probabilities) / sum(probabilities)))]
    sigma_x = float(rng.uniform(*sigma))
    if family.endswith("aniso"):
        sigma_y, theta = float(rng.uniform(*sigma)), float(rng.uniform(-math.pi, math.pi))
    else:
        sigma_y, theta = sigma_x, 0.0
    cov = covariance(sigma_x, sigma_y, theta)
    if family.startswith("generalized"):
        return gaussian(size, cov, _beta(rng, beta_generalized))
    if family.startswith("plateau"):
        return plateau(size, cov, _beta(rng, beta_plateau))
    return gaussian(size, cov)


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB's fspecial('gaussian', size, sigma): values below eps x the peak set to 0, sum 1."""
    kernel = np.exp(-(grid(size) ** 2).sum(-1) / (2 * sigma ** 2))
    kernel[kernel < np.finfo(np.float64).eps * kernel.max()] = 0
    return kernel / kernel.sum()
