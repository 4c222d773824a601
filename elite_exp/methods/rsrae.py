"""RSRAE (Lai, Zou, Lerman, ICLR 2020): an auto-encoder with a robust subspace recovery layer.

encoder z = E(x) in R^D -> RSR layer z~ = A z in R^d (A a d x D matrix, then l2-normalised as
in the reference code) -> decoder x^ = G(z~). Loss per mini-batch (the paper's summed form,
its RSRAE+ variant):

    mean_i ||x_i - x^_i||_2  +  lambda1 * mean_i ||z_i - A^T A z_i||_2  +  lambda2 * ||A A^T - I_d||_F^2

Unsupervised; the anomaly score is the reconstruction error ||x - x^||_2.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from elite_exp.errors import ConfigError
from elite_exp.methods.base import DeepDetector, train_runs
from elite_exp.networks import NetworkSpec, build_decoder, build_encoder
from elite_exp.scores import Score


class RSRAEScore(Score):
    def __init__(self, spec: NetworkSpec, input_shape: tuple[int, ...], intrinsic_dim: int):
        super().__init__()
        self.encoder = build_encoder(spec, input_shape)
        self.A = nn.Parameter(nn.init.orthogonal_(torch.empty(intrinsic_dim, spec.rep_dim)))
        self.decoder = build_decoder(dataclasses.replace(spec, rep_dim=intrinsic_dim), input_shape, self.encoder)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, per-sample reconstruction error ||x - x^||_2)."""
        z = self.encoder(x)
        x_hat = self.decoder(F.normalize(z @ self.A.T, dim=1))
        return z, (x_hat - x).flatten(1).norm(dim=1)

    def forward(self, x: torch.Tensor, loss_weights: tuple[float, float] | None = None) -> torch.Tensor:
        """The scores ``(N,)`` of ``x``; with ``loss_weights`` (lambda1, lambda2) the training loss of the
        batch ``x`` instead (0-d)."""
        if loss_weights is None:
            return self.parts(x)[1]
        lambda1, lambda2 = loss_weights
        z, err = self.parts(x)
        pca = (z - z @ self.A.T @ self.A).norm(dim=1).mean()
        proj = (self.A @ self.A.T - torch.eye(self.A.shape[0], device=self.A.device)).pow(2).sum()
        return err.mean() + lambda1 * pca + lambda2 * proj


class RSRAE(DeepDetector):
    """RSRAE trained on every sample of X (labels are never used)."""

    uses_labels = False

    def __init__(self, intrinsic_dim: int = 10, lambda1: float = 0.1, lambda2: float = 0.1, network=None,
                 epochs: int = 30, batch_size: int = 128, lr: float = 1e-4, optimizer: str = "adam",
                 weight_decay: float = 1e-6, contamination: float = 0.1, device: str = "auto", random_state: int = 0,
                 progress: bool = False):
        self._keep_params(locals())

    def _check_params(self) -> None:
        if self.intrinsic_dim < 1:
            raise ConfigError(f"intrinsic_dim={self.intrinsic_dim} is not allowed; it must be >= 1")
        for name in ("lambda1", "lambda2"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name}={getattr(self, name)} is not allowed; it must be >= 0")

    def _build_module(self, input_shape):
        spec = self._spec(input_shape)
        if self.intrinsic_dim > spec.rep_dim:
            raise ConfigError(f"intrinsic_dim={self.intrinsic_dim} is not allowed; it must be <= the network's "
                              f"rep_dim={spec.rep_dim}")
        return RSRAEScore(spec, input_shape, self.intrinsic_dim)

    def _train(self, runs) -> None:
        lambda1, lambda2 = self.lambda1, self.lambda2

        def step(net, idx, d):
            return net(d["x"][idx], loss_weights=(lambda1, lambda2)), {}

        train_runs(runs, len(runs[0].x_unl), step, lambda r: {"x": r.x_unl}, desc="RSRAE")
