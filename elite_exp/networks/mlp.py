"""Bias-free MLP encoder and mirrored decoder for vector data (Deep SAD's tabular networks)."""

from __future__ import annotations

import torch.nn as nn

BN_EPS = 1e-4


def _stack(sizes: list[int], batch_norm: bool, last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, bias=False))
        if i < len(sizes) - 2 or last_activation:
            if batch_norm:
                layers.append(nn.BatchNorm1d(b, eps=BN_EPS, affine=False))
            layers.append(nn.LeakyReLU(0.01))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Sequential):
    def __init__(self, in_dim: int, hidden: tuple[int, ...], rep_dim: int, batch_norm: bool = True):
        super().__init__(*_stack([in_dim, *hidden, rep_dim], batch_norm, last_activation=False))


class MLPDecoder(nn.Sequential):
    def __init__(self, out_dim: int, hidden: tuple[int, ...], rep_dim: int, batch_norm: bool = True):
        super().__init__(*_stack([rep_dim, *reversed(hidden), out_dim], batch_norm, last_activation=False))
