"""The mini-batch training loop every deep method shares, for one run or a pack of runs.

A *pack* is K runs of one network architecture and one method, each with its own weights,
data, per-run values (the Deep SVDD centre c, the margin C, ...), seed, optimiser state and
monitor, trained together. A run alone is a pack of one; both go through :func:`run_training`,
and a method writes its step once, for one run: ``step(net, idx, data) -> (loss, extra)``, with
``net`` the run's network (:class:`RunNet`), ``idx`` ``(B,)`` the batch's sample indices and
``data`` the run's tensors. A pack of one calls the step on the module's own parameters and
back-propagates (plain autograd: the same speed as a hand-written step); a larger pack stacks
the runs' parameters (``torch.stack``, as ``torch.func.stack_module_state`` does) and maps the step
over them with ``torch.func.vmap`` of ``torch.func.grad_and_value`` and ``functional_call``. Adam and SGD act
element-wise, so one optimiser over the stacked parameters is K optimisers: a run's result does
not depend on what it was packed with (``tests/test_packs.py``).

Batches are index slices of tensors already on the device (no DataLoader, no per-sample work).
During training BatchNorm normalises with batch statistics and keeps no running statistics (a
mapped step cannot update shared buffers in place): the estimators score a trained network with
the exact statistics of its training data instead (``scores.recompute_bn_statistics``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.func import functional_call, grad_and_value, vmap
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
    """What the loop reports to a run's monitor after every optimiser step. ``loss`` is read from
    the device only when a monitor asks for it (no host sync per step otherwise)."""

    iteration: int
    epoch: int
    index: torch.Tensor
    loss_tensor: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return float(self.loss_tensor)


Monitor = Callable[[StepInfo], None]


class RunNet:
    """One run's score network inside a training step: ``net(x, **kwargs)`` is ``module(x, **kwargs)``, e.g. the
    ``(B, ...) -> (B,)`` scores, with the
    run's parameters ``params`` (name -> tensor) and buffers; ``net.at(other)`` is the same run with other
    parameters (a look-ahead step, a meta-gradient's tangent). ``RunNet.of(module)`` wraps a module's own
    parameters (a pack of one): ``net(x)`` then equals ``module(x)`` and back-propagates into it."""

    def __init__(self, module: nn.Module, params: Mapping[str, torch.Tensor], buffers: Mapping[str, torch.Tensor]):
        self.module, self.params, self.buffers = module, dict(params), dict(buffers)

    @classmethod
    def of(cls, module: nn.Module) -> RunNet:
        return cls(module, {k: p for k, p in module.named_parameters() if p.requires_grad},
                   dict(module.named_buffers()))

    def at(self, params: Mapping[str, torch.Tensor]) -> RunNet:
        return RunNet(self.module, params, self.buffers)

    def __call__(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return functional_call(self.module, (self.params, self.buffers), (x,), kwargs, strict=False)


Step = Callable[[RunNet, torch.Tensor, Mapping[str, Any]], tuple[torch.Tensor, dict]]


@contextmanager
def untracked_batch_norm(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Within the block every BatchNorm of ``modules`` normalises with batch statistics in train mode and
    leaves its running statistics and counters as they are (``track_running_stats`` off)."""
    norms = [m for module in modules for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.track_running_stats for m in norms]
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m, tracked in zip(norms, saved):
            m.track_running_stats = tracked


def make_optimizer(params, s: TrainSettings) -> torch.optim.Optimizer:
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)
    return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)


def _stack(values: Sequence[torch.Tensor], what: str) -> torch.Tensor:
    shapes = {tuple(v.shape) for v in values}
    if len(shapes) > 1:
        raise ConfigError(f"the runs of a pack need {what} of one shape; got {sorted(shapes)}")
    return torch.stack(list(values))


def _trainable(module: nn.Module) -> list[str]:
    return [k for k, p in module.named_parameters() if p.requires_grad]


def _set_parameter(module: nn.Module, name: str, value: nn.Parameter) -> None:
    owner, _, leaf = name.rpartition(".")
    setattr(module.get_submodule(owner) if owner else module, leaf, value)


