"""Seamless tiled inference: the image stays on the CPU, padded tiles visit the device a batch at
a time and are stitched into a CPU output.

With a context (`tile_pad`) of at least the model's receptive-field radius (`model.context()`,
declared by each architecture next to its layers) every output pixel is computed from exactly the
input it would see in a whole-image pass, so tiles are cropped and placed side by side with no seam
at all. The model's own padding (zeros or reflect) is applied only at the true image border, because
tiles touching the border are not padded beyond it. A smaller context cannot be exact; then
overlapping tiles are blended with raised-cosine weights that sum to one, the usual cure for visible
seams (Real-ESRGAN #211, #197; idealo ISR #134); so are models whose context is unbounded
(`context()` is None).
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from srgan.errors import SrganError
from srgan.hardware import available_memory, resolve_device

log = logging.getLogger(__name__)

CPU_MEMORY_FRACTION = 0.5
"""Share of the memory available now (`srgan.hardware.available_memory`) that `tile="auto"` plans to
use on the CPU; the rest is left to other programs and to the allocator's slack."""
CPU_FALLBACK_BYTES = 1 << 30
"""The CPU budget where the available memory cannot be read (not Linux)."""
CUDA_FREE_FRACTION = 0.5
"""Share of the currently free CUDA memory `tile="auto"` plans to use (the rest absorbs the
allocator's fragmentation and cuDNN workspaces)."""
ACTIVATION_SLACK = 1.25
"""Measured peak working set over the largest layer's input + output (`activation_bytes_per_pixel`):
1.11 for srresnet_x4 in fp32 and 1.07 in bf16 (the global skip and allocator rounding), 1.11 for
fpt_x4 and mit_x4 (peak RSS of whole-image passes at 256x256 less the float32 output,
`benchmarks/upscale_speed.py` prints it); rounded up."""
OUTPUT_COPIES = 3
"""float32 copies of the whole output alive at once on the CPU around the model: the stitched
output, its clamped copy and the integer image made for writing."""
MIN_TILE = 16
FEATHER_PAD = 32
"""LR overlap for a model whose context is unbounded (SwinIR's default `--tile_overlap 32`)."""


