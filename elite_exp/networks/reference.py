"""The encoder written as plain eager PyTorch: the reference :class:`~elite_exp.networks.conv.ConvEncoder`
is tested (same values and gradients) and benchmarked (``scripts/bench.py``) against. Not used to train."""

from __future__ import annotations

import torch.nn as nn

from elite_exp.networks.conv import BN_EPS


def plain_conv_encoder(in_shape: tuple[int, int, int], channels: tuple[int, ...], rep_dim: int,
                       batch_norm: bool = True) -> nn.Module:
    """``(N, C, H, W)`` -> ``(N, rep_dim)``: per stage ``nn.Conv2d`` 5x5 (no bias), ``nn.BatchNorm2d``
    (no affine, ``BN_EPS``), ``nn.LeakyReLU(0.01)``, ``nn.MaxPool2d(2)`` in NCHW, then a bias-free
    ``nn.Linear``; parameter and buffer names are ConvEncoder's (``features.<i>``, ``fc``), so either
    loads the other's ``state_dict``."""
    c_in, h, w = in_shape
    layers: list[nn.Module] = []
    for c_out in channels:
        norm = nn.BatchNorm2d(c_out, eps=BN_EPS, affine=False) if batch_norm else nn.Identity()
        layers += [nn.Conv2d(c_in, c_out, 5, padding=2, bias=False), norm, nn.LeakyReLU(0.01), nn.MaxPool2d(2)]
        c_in, h, w = c_out, h // 2, w // 2
    net = nn.Sequential()
    net.features = nn.Sequential(*layers)
    net.flatten = nn.Flatten()
    net.fc = nn.Linear(c_in * h * w, rep_dim, bias=False)
    return net
