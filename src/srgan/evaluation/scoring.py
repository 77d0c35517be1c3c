"""Which metrics an evaluation computes, and computing them for one output against one reference.

Full-reference: PSNR and SSIM on Y (the classic protocol, `srgan.metrics.psnr_ssim`), LPIPS and
DISTS on RGB (`srgan.metrics.lpips`, `.dists`); no-reference: NIQE on Y (`srgan.metrics.niqe`, its
parameters shipped). Every metric sees the same `crop` pixels removed per border. The deep metrics
run on the device the models run on, and the reference's features are computed once per image, not
once per model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from srgan.data.degradation import crop_border
from srgan.errors import SrganError
from srgan.metrics.feature_distance import FeatureDistance, build_metric
from srgan.metrics.niqe import NiqeModel
from srgan.metrics.psnr_ssim import psnr_y, ssim_y, y_channel
from srgan.models.pretrained import MissingWeights

log = logging.getLogger(__name__)

METRIC_NAMES = ("psnr", "ssim", "lpips", "dists", "niqe")
FULL_REFERENCE = ("psnr", "ssim", "lpips", "dists")
DEEP = ("lpips", "dists")


def parse_metrics(spec: str | Sequence[str] | None) -> list[str] | None:
    """'psnr,ssim,lpips' (or a list) -> ordered names, checked; None stays None (the default set)."""
    if spec is None:
        return None
    names = [n.strip().lower() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    unknown = [n for n in names if n not in METRIC_NAMES]
    if unknown or not names:
        raise SrganError(f"unknown metric {unknown[0]!r} (known: {', '.join(METRIC_NAMES)})" if unknown
                         else f"no metric given (known: {', '.join(METRIC_NAMES)})")
    return [m for m in METRIC_NAMES if m in names]


def _load_deep(name: str, weights: str | Path | None, device: torch.device, required: bool) -> FeatureDistance | None:
    try:
        return build_metric(name, None if weights is None else str(weights)).to(device)
    except MissingWeights as exc:
        if required:
            raise
        log.info("%s not computed: %s", name.upper(), exc)
        return None


@dataclass
class Reference:
    """What is computed once per reference image: its Y channel and its deep features."""

    y: torch.Tensor | None = None
    features: dict[str, list[torch.Tensor]] = field(default_factory=dict)


class Scorer:
    """The chosen metrics, ready to score. `metrics` None: every metric that applies (the
    full-reference ones only with a reference) and whose weights are found; named metrics whose
    weights are missing are an error."""

    def __init__(self, metrics: Sequence[str] | None, *, reference: bool, crop: int, device: torch.device,
                 niqe_model: str | Path | None = None, weights: str | Path | None = None) -> None:
        wanted = list(METRIC_NAMES) if metrics is None else list(metrics)
        if not reference:
            refused = [m for m in wanted if m in FULL_REFERENCE]
            if metrics is not None and refused:
                raise SrganError(f"{', '.join(refused)} need HR images (--data); without them only niqe applies")
            wanted = [m for m in wanted if m not in FULL_REFERENCE]
        self.crop = crop
        self.niqe = NiqeModel.load(niqe_model) if "niqe" in wanted else None
        self.deep = {name: net for name in DEEP if name in wanted
                     and (net := _load_deep(name, weights, device, required=metrics is not None)) is not None}
        self.metrics = [m for m in wanted if m in ("psnr", "ssim", "niqe") or m in self.deep]

    def _cut(self, img: torch.Tensor) -> torch.Tensor:
        return crop_border(img, self.crop)

    def reference(self, hr: torch.Tensor | None) -> Reference:
        if hr is None:
            return Reference()
        return Reference(y_channel(hr), {name: net.reference(self._cut(hr)) for name, net in self.deep.items()})

    def score(self, sr: torch.Tensor, ref: Reference, path: Path) -> dict[str, float | None]:
        """The metrics of a uint8 (C, H, W) output; NIQE None where the image is too small or flat for it."""
        scores: dict[str, float | None] = {}
        sr_y = y_channel(sr)
        if "psnr" in self.metrics:
            scores["psnr"] = float(psnr_y(sr_y, ref.y, self.crop))
        if "ssim" in self.metrics:
            scores["ssim"] = float(ssim_y(sr_y, ref.y, self.crop))
        for name, net in self.deep.items():
            scores[name] = float(net.score(self._cut(sr), ref.features[name])[0])
        if self.niqe is not None:
            try:
                scores["niqe"] = self.niqe.score(self._cut(sr_y)[0, 0].numpy())
            except SrganError as exc:  # fewer than two 96x96 patches: no score rather than ending the run
                log.warning("%s: no NIQE (%s)", path, exc)
                scores["niqe"] = None
        return {m: scores.get(m) for m in self.metrics}
