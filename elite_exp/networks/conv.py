"""LeNet-type convolutional encoder and its mirrored decoder (Deep SVDD / Deep SAD style).

Each encoder stage is ``conv 5x5 (no bias) -> BatchNorm (no affine) -> LeakyReLU -> 2x2 max
pool``; a final bias-free linear layer maps to ``rep_dim``. No layer has a bias term, so
the network cannot map every input onto a constant (the Deep SVDD collapse).

Two changes of form, not of what is computed, make the CPU training step 1.3x (MNIST LeNet, real
digits) to 1.5x (CIFAR-10 LeNet) faster than the textbook form (:class:`PlainConvEncoder`; ``scripts/bench.py`` measures it, a test compares
outputs and gradients): the convolution stacks run in the channels-last memory format (oneDNN's
fast layout; the flattened features keep the NCHW order, so the linear layer sees the same
vector), and each stage max-pools before the LeakyReLU: a strictly increasing function commutes
with the maximum, so ``pool(leaky(v)) = leaky(pool(v))`` with the same arg-max, on a quarter of
the values.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-4


def _norm2d(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels, eps=BN_EPS, affine=False) if batch_norm else nn.Identity()


def _stage(c_in: int, c_out: int, batch_norm: bool, textbook: bool) -> list[nn.Module]:
    """One encoder stage: max-pool before the LeakyReLU, or after it (``textbook``; the same function)."""
    conv, norm = nn.Conv2d(c_in, c_out, 5, padding=2, bias=False), _norm2d(c_out, batch_norm)
    pool, act = nn.MaxPool2d(2), nn.LeakyReLU(0.01)
    return [conv, norm, act, pool] if textbook else [conv, norm, pool, act]


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) in the channels-last layout, so that oneDNN runs the convolutions and every
    layer after them channels-last. A 1-channel tensor counts as channels-last already for
    ``Tensor.contiguous`` but not for the convolution, which looks at the strides: it is read as
    (N, H, W, 1) instead, the same memory."""
    if x.shape[1] == 1:
        n, _, h, w = x.shape
        return x.reshape(n, h, w, 1).permute(0, 3, 1, 2)
    return x.contiguous(memory_format=torch.channels_last)


class ConvEncoder(nn.Module):
    """``(N, C, H, W)`` images -> ``(N, rep_dim)`` embeddings; ``feature_shape`` is the last stage's
    ``(C, H, W)``. State-dict keys are those of :class:`PlainConvEncoder`."""

    textbook = False

    def __init__(self, in_shape: tuple[int, int, int], channels: tuple[int, ...], rep_dim: int,
                 batch_norm: bool = True):
        super().__init__()
        c_in, h, w = in_shape
        layers: list[nn.Module] = []
        for c_out in channels:
            layers += _stage(c_in, c_out, batch_norm, self.textbook)
            c_in, h, w = c_out, h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.feature_shape = (c_in, h, w)
        self.fc = nn.Linear(c_in * h * w, rep_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x if self.textbook else _channels_last(x)).flatten(1))


class PlainConvEncoder(ConvEncoder):
    """The same network written as plain eager PyTorch (NCHW, LeakyReLU before ``nn.MaxPool2d``):
    the reference :class:`ConvEncoder` is tested and benchmarked against (not used for training)."""

    textbook = True


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
        x = self.body(_channels_last(self.fc(z).view(-1, *self.feature_shape)))
        if x.shape[-2:] != self.out_shape[1:]:
            x = F.interpolate(x, size=self.out_shape[1:], mode="bilinear", align_corners=False)
        return x
