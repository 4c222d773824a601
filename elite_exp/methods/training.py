"""The mini-batch training loop every deep method shares.

Batches are index slices of tensors already on the device (no DataLoader, no per-sample
work). A method supplies ``step(idx) -> (loss, info)``; the loop owns the optimiser,
the epoch permutation, the progress bar, divergence checks and the monitor callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.profiler import record_function
from tqdm.auto import tqdm

from elite_exp.errors import ConfigError

OPTIMIZERS = ("adam", "sgd")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-4
    optimizer: str = "adam"
    weight_decay: float = 1e-6
    momentum: float = 0.9

    def check(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs={self.epochs} is not allowed; it must be >= 1")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size={self.batch_size} is not allowed; it must be >= 2 (BatchNorm needs 2)")
        if not self.lr > 0:
            raise ConfigError(f"lr={self.lr} is not allowed; it must be > 0")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay={self.weight_decay} is not allowed; it must be >= 0")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum={self.momentum} is not allowed; it must lie in [0, 1)")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r} is not allowed; allowed: {', '.join(OPTIMIZERS)}")


@dataclass
class StepInfo:
    """What the loop reports to a monitor after every optimiser step. ``loss`` is read from the
    device only when a monitor asks for it (no host sync per step otherwise)."""

    iteration: int
    epoch: int
    index: torch.Tensor
    loss_tensor: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return float(self.loss_tensor)


Monitor = Callable[[StepInfo], None]


def make_optimizer(params, s: TrainSettings) -> torch.optim.Optimizer:
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)
    return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)


def run_training(module: torch.nn.Module, n: int, step: Callable[[torch.Tensor], tuple[torch.Tensor, dict]],
                 s: TrainSettings, generator: torch.Generator, *, desc: str = "train", progress: bool = False,
                 monitor: Monitor | None = None, optimizer: torch.optim.Optimizer | None = None) -> list[float]:
    """Train ``module`` for ``s.epochs`` epochs over ``n`` samples; returns the mean loss per epoch."""
    if n == 0 or s.epochs == 0:
        return []
    module.train()
    opt = optimizer or make_optimizer(module.parameters(), s)
    device = next(module.parameters()).device
    bs = min(s.batch_size, n)
    n_batches = n // bs  # drop the last partial batch: BatchNorm needs full-size batches
    epoch_losses: list[float] = []
    iteration = 0
    # disable=None: tqdm switches itself off when the output is not a terminal
    bar = tqdm(range(s.epochs), desc=desc, disable=None if progress else True, leave=False)
    for epoch in bar:
        perm = torch.randperm(n, generator=generator).to(device)
        total = torch.zeros((), device=device)
        for b in range(n_batches):
            idx = perm[b * bs:(b + 1) * bs]
            with record_function("train.step"):
                loss, extra = step(idx)
            with record_function("train.update"):
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            total += loss.detach()
            iteration += 1
            if monitor is not None:
                monitor(StepInfo(iteration, epoch, idx, loss.detach(), extra))
        mean = float(total) / n_batches  # the epoch's one host sync
        if not math.isfinite(mean):
            raise TrainingDiverged(f"{desc}: loss became {mean} in epoch {epoch}")
        epoch_losses.append(mean)
        bar.set_postfix(loss=f"{mean:.4g}")
    return epoch_losses
