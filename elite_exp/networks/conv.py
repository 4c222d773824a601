"""LeNet-type convolutional encoder and its mirrored decoder (Deep SVDD / Deep SAD style).

Each encoder stage is ``conv 5x5 (no bias) -> BatchNorm (no affine) -> LeakyReLU -> 2x2 max
pool``; a final bias-free linear layer maps to ``rep_dim``. No layer has a bias term, so
the network cannot map every input onto a constant (the Deep SVDD collapse).

Three changes of form, not of what is computed, make the CPU training step faster than the
textbook form (``networks.reference``; ``scripts/bench.py`` measures it, tests compare them):
the convolution stacks run in the channels-last memory format (the backend's fast layout for
these convolutions; the flattened features keep the NCHW order, so the linear layer sees the
same vector); each stage max-pools before the LeakyReLU on a quarter of the values; and in
training with batch statistics on CPU, a stage of at most 8 channels computes its BatchNorm and
max-pool as one function (``networks.batch_norm``: the pooled raw values, normalised). The
maximum commutes with an increasing function, so the values are equal; the gradient goes to the
same element except where float32 rounding makes two neighbouring values equal after the
LeakyReLU or, in the fused stage, after the normalisation (the textbook network then picks the
first, this one the larger: the derivative of the exact function).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from elite_exp.networks.batch_norm import norm_then_pool

BN_EPS = 1e-4


def _norm2d(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels, eps=BN_EPS, affine=False) if batch_norm else nn.Identity()


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` with the same values, stored channels-last (stride 1 on C), so that the
    convolutions and every layer after them run channels-last. Works under ``torch.func`` transforms
    (no ``Tensor.contiguous(memory_format=...)``, which vmap does not support). With one channel the
    (N, H, W, 1) reading of the same memory gives the strides: ``contiguous`` would leave such a
    tensor as it is, and the convolution would run NCHW."""
    if x.shape[1] == 1:
        n, _, h, w = x.shape
        return x.reshape(n, h, w, 1).permute(0, 3, 1, 2)
    return x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)


class ConvEncoder(nn.Module):
    """``(N, C, H, W)`` images -> ``(N, rep_dim)`` embeddings; ``feature_shape`` is the last stage's
    ``(C, H, W)``. Stage k is ``features[4k:4k+4]`` = conv, BatchNorm (``nn.Identity`` without),
    max-pool, LeakyReLU (the textbook network's state-dict keys); BatchNorm and max-pool run through
    ``networks.batch_norm.norm_then_pool``."""

    def __init__(self, in_shape: tuple[int, int, int], channels: tuple[int, ...], rep_dim: int,
                 batch_norm: bool = True):
        super().__init__()
        c_in, h, w = in_shape
        layers: list[nn.Module] = []
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 5, padding=2, bias=False), _norm2d(c_out, batch_norm),
                       nn.MaxPool2d(2), nn.LeakyReLU(0.01)]
            c_in, h, w = c_out, h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.feature_shape = (c_in, h, w)
        self.fc = nn.Linear(c_in * h * w, rep_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, f = channels_last(x), self.features
        for i in range(0, len(f), 4):
            x = f[i + 3](norm_then_pool(f[i + 1], f[i + 2], f[i](x)))
        return self.fc(x.flatten(1))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: linear -> (upsample, conv, BN, LeakyReLU) per stage ->
    conv to the input channels, resized to the input size. Linear output (inputs may be
    standardised, so no sigmoid)."""

    def __init__(self, out_shape: tuple[int, int, int], feature_shape: tuple[int, int, int],
                 channels: tuple[int, ...], rep_dim: int, batch_norm: bool = True):
        super().__init__()
        self.out_shape = out_shape
        self.feature_shape = feature_shape
        self.fc = nn.Linear(rep_dim, feature_shape[0] * feature_shape[1] * feature_shape[2], bias=False)
        layers: list[nn.Module] = []
        c_in = feature_shape[0]
        for c_out in reversed(channels[:-1]):
            layers += [nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 5, padding=2, bias=False),
                       _norm2d(c_out, batch_norm), nn.LeakyReLU(0.01)]
            c_in = c_out
        layers += [nn.Upsample(scale_factor=2), nn.Conv2d(c_in, out_shape[0], 5, padding=2, bias=False)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.body(channels_last(self.fc(z).view(-1, *self.feature_shape)))
        if x.shape[-2:] != self.out_shape[1:]:
            x = F.interpolate(x, size=self.out_shape[1:], mode="bilinear", align_corners=False)
        return x
