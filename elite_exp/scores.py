"""Anomaly score functions Omega(x): a network whose forward pass returns one score per sample.

Higher means more anomalous. ELITE and the baselines train these modules; any module with
this contract (``forward(x) -> (N,) scores`` and ``prepare(x)``) plugs into ELITE.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn

from elite_exp.errors import ConfigError
from elite_exp.networks import NetworkSpec, build_decoder, build_encoder


class SVDDScore(nn.Module):
    """Deep SVDD: distance of the embedding phi(x) to a centre c.

    ``squared=True`` gives ||phi(x) - c||^2 (Deep SVDD's paper), ``False`` the norm
    ||phi(x) - c|| (the official ELITE code). c is the mean initial embedding of the
    training data, entries closer to 0 than ``eps`` pushed to +-eps (Deep SVDD).
    """

    def __init__(self, spec: NetworkSpec, input_shape: tuple[int, ...], squared: bool = False):
        super().__init__()
        self.encoder = build_encoder(spec, input_shape)
        self.squared = squared
        self.register_buffer("center", torch.zeros(spec.rep_dim))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d2 = (self.embed(x) - self.center).pow(2).sum(dim=1)
        return d2 if self.squared else torch.sqrt(d2 + 1e-12)

    @torch.no_grad()
    def prepare(self, x: torch.Tensor, batch_size: int = 1024, eps: float = 0.1) -> None:
        """Set c to the mean embedding of ``x`` under the initial weights."""
        with batch_statistics(self):
            c = torch.cat([self.embed(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).mean(0)
        small = c.abs() < eps
        c[small & (c < 0)] = -eps
        c[small & (c >= 0)] = eps
        self.center.copy_(c)


class AEScore(nn.Module):
    """Auto-encoder: squared reconstruction error summed over all input entries."""

    def __init__(self, spec: NetworkSpec, input_shape: tuple[int, ...]):
        super().__init__()
        self.encoder = build_encoder(spec, input_shape)
        self.decoder = build_decoder(spec, input_shape, self.encoder)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.reconstruct(x) - x).pow(2).flatten(1).sum(dim=1)

    def prepare(self, x: torch.Tensor, batch_size: int = 1024) -> None:
        """Nothing to initialise from data."""


SCORES = ("svdd", "ae")


def build_score(name: str, spec: NetworkSpec, input_shape: tuple[int, ...], squared: bool = False) -> nn.Module:
    if name == "svdd":
        return SVDDScore(spec, input_shape, squared=squared)
    if name == "ae":
        return AEScore(spec, input_shape)
    raise ConfigError(f"unknown score {name!r}; allowed: {', '.join(SCORES)}")


@contextmanager
def batch_statistics(module: nn.Module):
    """Train-mode BatchNorm (normalise with batch statistics) without touching running stats.

    Used for forward passes that must not count as a training step: the validation
    forward of ELITE, centre initialisation, the margin C at initialisation.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in norms]
    for m in norms:
        m.train()
        m.momentum = 0.0
    try:
        yield module
    finally:
        for m, (training, momentum, tracked) in zip(norms, saved):
            m.train(training)
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


@torch.no_grad()
def score_in_batches(module: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Scores of ``x`` in eval mode (running BatchNorm statistics), in large no-grad batches."""
    was_training = module.training
    module.eval()
    try:
        return torch.cat([module(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        module.train(was_training)
