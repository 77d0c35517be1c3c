"""Seams of tiles processed without context, against srgan's exact tiling (STUDY.md, claim 3).

The FPT and Osnabrueck reports cut the LR image into fixed 64x64 patches from the top-left corner,
upscale each patch alone (the network's own zero or reflect padding at every patch edge) and paste
the results side by side. `grid_without_context` does exactly that; srgan's tiling with the model's
full context (`tiled_forward`) gives the whole-image result and is the zero-seam reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from srgan.inference.tiling import tiled_forward
from srgan.metrics.seams import border_error, seam_ratio


@torch.inference_mode()
def grid_without_context(model: Callable[[torch.Tensor], torch.Tensor], lr: torch.Tensor, tile: int,
                         scale: int) -> torch.Tensor:
    """(1, C, H, W) -> (1, C, sH, sW): each `tile` x `tile` patch of a fixed grid from the top-left
    upscaled alone and pasted. As in the FPT report the image is first padded to whole patches (here
    by repeating its edge, so no artificial edge appears inside it; a patch of a few pixels would be
    thinner than the network's own padding) and the result cropped back."""
    height, width = lr.shape[-2:]
    padded = F.pad(lr, (0, -width % tile, 0, -height % tile), mode="replicate")
    out = lr.new_empty(1, lr.shape[1], padded.shape[-2] * scale, padded.shape[-1] * scale)
    for top in range(0, padded.shape[-2], tile):
        for left in range(0, padded.shape[-1], tile):
            out[..., top * scale:(top + tile) * scale, left * scale:(left + tile) * scale] = \
                model(padded[..., top:top + tile, left:left + tile])
    return out[..., :height * scale, :width * scale]


@torch.inference_mode()
def exact_and_without_context(model: torch.nn.Module, lr: torch.Tensor, tile: int,
                              scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact result and the grid without context of one LR image (1, C, H, W) in [0, 1], each
    (C, sH, sW) rounded to 8-bit levels as a saved image would be."""
    def levels(x: torch.Tensor) -> torch.Tensor:
        return (x[0].clamp(0, 1) * 255).round()

    return (levels(tiled_forward(model, lr, scale=scale, tile="auto")),  # whole, or exact tiles if large
            levels(grid_without_context(model, lr, tile, scale)))


def seam_scores(model: torch.nn.Module, lr: torch.Tensor, tile: int, scale: int) -> dict[str, float]:
    """The seam measures of one LR image (1, C, H, W) in [0, 1], on outputs rounded to 8 bits:
    `ratio_exact` and `ratio_no_context` (border steps over inside steps at the LR-grid phase),
    `ratio_vs_exact` (no-context border steps over the exact ones at the same pairs; 1 = no seam) and
    `border_error` (mean |no context - exact| within 2 HR pixels of a border, in 8-bit levels)."""
    exact, alone = exact_and_without_context(model, lr, tile, scale)
    hr_tile = tile * scale
    return {"ratio_exact": seam_ratio(exact, hr_tile, scale), "ratio_no_context": seam_ratio(alone, hr_tile, scale),
            "ratio_vs_exact": seam_ratio(alone, hr_tile, scale, reference=exact),
            "border_error": border_error(alone, exact, hr_tile)}
