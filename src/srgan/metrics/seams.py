"""How visible the borders of independently processed tiles are: the seam ratio.

An image upscaled tile by tile WITHOUT context (each tile padded by the network's own zero or reflect
padding, as the FPT and Osnabrueck reports process 64x64 patches) can show lines where tiles meet.
A line is a jump between two neighbouring pixels that the image content does not explain, so:

    seam ratio = mean |I(p) - I(q)| over neighbour pairs (p, q) that straddle a tile border
                 / mean |I(p) - I(q)| over all other neighbour pairs (inside tiles)

horizontally and vertically, over all channels. Natural-image gradients are statistically the same
at every position, so the border pairs of a seamless image are just another sample of neighbour pairs
and the ratio is near 1 (not exactly: the sample is a few rows and columns of one image). A visible
seam makes it larger: 2 means the steps across borders are twice the typical step. The measure needs
no ground truth and no model, so it scores any tiled output; srgan's exact tiling (context at least
the receptive field, `srgan.inference.tiling`) gives the same pixels as a whole-image pass and is the
zero-seam reference: report the no-context ratio next to the exact one of the same image.
"""

from __future__ import annotations

import torch

from srgan.errors import SrganError


def _steps(image: torch.Tensor, dim: int, tile: int, period: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Absolute differences between neighbours along `dim`: (across tile borders, inside tiles at
    the borders' phase of the period)."""
    diff = image.diff(dim=dim).abs()
    index = torch.arange(diff.shape[dim])
    across = (index + 1) % tile == 0  # the pair (k*tile - 1, k*tile) straddles a border
    inside = ((index + 1) % period == 0) & ~across
    return diff.index_select(dim, index[across]), diff.index_select(dim, index[inside])


def _check(image: torch.Tensor, tile: int, period: int) -> torch.Tensor:
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3:
        raise SrganError(f"seam measures expect a (C, H, W) or (H, W) image, got shape {tuple(image.shape)}")
    if tile < 2 or period < 1 or tile % period:
        raise SrganError(f"tile must be at least 2 pixels and a multiple of the period {period}, got {tile}")
    if max(image.shape[-2:]) <= tile:
        raise SrganError(f"a {image.shape[-1]}x{image.shape[-2]} image has no border between {tile}-pixel tiles")
    return image.double()


def _mean(parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return torch.cat([p.flatten() for p in parts]).mean()


def seam_ratio(image: torch.Tensor, tile: int, period: int = 1, reference: torch.Tensor | None = None) -> float:
    """Seam ratio of a (C, H, W) or (H, W) image made of `tile` x `tile` tiles (in its own pixels,
    e.g. 4 x 64 for 64-pixel LR tiles at x4), tiles starting at the top-left corner.

    `period`: the inside pairs compared are those at the borders' phase of this period. Pass the
    upscaling factor for a network's output: its statistics repeat with the LR grid (a sub-pixel
    convolution paints each of the s x s output phases with its own filters), and tile borders always
    fall between LR pixels, so they must be compared with other pairs between LR pixels.
    `reference`: the seamless result of the same image (srgan's exact tiling); the border steps are
    then divided by the reference's steps across the same borders instead of by the inside steps, so
    the content of the few border rows and columns cancels (1 exactly for the reference itself)."""
    image = _check(image, tile, period)
    across, inside = zip(*(_steps(image, dim, tile, period) for dim in (1, 2)))
    if reference is not None:
        if reference.shape[-2:] != image.shape[-2:]:
            raise SrganError(f"the reference is {tuple(reference.shape)}, the image {tuple(image.shape)}")
        inside = tuple(_steps(_check(reference, tile, period), dim, tile, period)[0] for dim in (1, 2))
    typical = _mean(inside)
    if typical == 0:
        raise SrganError("the image is flat inside its tiles: no step to compare the borders with")
    return float(_mean(across) / typical)


def border_error(image: torch.Tensor, reference: torch.Tensor, tile: int, width: int = 2) -> float:
    """Mean |image - reference| over the pixels within `width` of a tile border: how far the tiles'
    edges are from the seamless result, in the images' units. A band that is wrong on both sides of a
    border (zero padding darkens both edges alike) leaves the step across it unchanged; this sees it."""
    image, reference = _check(image, tile, 1), _check(reference, tile, 1)
    if reference.shape != image.shape:
        raise SrganError(f"the reference is {tuple(reference.shape)}, the image {tuple(image.shape)}")
    near = [torch.zeros(n, dtype=torch.bool) for n in image.shape[-2:]]
    for mask in near:
        for border in range(tile, len(mask), tile):
            mask[max(0, border - width):border + width] = True
    band = near[0][:, None] | near[1][None, :]
    return float((image - reference).abs()[:, band].mean())