def tiled_forward(model: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, *, scale: int,
                  tile: int | str | None = None, tile_pad: int | None = None,
                  device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, batch: int = 1,
                  progress: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
    """Run `model` over a CPU image (1, C, H, W) in [0, 1] and return the CPU output (1, C', sH, sW),
    float32 and not clamped.

    model: an `nn.Module` already on its device in its dtype (see `engine.prepare_model`; tiles
        follow its parameters, so `device`/`dtype` only matter for other callables) or any callable
        tensor -> tensor, such as `onnx_backend.OnnxRunner`. Its `context()` gives the receptive
        field and `in_channels` the channels it takes; without `context` `tile_pad` must be given.
    tile: LR tile side (at least `MIN_TILE`, as `options.parse_tile` checked); None = whole image in
        one pass; "auto" = `auto_tile(...)`.
    tile_pad: LR context around each tile; None = the receptive-field radius (exact result), or
        `FEATHER_PAD` with blended overlaps when the model's context is unbounded.
    batch: tiles per forward pass (tiles of equal padded shape only).
    out: optional preallocated CPU tensor (1, C', sH, sW) of any float dtype to write into, e.g.
        float16 to halve the memory of a huge output; it is returned.
    On CUDA an out-of-memory error restarts the image with half the tile.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] != 1:
        raise SrganError(f"tiled_forward expects a (1, C, H, W) tensor, got {_describe(image)}")
    if image.device.type != "cpu":
        raise SrganError("tiled_forward keeps the image on the CPU: pass a CPU tensor")
    if batch < 1:
        raise SrganError(f"batch must be at least 1, got {batch}")
    if tile_pad is not None and tile_pad < 0:
        raise SrganError(f"tile pad must be 0 or more, got {tile_pad}")
    device = resolve_device(device)
    weight = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    if weight is not None:  # the prepared model is the truth; a stale argument must not crash the run
        device, dtype = weight.device, weight.dtype
    channels = getattr(model, "in_channels", None)
    if channels is not None and image.shape[1] != channels:
        raise SrganError(f"the model takes {channels}-channel images, got {image.shape[1]} channels")
    context = getattr(model, "context", None)
    if tile_pad is None and context is None:
        raise SrganError("this model does not say how far it looks (no context()): pass tile_pad explicitly")
    radius = context() if context is not None else None
    pad = tile_pad if tile_pad is not None else FEATHER_PAD if radius is None else radius
    exact = radius is not None and pad >= radius
    height, width = image.shape[-2:]
    if tile == "auto":
        tile = auto_tile(model, (height, width), scale=scale, tile_pad=pad, device=device, dtype=dtype,
                         batch=batch)
    image = image.float() if image.dtype != torch.float32 else image
    return halve_tile_on_cuda_oom(
        lambda size: _run_tiles(model, image, scale=scale, tile=size, pad=pad, exact=exact, device=device,
                                dtype=dtype, batch=batch, progress=progress, out=out),
        tile, max(height, width), device)


def halve_tile_on_cuda_oom(run: Callable[[int | None], torch.Tensor], tile: int | None, longest: int,
                           device: torch.device) -> torch.Tensor:
    """`run(tile)`, restarted from scratch with half the tile after a CUDA out-of-memory error (never
    continued mid-image, so no tile is silently missing)."""
    while True:
        try:
            return run(tile)
        except torch.cuda.OutOfMemoryError:
            if device.type != "cuda":
                raise
        # outside the except block, so the failed pass's tensors are released before retrying
        smaller = (tile or longest) // 2
        if smaller < MIN_TILE:
            raise SrganError(f"out of CUDA memory even with {MIN_TILE}-pixel tiles: use --device cpu")
        log.warning("out of CUDA memory with tile %s: restarting the image with tile %d", tile, smaller)
        torch.cuda.empty_cache()
        tile = smaller


def auto_tile(model: Any, size: tuple[int, int], *, scale: int, tile_pad: int, device: str | torch.device,
              dtype: torch.dtype = torch.float32, batch: int = 1,
              budget_bytes: int | None = None) -> int | None:
    """The largest tile whose working set fits the memory budget, or None if the whole image fits.

    Budget: on the CPU `CPU_MEMORY_FRACTION` of the memory available now, less `OUTPUT_COPIES` of
    the whole float32 output, so ordinary photos run whole and big ones get the largest tiles (the
    least context overhead); on CUDA `CUDA_FREE_FRACTION` of the free device memory. Working set
    per LR pixel of a tile: `activation_bytes_per_pixel`.
    """
    device = torch.device(device)
    height, width = size
    if budget_bytes is None:
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            budget_bytes = int(free * CUDA_FREE_FRACTION)
        else:
            available = available_memory()
            budget_bytes = CPU_FALLBACK_BYTES if available is None else int(available * CPU_MEMORY_FRACTION)
            channels = getattr(model, "out_channels", None) or 3
            budget_bytes -= OUTPUT_COPIES * 4 * channels * scale * scale * height * width
    per_pixel = activation_bytes_per_pixel(model, dtype) * batch
    if height * width * per_pixel <= budget_bytes:  # the whole image needs no context padding
        return None
    side = int(math.sqrt(max(budget_bytes, 0) / per_pixel)) - 2 * tile_pad
    side = max(MIN_TILE, side // 8 * 8)
    log.debug("auto tile %d for %dx%d (budget %.0f MB, %.0f bytes per LR pixel)", side, height, width,
              budget_bytes / 2**20, per_pixel)
    return side


def activation_bytes_per_pixel(model: Any, dtype: torch.dtype = torch.float32) -> float:
    """Peak working set of one forward pass per LR pixel, in bytes: the largest input + output of
    any layer (in-place results counted once; a conv with reflect/replicate padding also holds its
    padded copy), times `ACTIVATION_SLACK`. Traced on the meta device, so nothing is computed: the
    network itself, or, for an exported model (`OnnxRunner`), its registered architecture built
    from its config. Without either, the value of srresnet at the model's scale."""
    network = _shape_twin(model)
    item = max(torch.empty((), dtype=dtype).element_size(), 1)
    if network is None:
        scale = getattr(model, "scale", None) or 4
        return ACTIVATION_SLACK * item * 80 * scale * scale  # srresnet_x4: 1280 values per LR pixel
    side = 32
    largest = 0

    def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
        nonlocal largest
        tensors = {id(t): t for t in (*inputs, output) if isinstance(t, torch.Tensor)}
        values = sum(t.numel() for t in tensors.values())
        if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
            values += inputs[0].numel()
        largest = max(largest, values)

    handles = [m.register_forward_hook(hook) for m in network.modules() if not any(m.children())]
    try:
        with torch.no_grad():
            network(torch.empty(1, getattr(model, "in_channels", None) or 3, side, side, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return ACTIVATION_SLACK * item * largest / (side * side)


def _shape_twin(model: Any) -> nn.Module | None:
    """A copy of the network on the meta device (no memory, no compute), or None if unknown."""
    if isinstance(model, nn.Module):
        return copy.deepcopy(model).to(device="meta", dtype=torch.float32)
    from srgan.models.registry import ARCHITECTURES

    architecture, config = getattr(model, "architecture", None), getattr(model, "config", None)
    if config is None or architecture not in ARCHITECTURES.names():
        return None
    with torch.device("meta"):
        return ARCHITECTURES.get(architecture)(config).eval()


def _bounds(length: int, tile: int | None) -> list[tuple[int, int]]:
    """Split [0, length) into near-equal spans of at most `tile` (equal spans batch together)."""
    count = 1 if tile is None else max(1, math.ceil(length / tile))
    edges = [round(i * length / count) for i in range(count + 1)]
    return list(itertools.pairwise(edges))


def _ramp(start: int, stop: int, lo: int, hi: int, length: int, pad: int, scale: int) -> torch.Tensor:
    """Raised-cosine weight over the HR rows of the padded span [start, stop) for the core [lo, hi):
    it rises across [lo - pad, lo + pad) and falls across [hi - pad, hi + pad) except at the image
    border, so the weights of neighbouring tiles sum to one."""
    centre = (torch.arange(start * scale, stop * scale, dtype=torch.float64) + 0.5) / scale
    weight = torch.ones_like(centre)
    if lo > 0:
        weight *= 0.5 - 0.5 * torch.cos(math.pi * ((centre - (lo - pad)) / (2 * pad)).clamp(0, 1))
    if hi < length:
        weight *= 0.5 - 0.5 * torch.cos(math.pi * (((hi + pad) - centre) / (2 * pad)).clamp(0, 1))
    return weight.float()


def _run_tiles(model: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, *, scale: int,
               tile: int | None, pad: int, exact: bool, device: torch.device, dtype: torch.dtype, batch: int,
               progress: bool, out: torch.Tensor | None) -> torch.Tensor:
    height, width = image.shape[-2:]
    rows, cols = _bounds(height, tile), _bounds(width, tile)
    if not exact and pad > 0:
        shortest = min(b - a for a, b in rows + cols)
        if len(rows) * len(cols) > 1 and 2 * pad > shortest:
            pad = shortest // 2
            log.info("tile pad reduced to %d so that feathered overlaps stay inside each tile", pad)
    feather = not exact and pad > 0 and len(rows) * len(cols) > 1
    tiles = []  # (input box, core box)
    grid = model.input_multiple() if callable(getattr(model, "input_multiple", None)) else 1
    for y0, y1 in rows:
        for x0, x1 in cols:  # boxes on the model's pixel grid (pixel unshuffle), as the whole image is
            box = (max(0, (y0 - pad) // grid * grid), min(height, -(-(y1 + pad) // grid) * grid),
                   max(0, (x0 - pad) // grid * grid), min(width, -(-(x1 + pad) // grid) * grid))
            tiles.append((box, (y0, y1, x0, x1)))
    groups: dict[tuple[int, int], list] = {}
    for entry in tiles:
        (a, b, c, d), _ = entry
        groups.setdefault((b - a, d - c), []).append(entry)
    if out is not None and out.shape[-2:] != (height * scale, width * scale):
        raise SrganError(f"out has shape {tuple(out.shape)}, "
                         f"expected (1, C, {height * scale}, {width * scale})")
    if out is not None and feather:
        out.zero_()  # feathered tiles are accumulated
    is_module = isinstance(model, nn.Module)
    with torch.inference_mode(), tqdm(total=len(tiles), desc="tiles", unit="tile", leave=False,
                                      disable=None if progress and len(tiles) > 1 else True) as bar:
        for entries in groups.values():
            for first in range(0, len(entries), batch):
                chunk = entries[first:first + batch]
                inputs = torch.cat([image[..., a:b, c:d] for (a, b, c, d), _ in chunk])
                inputs = inputs.to(device=device, dtype=dtype)
                if is_module:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                result = model(inputs)
                if result.shape[-2:] != (inputs.shape[-2] * scale, inputs.shape[-1] * scale):
                    raise SrganError(f"the model returned {tuple(result.shape[-2:])} for a "
                                     f"{tuple(inputs.shape[-2:])} input: it is not a x{scale} model")
                result = result.to(device="cpu", dtype=torch.float32)
                if out is None:  # cropped tiles write every pixel once; feathered ones accumulate
                    shape = (1, result.shape[1], height * scale, width * scale)
                    out = image.new_zeros(shape) if feather else image.new_empty(shape)
                for k, ((a, b, c, d), (y0, y1, x0, x1)) in enumerate(chunk):
                    if feather:
                        weight = (_ramp(a, b, y0, y1, height, pad, scale)[:, None]
                                  * _ramp(c, d, x0, x1, width, pad, scale)[None, :])
                        out[0, :, a * scale:b * scale, c * scale:d * scale] += result[k] * weight
                    else:
                        out[0, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                            result[k, :, (y0 - a) * scale:(y1 - a) * scale, (x0 - c) * scale:(x1 - c) * scale]
                bar.update(len(chunk))
    return out


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__
