"""LPIPS and DISTS against independent NumPy implementations written here from the papers, their
weights found where users keep them, and the NIQE parameters that ship with srgan."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from scipy.ndimage import correlate

from srgan.errors import SrganError
from srgan.imaging.io import read_8bit
from srgan.metrics.dists import DISTS
from srgan.metrics.feature_distance import build_metric
from srgan.metrics.lpips import LPIPS
from srgan.metrics.niqe import SHIPPED_PARAMS, NiqeModel
from srgan.models.pretrained import ENV_VAR, MissingWeights

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- NumPy references (float64)
def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Cross-correlation of (C, H, W) with (O, C, k, k) weights by explicit patches."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    oh, ow = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    cols = np.empty((x.shape[0], k, k, oh, ow))
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = x[:, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return np.einsum("ocij,cijhw->ohw", w, cols, optimize=True) + b[:, None, None]


def _maxpool(x: np.ndarray, k: int = 3, s: int = 2) -> np.ndarray:
    oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    return np.max([x[:, i:i + s * oh:s, j:j + s * ow:s] for i in range(k) for j in range(k)], axis=0)


def lpips_numpy(x: np.ndarray, y: np.ndarray, weights: dict[str, np.ndarray]) -> float:
    """Zhang et al. 2018, AlexNet v0.1: images (3, H, W) in [0, 1]."""
    shift, scale = np.array([-0.030, -0.088, -0.188])[:, None, None], np.array([0.458, 0.448, 0.450])[:, None, None]
    convs = [(0, 4, 2, False), (3, 1, 2, True), (6, 1, 1, True), (8, 1, 1, False), (10, 1, 1, False)]

    def feats(img: np.ndarray) -> list[np.ndarray]:
        h, out = (img * 2 - 1 - shift) / scale, []
        for idx, stride, pad, pool_first in convs:
            if pool_first:
                h = _maxpool(h)
            w = weights[f"features.{idx}.weight"].astype(np.float64)
            h = np.maximum(_conv(h, w, weights[f"features.{idx}.bias"].astype(np.float64), stride, pad), 0)
            out.append(h / (np.sqrt((h**2).sum(0, keepdims=True)) + 1e-10))
        return out

    total = 0.0
    for k, (a, b) in enumerate(zip(feats(x), feats(y), strict=True)):
        lin = weights[f"lin{k}.weight"].astype(np.float64).reshape(-1)
        total += float(np.einsum("c,chw->hw", lin, (a - b) ** 2).mean())
    return total


def dists_numpy(x: np.ndarray, y: np.ndarray, vgg: dict[str, np.ndarray], alpha: np.ndarray, beta: np.ndarray) -> float:
    """Ding et al. 2020: the input and VGG16 relu1_2 .. relu5_3 with L2 pooling, (3, H, W) in [0, 1]."""
    mean, std = np.array([0.485, 0.456, 0.406])[:, None, None], np.array([0.229, 0.224, 0.225])[:, None, None]
    hann = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    blocks = [[0, 2], [5, 7], [10, 12, 14], [17, 19, 21], [24, 26, 28]]

    def l2pool(h: np.ndarray) -> np.ndarray:
        blurred = np.stack([correlate(c * c, hann, mode="constant") for c in h])
        return np.sqrt(blurred[:, ::2, ::2] + 1e-12)

    def feats(img: np.ndarray) -> list[np.ndarray]:
        h, out = (img - mean) / std, [img]
        for n, convs in enumerate(blocks):
            if n:
                h = l2pool(h)
            for idx in convs:
                w, b = vgg[f"features.{idx}.weight"].astype(np.float64), vgg[f"features.{idx}.bias"].astype(np.float64)
                h = np.maximum(_conv(h, w, b, 1, 1), 0)
            out.append(h)
        return out

    s1, s2 = [], []
    for a, b in zip(feats(x), feats(y), strict=True):
        a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
        mx, my = a.mean(1), b.mean(1)
        cov = ((a - mx[:, None]) * (b - my[:, None])).mean(1)
        s1.append((2 * mx * my + 1e-6) / (mx**2 + my**2 + 1e-6))
        s2.append((2 * cov + 1e-6) / (a.var(1) + b.var(1) + 1e-6))
    total = alpha.sum() + beta.sum()
    return float(1 - (alpha @ np.concatenate(s1) + beta @ np.concatenate(s2)) / total)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def pairs(shared) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """64x64 uint8 crops of two Set5 images, each against a noisy copy and against another crop."""
    rng = np.random.default_rng(0)
    baby = read_8bit(shared / "datasets" / "Set5" / "baby.png")[:, 200:264, 180:244]
    bird = read_8bit(shared / "datasets" / "Set5" / "bird.png")[:, 100:164, 100:164]
    noisy = (baby.double() + torch.from_numpy(rng.normal(0, 12, tuple(baby.shape)))).clamp(0, 255).round().byte()
    return [(baby, noisy), (baby, bird)]


def _np(img: torch.Tensor) -> np.ndarray:
    return img.double().numpy() / 255


def test_lpips_equals_an_independent_numpy_implementation(shared, pairs):
    weights_file = shared / "weights" / "lpips_alex.safetensors"
    metric = LPIPS(str(weights_file))
    reference = load_file(str(weights_file))
    for x, y in pairs:
        got = float(metric(x, y)[0])
        assert got == pytest.approx(lpips_numpy(_np(x), _np(y), reference), abs=1e-4)


def test_dists_equals_an_independent_numpy_implementation(shared, pairs):
    metric = DISTS(str(shared / "weights"))
    vgg = load_file(str(shared / "weights" / "vgg16_features_imagenet.safetensors"))
    ab = torch.load(shared / "weights" / "dists_weights.pt", weights_only=True)
    alpha, beta = ab["alpha"].double().flatten().numpy(), ab["beta"].double().flatten().numpy()
    for x, y in pairs:
        got = float(metric(x, y)[0])
        assert got == pytest.approx(dists_numpy(_np(x), _np(y), vgg, alpha, beta), abs=1e-4)


@pytest.mark.parametrize("name", ["lpips", "dists"])
def test_identical_images_give_zero_and_more_noise_a_larger_distance(shared, name):
    metric = build_metric(name, str(shared / "weights"))
    clean = read_8bit(shared / "datasets" / "Set14" / "zebra.png")[:, :96, :128]
    gen = torch.Generator().manual_seed(1)
    distances = []
    for sigma in (0, 5, 15, 40):
        noisy = (clean.float() + sigma * torch.randn(clean.shape, generator=gen)).clamp(0, 255).round().byte()
        distances.append(float(metric.score(noisy, metric.reference(clean))[0]))
    assert distances[0] == pytest.approx(0, abs=1e-6)
    assert distances == sorted(distances) and distances[1] > 1e-3
    gray = clean.float().mean(0, keepdim=True).round().byte()  # a gray image is compared as RGB
    assert float(metric(gray, gray)[0]) == pytest.approx(0, abs=1e-6)


def test_weights_are_found_under_the_names_users_download(shared, pairs, tmp_path, monkeypatch):
    """torchvision's AlexNet file with the authors' alex.pth in the torch hub cache give the same
    LPIPS as the combined file; nothing found is one line naming the file and where it goes."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(MissingWeights) as info:
        LPIPS()
    message = str(info.value)
    assert "\n" not in message and "lpips_alex.safetensors" in message and str(tmp_path / "hub" / "checkpoints") in message
    with pytest.raises(MissingWeights, match="vgg16_features_imagenet.safetensors"):
        DISTS(str(tmp_path))
    state = {k: torch.from_numpy(v) for k, v in load_file(str(shared / "weights" / "lpips_alex.safetensors")).items()}
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save({**{k: v for k, v in state.items() if k.startswith("features.")},
                "classifier.1.weight": torch.zeros(2, 2)}, hub / "alexnet-owt-7be5be79.pth")
    torch.save({f"lin{k}.model.1.weight": state[f"lin{k}.weight"] for k in range(5)}, hub / "alex.pth")
    found = LPIPS()
    assert [p.name for p in found.sources] == ["alexnet-owt-7be5be79.pth", "alex.pth"]
    x, y = pairs[0]
    assert float(found(x, y)[0]) == pytest.approx(float(LPIPS(str(shared / "weights"))(x, y)[0]), abs=1e-7)
    monkeypatch.setenv(ENV_VAR, str(shared / "weights"))  # the environment variable comes before the hub cache
    assert LPIPS().sources[0] == shared / "weights" / "lpips_alex.safetensors"
    (tmp_path / "bad.safetensors").write_bytes(b"not weights")
    with pytest.raises(SrganError, match="cannot read LPIPS AlexNet weights"):
        LPIPS(str(tmp_path / "bad.safetensors"))


def test_shipped_niqe_parameters_score_as_the_shared_file(shared):
    image = read_8bit(shared / "datasets" / "Set14" / "baboon.png")
    shipped, given = NiqeModel.load(), NiqeModel.load(shared / "weights" / "niqe_pris_params.npz")
    assert SHIPPED_PARAMS.is_file() and SHIPPED_PARAMS.stat().st_size < 16_000
    assert shipped.score_image(image, crop=4) == pytest.approx(given.score_image(image, crop=4), abs=1e-6)
