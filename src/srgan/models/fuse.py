"""Inference-time rewrites that keep the output identical, for any network: batch norm folded into
the convolution before it, single-slope PReLUs made in-place, and the conv-after-PixelShuffle
rearrangement that an architecture may apply to its own layers (`Generator.rewrite_for_inference`).

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



def conv_before_pixel_shuffle(conv: nn.Conv2d) -> nn.Conv2d:
    """The conv that, run before a PixelShuffle(2), gives what `conv` (k x k, zero padding, stride 1)
    gives after it: a ceil((k+1)/2)-sized conv on the 4x wider, 4x smaller pre-shuffle tensor with
    4x the outputs, to be followed by PixelShuffle(2). Exact because the border of a shuffled image
    maps to the border of the pre-shuffle one. Worth it where few output channels starve the vector
    units (an RGB tail); which layers to rewrite is the architecture's call."""
    k = conv.kernel_size[0]
    half = k // 2
    # the furthest pre-shuffle offset a whose taps 2a + i - p still fall inside the original kernel
    reach = max(a for a in range(-half, half + 1) if any(abs(2 * a + i - p) <= half for i in (0, 1)
                                                          for p in (0, 1)))
    size = 2 * reach + 1
    weight = conv.weight.new_zeros(conv.out_channels * 4, conv.in_channels * 4, size, size)
    for p in (0, 1):
        for q in (0, 1):
            for i in (0, 1):
                for j in (0, 1):
                    for a in range(-reach, reach + 1):
                        for b in range(-reach, reach + 1):
                            dy, dx = 2 * a + i - p, 2 * b + j - q
                            if abs(dy) <= half and abs(dx) <= half:
                                weight[p * 2 + q::4, i * 2 + j::4, a + reach, b + reach] = \
                                    conv.weight[:, :, dy + half, dx + half]
    rewritten = nn.Conv2d(conv.in_channels * 4, conv.out_channels * 4, size, padding=reach,
                          bias=conv.bias is not None).to(conv.weight.device, conv.weight.dtype)
    with torch.no_grad():
        rewritten.weight.copy_(weight)
        if conv.bias is not None:
            rewritten.bias.copy_(conv.bias.repeat_interleave(4))
    return rewritten


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
