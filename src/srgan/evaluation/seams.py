"""Seams of tiles processed without context, against srgan's exact tiling (STUDY.md, claim 3).

The FPT and Osnabrueck reports cut the LR image into fixed 64x64 patches from the top-left corner,
upscale each patch alone (the network's own zero or reflect padding at every patch edge) and paste
the results side by side. `grid_without_context` does exactly that; srgan's tiling with the model's
full context (`tiled_forward`) gives the whole-image result and is the zero-seam reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from srgan.inference.tiling import tiled_forward
from srgan.metrics.seams import border_error, seam_ratio


@torch.inference_mode()
def grid_without_context(model: Callable[[torch.Tensor], torch.Tensor], lr: torch.Tensor, tile: int,
                         scale: int) -> torch.Tensor:
    """(1, C, H, W) -> (1, C, sH, sW): each `tile` x `tile` patch of a fixed grid from the top-left
    (the last row and column of patches smaller) upscaled alone and pasted."""
    height, width = lr.shape[-2:]
    out = lr.new_empty(1, lr.shape[1], height * scale, width * scale)
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            patch = lr[..., top:top + tile, left:left + tile]
            out[..., top * scale:(top + patch.shape[-2]) * scale,
                left * scale:(left + patch.shape[-1]) * scale] = model(patch)
    return out


def seam_scores(model: torch.nn.Module, lr: torch.Tensor, tile: int, scale: int) -> dict[str, float]:
    """The seam measures of one LR image (1, C, H, W) in [0, 1], on outputs rounded to 8 bits:
    `ratio_exact` and `ratio_no_context` (border steps over inside steps at the LR-grid phase),
    `ratio_vs_exact` (no-context border steps over the exact ones at the same pairs; 1 = no seam) and
    `border_error` (mean |no context - exact| within 2 HR pixels of a border, in 8-bit levels)."""
    def levels(x: torch.Tensor) -> torch.Tensor:
        return (x[0].clamp(0, 1) * 255).round()

    exact = levels(tiled_forward(model, lr, scale=scale, tile="auto"))  # whole, or exact tiles if large
    alone = levels(grid_without_context(model, lr, tile, scale))
    hr_tile = tile * scale
    return {"ratio_exact": seam_ratio(exact, hr_tile, scale), "ratio_no_context": seam_ratio(alone, hr_tile, scale),
            "ratio_vs_exact": seam_ratio(alone, hr_tile, scale, reference=exact),
            "border_error": border_error(alone, exact, hr_tile)}
