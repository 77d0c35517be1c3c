"""NIQE, the "completely blind" image quality analyzer (Mittal, Soundararajan, Bovik, IEEE SPL 2013).

No reference image: the distance between a multivariate Gaussian fitted to natural-scene statistics
of the image's 96x96 patches and the pristine model fitted by the authors (lower is better).
Follows the authors' MATLAB `niqe_release` (computequality.m): MSCN coefficients with a 7x7
Gaussian (sigma 7/6, replicate borders), per patch asymmetric generalised Gaussian fits of the MSCN values
and of their products with four neighbours (18 features), at two scales
(the second after MATLAB bicubic x0.5), then the Mahalanobis-like distance with the pooled covariance.
The pristine model (`niqe_pris_params.npz`: mu_pris_param, cov_pris_param, converted from the
authors' `modelparameters.mat` by BasicSR, Apache-2.0) ships in srgan/weights/; a path overrides it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import correlate1d
from scipy.special import gamma

from srgan.errors import SrganError
from srgan.files import existing_file
from srgan.imaging.color import rgb_to_y
from srgan.imaging.imresize import imresize

SHIPPED_PARAMS = Path(__file__).resolve().parents[1] / "weights" / "niqe_pris_params.npz"

BLOCK = 96
_GAM = np.arange(0.2, 10.0005, 0.001)  # MATLAB 0.2:0.001:10, the grid the shape parameters are matched on
_R_AGGD = gamma(2 / _GAM) ** 2 / (gamma(1 / _GAM) * gamma(3 / _GAM))


def _gaussian_1d(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()  # fspecial('gaussian', 7, 7/6) is outer(g, g) with this g


def _blur(img: np.ndarray) -> np.ndarray:
    g = _gaussian_1d()
    return correlate1d(correlate1d(img, g, axis=0, mode="nearest"), g, axis=1, mode="nearest")


def _blocks(img: np.ndarray, size: int) -> np.ndarray:
    """(H, W) -> (n_blocks, size*size), blocks in row-major order."""
    h, w = img.shape
    return img.reshape(h // size, size, w // size, size).swapaxes(1, 2).reshape(-1, size, size)


def _aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric generalised Gaussian fit per row: shape, left scale, right scale (moment matching
    on the MATLAB grid; NaN where one side is empty, which nanmean/nancov then ignore)."""
    neg, pos = x < 0, x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.sqrt(np.sum(x**2 * neg, axis=1) / neg.sum(axis=1))
        right = np.sqrt(np.sum(x**2 * pos, axis=1) / pos.sum(axis=1))
        g = left / right
        rhat = np.mean(np.abs(x), axis=1) ** 2 / np.mean(x**2, axis=1)
        rnorm = rhat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
        alpha = _GAM[np.argmin((_R_AGGD[None, :] - np.nan_to_num(rnorm, nan=np.inf)[:, None]) ** 2, axis=1)]
        alpha = np.where(np.isnan(rnorm), np.nan, alpha)
        ratio = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * ratio, right * ratio


def _block_features(mscn: np.ndarray, size: int) -> np.ndarray:
    """18 features per block: AGGD of the MSCN values (shape, mean scale) and of the products with
    the 4 neighbours (shape, mean, left and right scales); neighbours by circular shift inside the
    block, as MATLAB's circshift within blkproc."""
    blocks = _blocks(mscn, size)
    flat = blocks.reshape(len(blocks), -1)
    alpha, left, right = _aggd(flat)
    feats = [alpha, (left + right) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        shifted = np.roll(blocks, shift, axis=(1, 2)).reshape(len(blocks), -1)
        a, left, right = _aggd(flat * shifted)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = (right - left) * gamma(2 / a) / gamma(1 / a)
        feats += [a, mean, left, right]
    return np.stack(feats, axis=1)


def niqe_features(gray: np.ndarray) -> np.ndarray:
    """(n_blocks, 36) NIQE features of a gray image with values in 0..255."""
    h, w = (gray.shape[0] // BLOCK) * BLOCK, (gray.shape[1] // BLOCK) * BLOCK
    if h == 0 or w == 0:
        raise SrganError(f"NIQE needs an image of at least {BLOCK}x{BLOCK} pixels, got {gray.shape[0]}x{gray.shape[1]}")
    img = np.asarray(gray, dtype=np.float64)[:h, :w]
    per_scale = []
    for level in (1, 2):
        mu = _blur(img)
        sigma = np.sqrt(np.abs(_blur(img * img) - mu * mu))
        per_scale.append(_block_features((img - mu) / (sigma + 1), BLOCK // level))
        if level == 1:
            img = imresize(img, 0.5)
    return np.concatenate(per_scale, axis=1)


@dataclass(frozen=True)
class NiqeModel:
    """The pristine multivariate Gaussian (mean (36,), covariance (36, 36))."""

    mu: np.ndarray
    cov: np.ndarray

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> NiqeModel:
        """The pristine model in `path`, or the one shipped with srgan."""
        path = SHIPPED_PARAMS if path is None else path
        if not os.path.lexists(path):
            raise SrganError(f"NIQE model file not found: {path} (niqe_pris_params.npz from the NIQE authors' release)")
        path = existing_file(path, "NIQE model file")
        try:
            with np.load(path) as data:
                mu, cov = np.asarray(data["mu_pris_param"], np.float64), np.asarray(data["cov_pris_param"], np.float64)
        except (KeyError, ValueError, OSError) as exc:
            raise SrganError(f"{path}: not a NIQE model file (needs mu_pris_param and cov_pris_param: {exc})") from exc
        if mu.size != 36 or cov.shape != (36, 36):
            raise SrganError(f"{path}: NIQE model must hold 36 features, got {mu.shape} and {cov.shape}")
        return cls(mu.reshape(36), cov)

    def score(self, gray: np.ndarray) -> float:
        """NIQE of a gray / Y image (H, W) with values in 0..255."""
        feats = niqe_features(gray)
        mu = np.nanmean(feats, axis=0)
        complete = feats[~np.isnan(feats).any(axis=1)]  # MATLAB nancov drops rows with a NaN
        if len(complete) < 2:
            raise SrganError(f"NIQE needs at least two {BLOCK}x{BLOCK} patches with texture, got {len(complete)}")
        cov = np.cov(complete, rowvar=False)
        diff = self.mu - mu
        return float(np.sqrt(diff @ np.linalg.pinv((self.cov + cov) / 2) @ diff))

    def score_image(self, img: torch.Tensor, crop: int = 0) -> float:
        """NIQE of a uint8 (C, H, W) image on its Y channel (MATLAB rgb2ycbcr, rounded as for uint8),
        or on the gray channel itself, after cropping `crop` pixels per border."""
        x = img.to(torch.float64)
        y = x[0] if x.shape[0] == 1 else (rgb_to_y(x / 255)[0] * 255).round()
        if crop:
            y = y[crop:-crop, crop:-crop]
        return self.score(y.numpy())
