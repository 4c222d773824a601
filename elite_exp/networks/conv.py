"""LeNet-type convolutional encoder and its mirrored decoder (Deep SVDD / Deep SAD style).

Each encoder stage is ``conv 5x5 (no bias) -> BatchNorm (no affine) -> LeakyReLU -> 2x2 max
pool``; a final bias-free linear layer maps to ``rep_dim``. No layer has a bias term, so
the network cannot map every input onto a constant (the Deep SVDD collapse).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-4


def _norm2d(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels, eps=BN_EPS, affine=False) if batch_norm else nn.Identity()


class ConvEncoder(nn.Module):
    def __init__(self, in_shape: tuple[int, int, int], channels: tuple[int, ...], rep_dim: int,
                 batch_norm: bool = True):
        super().__init__()
        c_in, h, w = in_shape
        layers: list[nn.Module] = []
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 5, padding=2, bias=False), _norm2d(c_out, batch_norm),
                       nn.LeakyReLU(0.01), nn.MaxPool2d(2)]
            c_in, h, w = c_out, h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.feature_shape = (c_in, h, w)
        self.fc = nn.Linear(c_in * h * w, rep_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


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
        x = self.body(self.fc(z).view(-1, *self.feature_shape))
        if x.shape[-2:] != self.out_shape[1:]:
            x = F.interpolate(x, size=self.out_shape[1:], mode="bilinear", align_corners=False)
        return x