class _Pack:
    """The runs' parameters as the optimiser sees them and the step that gives their gradients."""

    def __init__(self, modules: Sequence[nn.Module], step: Step, data: Sequence[Mapping[str, Any]]):
        self.modules, self.step, self.k = list(modules), step, len(modules)
        template = self.modules[0]
        if self.k == 1:
            self.net, self.data = RunNet.of(template), data[0]
            self.leaves = list(self.net.params.values())
            return
        names = _trainable(template)
        if any(_trainable(m) != names for m in self.modules):
            raise ConfigError("the runs of a pack need networks of one architecture")
        self.stacked = {k: _stack([m.get_parameter(k).detach() for m in self.modules], f"parameter {k}")
                        .requires_grad_() for k in names}
        self.buffers = {k: _stack([m.get_buffer(k) for m in self.modules], f"buffer {k}")
                        for k, _ in template.named_buffers()}
        self.data = {k: _stack([d[k] for d in data], f"data {k!r}") for k in data[0]}
        self.leaves = list(self.stacked.values())
        # each module's parameters become views of its slice: monitors see the current weights
        for i, m in enumerate(self.modules):
            for k, p in self.stacked.items():
                _set_parameter(m, k, nn.Parameter(p.detach()[i], requires_grad=False))

        def one_run(params, buffers, idx, run_data):
            return step(RunNet(template, params, buffers), idx, run_data)

        self.mapped = vmap(grad_and_value(one_run, has_aux=True))

    def backward(self, idx: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Each run's loss ``(K,)`` and step extras (leading axis K) for batch indices ``idx`` ``(K, B)``;
        leaves every parameter's gradient in ``.grad``."""
        if self.k == 1:
            loss, extra = self.step(self.net, idx[0], self.data)
            loss.backward()
            return loss.detach()[None], {key: v.detach()[None] for key, v in extra.items()}
        grads, (loss, extra) = self.mapped(self.stacked, self.buffers, idx, self.data)
        for k, p in self.stacked.items():
            p.grad = grads[k]
        return loss.detach(), {key: v.detach() for key, v in extra.items()}

    def mask(self, alive: torch.Tensor) -> None:
        """Zero the gradients of the runs that diverged (``alive`` ``(K,)`` bool, on the device)."""
        for p in self.leaves:
            p.grad = torch.where(alive.view(-1, *[1] * (p.dim() - 1)), p.grad, 0)

    def finish(self) -> None:
        """Give every module its own trained parameters again."""
        if self.k == 1:
            return
        for i, m in enumerate(self.modules):
            for k, p in self.stacked.items():
                _set_parameter(m, k, nn.Parameter(p.detach()[i].clone()))


def run_training(modules: nn.Module | Sequence[nn.Module], n: int, step: Step, s: TrainSettings,
                 generators: torch.Generator | Sequence[torch.Generator],
                 data: Mapping[str, Any] | Sequence[Mapping[str, Any]] = (), *, desc: str = "train",
                 progress: bool = False, monitors: Monitor | Sequence[Monitor | None] | None = None
                 ) -> list[list[float]]:
    """Train a pack of K runs (``modules``, ``generators``, ``data``, ``monitors``: one each; a single module
    etc. is a pack of one) for ``s.epochs`` epochs over ``n`` samples each: every epoch each run draws its own
    permutation of ``range(n)`` from its generator and takes ``n // batch_size`` steps (the last partial batch
    is dropped: BatchNorm needs full batches). ``step(net, idx, data)`` gives one run's loss and a dict of
    tensor extras for its monitor (``StepInfo.extra``); ``data`` is the run's dict of tensors (in a pack of more
    than one, the runs' tensors must have one shape). Returns each run's mean loss per epoch; a run whose loss
    turns NaN or infinite stops there (its list ends with that value; its weights are not a result), the
    others go on (:func:`diverged` tells). ConfigError when the runs cannot be packed."""
    modules = [modules] if isinstance(modules, nn.Module) else list(modules)
    k = len(modules)
    generators = [generators] if isinstance(generators, torch.Generator) else list(generators)
    data = [data] if isinstance(data, Mapping) else list(data) or [{}] * k
    monitors = [monitors] * k if monitors is None or callable(monitors) else list(monitors)
    if not k or len(generators) != k or len(data) != k or len(monitors) != k:
        raise ConfigError(f"a pack needs one generator, data dict and monitor per run; got {k} runs, "
                          f"{len(generators)} generators, {len(data)} data dicts, {len(monitors)} monitors")
    if n == 0:
        return [[] for _ in modules]
    for m in modules:
        m.train()
    device = next(modules[0].parameters()).device
    bs = min(s.batch_size, n)
    n_batches = n // bs
    losses: list[list[float]] = [[] for _ in modules]
    alive = [True] * k
    alive_mask = None  # on the device, once a run of a larger pack has diverged
    iteration = 0
    with untracked_batch_norm(modules):
        pack = _Pack(modules, step, data)  # (raises before it changes a module)
        try:
            opt = make_optimizer(pack.leaves, s)
            # disable=None: tqdm switches itself off when the output is not a terminal
            bar = tqdm(range(s.epochs), desc=desc, disable=None if progress else True, leave=False)
            for epoch in bar:
                perms = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
                total = torch.zeros(k, device=device)
                for b in range(n_batches):
                    idx = perms[:, b * bs:(b + 1) * bs]
                    with record_function("train.step"):
                        opt.zero_grad(set_to_none=True)
                        loss, extra = pack.backward(idx)
                    with record_function("train.update"):
                        if alive_mask is not None:
                            pack.mask(alive_mask)
                        opt.step()
                    total += loss
                    iteration += 1
                    for i, monitor in enumerate(monitors):
                        if monitor is not None and alive[i]:
                            monitor(StepInfo(iteration, epoch, idx[i], loss[i],
                                             {key: v[i] for key, v in extra.items()}))
                means = [t / n_batches for t in total.tolist()]  # the epoch's one host sync
                for i, mean in enumerate(means):
                    if alive[i]:
                        losses[i].append(mean)
                        alive[i] = math.isfinite(mean)
                if not any(alive):
                    break
                if not all(alive):
                    alive_mask = torch.tensor(alive, device=device)
                bar.set_postfix(loss=f"{sum(m for m, a in zip(means, alive) if a) / sum(alive):.4g}")
        finally:
            pack.finish()
    return losses


def diverged(epoch_losses: Sequence[float], desc: str) -> TrainingDiverged | None:
    """The error of a run whose last epoch's mean loss (from :func:`run_training`) is NaN or infinite, else None."""
    if epoch_losses and not math.isfinite(epoch_losses[-1]):
        return TrainingDiverged(f"{desc}: loss became {epoch_losses[-1]} in epoch {len(epoch_losses) - 1}")
    return None
