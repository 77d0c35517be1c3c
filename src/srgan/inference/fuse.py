"""Inference-time rewrites that keep the output identical: batch norm folded into the convolution
before it, and the full-resolution tail conv moved in front of the last PixelShuffle.

BN after a conv is an affine map per output channel, so it can be merged into the conv's weight
and bias (Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", eq. 7 without quantisation): one fewer pass over memory per
layer at inference time, identical output up to float rounding.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Merge `bn` (running statistics) into `conv` in place."""
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else \
            1.0 / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        new_bias = (bias - bn.running_mean) * scale + shift
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias)
        else:
            conv.bias.copy_(new_bias)


def fold_batch_norms(model: nn.Module) -> int:
    """Fold every `Conv2d -> BatchNorm2d` pair that sits next to each other in an `nn.Sequential`,
    replacing the BN with `nn.Identity`. Returns the number folded. The model must be in eval mode
    (training-mode BN uses batch statistics and cannot be folded)."""
    if model.training:
        raise ValueError("fold_batch_norms needs a model in eval mode")
    folded = 0
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (_, first), (name, second) in itertools.pairwise(children):
            if (isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d)
                    and second.track_running_stats and second.running_mean is not None):
                fold_conv_bn(first, second)
                setattr(module, name, nn.Identity())
                folded += 1
    return folded



def subpixel_tail(model: nn.Module) -> bool:
    """Move the final k x k conv in front of the last PixelShuffle(2), where it becomes a
    ceil((k+1)/2)-sized conv on the 4x wider, 4x smaller pre-shuffle tensor with 4x the outputs.

    Why: the SRResNet tail (64 -> 3 channels, 9x9, at full output resolution) runs at a fraction of
    the conv peak because 3 output channels starve the vector units; as 256 -> 12 channels, 5x5, at
    half resolution it is ~2.7x faster on the AVX-512 CPU for 1.23x the multiply-adds. Exact for
    zero padding only (the border of a shuffled image maps to the border of the pre-shuffle one);
    the scalar PReLU commutes with the shuffle. Returns whether the model was rewritten.
    """
    cfg = getattr(model, "config", None)
    if cfg is None or cfg.upsampler != "pixelshuffle" or cfg.padding != "zeros":
        return False
    stage, tail = model.upsample[-1], model.tail
    conv, shuffle, act = stage
    if not (isinstance(shuffle, nn.PixelShuffle) and shuffle.upscale_factor == 2 and isinstance(act, nn.PReLU)
            and act.num_parameters == 1 and isinstance(tail, nn.Conv2d) and tail.groups == 1
            and tail.stride == (1, 1) and tail.padding_mode == "zeros"):
        return False
    k = tail.kernel_size[0]
    half = k // 2
    # the furthest pre-shuffle offset a whose taps 2a + i - p still fall inside the original kernel
    reach = max(a for a in range(-half, half + 1) if any(abs(2 * a + i - p) <= half for i in (0, 1)
                                                          for p in (0, 1)))
    size = 2 * reach + 1
    weight = tail.weight.new_zeros(tail.out_channels * 4, tail.in_channels * 4, size, size)
    for p in (0, 1):
        for q in (0, 1):
            for i in (0, 1):
                for j in (0, 1):
                    for a in range(-reach, reach + 1):
                        for b in range(-reach, reach + 1):
                            dy, dx = 2 * a + i - p, 2 * b + j - q
                            if abs(dy) <= half and abs(dx) <= half:
                                weight[p * 2 + q::4, i * 2 + j::4, a + reach, b + reach] = \
                                    tail.weight[:, :, dy + half, dx + half]
    new_tail = nn.Conv2d(tail.in_channels * 4, tail.out_channels * 4, size, padding=reach,
                         bias=tail.bias is not None).to(tail.weight.device, tail.weight.dtype)
    with torch.no_grad():
        new_tail.weight.copy_(weight)
        if tail.bias is not None:
            new_tail.bias.copy_(tail.bias.repeat_interleave(4))
    model.upsample[-1] = nn.Sequential(conv, act)
    model.tail = nn.Sequential(new_tail, nn.PixelShuffle(2))
    return True


def inplace_prelus(model: nn.Module) -> int:
    """Replace each single-slope `nn.PReLU` that follows a layer creating a fresh tensor (possibly
    through folded-BN `Identity`s) by the same function as an in-place `LeakyReLU`.

    Why: on the CPU an out-of-place activation of a 268 MB tensor costs ~10x more than the
    in-place one, almost all of it in page faults on the freshly allocated output. In place is
    safe because nothing else holds the producer's fresh output. Returns the number replaced."""
    producers = (nn.Conv2d, nn.ConvTranspose2d, nn.PixelShuffle, nn.Upsample)
    replaced = 0
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for index, (name, act) in enumerate(children):
            if not (isinstance(act, nn.PReLU) and act.num_parameters == 1):
                continue
            before = index - 1
            while before >= 0 and isinstance(children[before][1], nn.Identity):  # folded BNs pass through
                before -= 1
            if before >= 0 and isinstance(children[before][1], producers):
                setattr(module, name, nn.LeakyReLU(act.weight.item(), inplace=True))
                replaced += 1
    return replaced
