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


class Score(nn.Module):
    """The contract of a score network: ``forward(x)`` gives the ``(N,)`` anomaly scores of ``x``
    ``(N, ...)``; ``prepare(x, batch_size, among)`` sets what the score takes from the training
    data before training (nothing here; the Deep SVDD centre c in :class:`SVDDScore`)."""

    def prepare(self, x: torch.Tensor, batch_size: int = 1024, among: torch.Tensor | None = None) -> None:
        """Nothing to initialise from data."""


class SVDDScore(Score):
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
    def prepare(self, x: torch.Tensor, batch_size: int = 1024, eps: float = 0.1,
                among: torch.Tensor | None = None) -> None:
        """Set c to the mean embedding of ``x`` (``(N, ...)``, N >= 2) under the current weights,
        normalised with batch statistics over :func:`even_batches` of ``batch_size``; ``among``
        (bool ``(N,)``) averages only those samples (e.g. the labeled normals) while every sample
        of ``x`` takes part in the batch statistics."""
        with batch_statistics(self):
            z = torch.cat([self.embed(b) for b in even_batches(x, batch_size)])
        c = (z if among is None else z[among]).mean(0)
        small = c.abs() < eps
        c[small & (c < 0)] = -eps
        c[small & (c >= 0)] = eps
        self.center.copy_(c)


class AEScore(Score):
    """Auto-encoder: squared reconstruction error summed over all input entries."""

    def __init__(self, spec: NetworkSpec, input_shape: tuple[int, ...]):
        super().__init__()
        self.encoder = build_encoder(spec, input_shape)
        self.decoder = build_decoder(spec, input_shape, self.encoder)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.reconstruct(x) - x).pow(2).flatten(1).sum(dim=1)


ROTATIONS = (0, 1, 2, 3)  # multiples of 90 degrees


class RotationScore(Score):
    """Rotation prediction (RotNet, Gidaris et al., ICLR 2018; as an anomaly score: Golan and El-Yaniv,
    NeurIPS 2018, with the four rotations of Hendrycks et al., NeurIPS 2019): the encoder phi, a
    LeakyReLU (0.01) and a linear head with bias classify which of the 0 / 90 / 180 / 270 degree
    rotations an image shows; the score is the cross-entropy summed over the four rotated copies,
    sum_r CE(head(phi(rot_r(x))), r), in nats: about 4 ln 4 = 5.5 for an untrained head, 0 for a sure and right one.

    ``x``: ``(N, C, S, S)`` square images (a rotation must keep the shape); scores ``(N,)``. The four
    copies go through the network as one batch of 4N (BatchNorm normalises them together).
    """

    def __init__(self, spec: NetworkSpec, input_shape: tuple[int, ...]):
        super().__init__()
        if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
            raise ConfigError(f"the rotation score needs square images (N, C, S, S); got samples of shape "
                              f"{tuple(input_shape)}")
        self.encoder = build_encoder(spec, input_shape)
        self.head = nn.Linear(spec.rep_dim, len(ROTATIONS))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(4, N, 4)``: the head's logits for each rotation r of each sample."""
        rotated = torch.cat([torch.rot90(x, r, dims=(2, 3)) for r in ROTATIONS])
        return self.head(nn.functional.leaky_relu(self.encoder(rotated), 0.01)).unflatten(0, (len(ROTATIONS), -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_p = self.logits(x).log_softmax(-1)
        # the log-probability of rotation r for copy r: the diagonal of the (rotation, class) axes
        return -log_p.diagonal(dim1=0, dim2=2).sum(-1)


class NeuTraLScore(Score):
    """NeuTraL AD (Qiu, Pfrommer, Kloft, Mandt, Rudolph: "Neural Transformation Learning for Deep Anomaly
    Detection Beyond Images", ICML 2021): K = :data:`N_TRANSFORMS` learnable transformations T_k and the
    encoder phi are trained together with the deterministic contrastive loss (DCL), which is the score:

        Omega(x) = -sum_k log( h(z_k, z) / (h(z_k, z) + sum_{l != k} h(z_k, z_l)) ),
        z = phi(x), z_k = phi(T_k(x)), h(a, b) = exp(cos(a, b) / tau), tau = :data:`DCL_TEMPERATURE`,

    in nats: K log K (about 5.5 for K = 4) when every view looks alike, 0 when each transformed view
    is recognised as its own. Each T_k is NeuTraL's multiplicative mask, T_k(x) = M_k(x) * x with
    M_k(x) in (0, 1): for vectors a two-layer MLP (hidden width D, LeakyReLU 0.01, sigmoid), for images
    the same with 3x3 convolutions (8 channels per mask); the K masks run as one grouped layer. The
    original and its K views go through the encoder as one batch of (K + 1) N (BatchNorm normalises them
    together). K = 4 (NeuTraL's papers use 4-11 by data set) keeps a step about 5x a Deep SVDD step.

    ``x``: ``(N, D)`` vectors or ``(N, C, H, W)`` images; scores ``(N,)``.
    """

    def __init__(self, spec: NetworkSpec, input_shape: tuple[int, ...]):
        super().__init__()
        k = N_TRANSFORMS
        if len(input_shape) == 1:
            d = input_shape[0]
            self.masks = nn.Sequential(nn.Conv1d(k * d, k * d, 1, groups=k), nn.LeakyReLU(0.01),
                                       nn.Conv1d(k * d, k * d, 1, groups=k), nn.Sigmoid())
        else:
            c, h = input_shape[0], 8
            self.masks = nn.Sequential(nn.Conv2d(k * c, k * h, 3, padding=1, groups=k), nn.LeakyReLU(0.01),
                                       nn.Conv2d(k * h, k * c, 3, padding=1, groups=k), nn.Sigmoid())
        self.encoder = build_encoder(spec, input_shape)

    def views(self, x: torch.Tensor) -> torch.Tensor:
        """``(K + 1, N, ...)``: ``x`` and its K transformed views."""
        n, k = x.shape[0], N_TRANSFORMS
        flat = x.reshape(n, -1, 1) if x.dim() == 2 else x
        masks = self.masks(flat.repeat(1, k, *([1] * (flat.dim() - 2))))  # (N, K * C, ...)
        masks = masks.reshape(n, k, *x.shape[1:]).transpose(0, 1)
        return torch.cat([x.unsqueeze(0), masks * x.unsqueeze(0)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = self.views(x)
        z = nn.functional.normalize(self.encoder(views.flatten(0, 1)), dim=1).unflatten(0, views.shape[:2])
        # logits[k, l, n] = cos(z_k, z_l) / tau for the K views k against the original and every view l
        logits = torch.einsum("knd,lnd->kln", z[1:], z) / DCL_TEMPERATURE
        k = N_TRANSFORMS
        own = torch.eye(k + 1, dtype=torch.bool, device=x.device)[1:].unsqueeze(-1)  # l == k: not a negative
        denominator = torch.logsumexp(logits.masked_fill(own, float("-inf")), dim=1)
        return (denominator - logits[:, 0]).sum(0)


N_TRANSFORMS = 4  # NeuTraL AD's learnable transformations
DCL_TEMPERATURE = 0.1  # tau of its contrastive loss (NeuTraL AD's value)

SCORES = ("svdd", "ae", "rot", "neutral")


def build_score(name: str, spec: NetworkSpec, input_shape: tuple[int, ...], squared: bool = False) -> Score:
    """The score network ``name`` (one of SCORES); ``squared`` applies to ``svdd`` only."""
    if name == "svdd":
        return SVDDScore(spec, input_shape, squared=squared)
    if name == "ae":
        return AEScore(spec, input_shape)
    if name == "rot":
        return RotationScore(spec, input_shape)
    if name == "neutral":
        return NeuTraLScore(spec, input_shape)
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


def even_batches(x: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, ...]:
    """``x`` cut into ``max(1, N // batch_size)`` consecutive chunks of nearly equal size (they differ by
    at most one sample): every chunk holds at least ``min(N, batch_size)`` samples, so a train-mode
    BatchNorm pass over the chunks never meets a chunk of one sample (for N >= 2), and every sample
    is used (unlike the training loop, nothing is dropped)."""
    return torch.tensor_split(x, max(1, len(x) // max(batch_size, 1)))


@torch.no_grad()
def mean_score(module: nn.Module, x: torch.Tensor, batch_size: int) -> float:
    """The mean score of ``x`` ``(N, ...)`` under the current weights, normalised with batch statistics over
    :func:`even_batches` of ``batch_size``: the margin C at initialisation (``auto_mean``, the paper's choice for
    Eq. 4). N >= 2 on a network with BatchNorm (one sample has no batch statistics: torch raises ValueError)."""
    with batch_statistics(module):
        return float(torch.cat([module(b) for b in even_batches(x, batch_size)]).mean())


@torch.no_grad()
def recompute_bn_statistics(module: nn.Module, x: torch.Tensor, batch_size: int) -> None:
    """Set every BatchNorm's running mean and variance to the exact population statistics of ``x``
    under the current weights, as the network is scored ("precise BN": Wu and Johnson, "Rethinking
    'Batch' in BatchNorm", 2021): the statistics a network is scored with are those of its training
    data, not BatchNorm's running average over earlier weights.

    Layer by layer in the order they run: every earlier layer normalises with its new statistics
    (eval mode, as when scoring), the measured layer's batch means and variances over the
    :func:`even_batches` of ``batch_size`` are combined, weighted by the values they cover (samples
    x spatial positions), into the mean and unbiased variance of all its inputs. So the result does
    not depend on ``batch_size`` (unlike ``torch.optim.swa_utils.update_bn``, which averages
    per-batch variances with equal weights, normalising earlier layers with batch statistics).
    Costs one no-grad pass over ``x`` per BatchNorm layer. ``x``: ``(N, ...)`` with N >= 2.
    Parameters, and a module without BatchNorm, are left as they are.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    if len(x) < 2:
        raise ConfigError(f"BatchNorm statistics need at least 2 samples; got {len(x)}")
    batches = even_batches(x, batch_size)
    order: list[nn.Module] = []  # the layers in the order the forward pass reaches them
    counts: dict[nn.Module, int] = {}  # values per channel in the last batch (samples x positions)

    def seen(m, inputs):
        counts[m] = inputs[0].numel() // inputs[0].shape[1]
        if m not in order:
            order.append(m)

    hooks = [m.register_forward_pre_hook(seen) for m in norms]
    saved = [(m.training, m.momentum, m.track_running_stats) for m in norms]
    was_training = module.training
    try:
        for m in norms:  # also in the middle of training, which keeps no running statistics
            m.track_running_stats = True
        module.eval()
        module(batches[0])  # finds the order
        for layer in order:
            layer.train()
            layer.momentum = 1.0  # its running stats become each batch's mean and unbiased variance
            n_all, s1, s2 = 0, 0.0, 0.0
            for batch in batches:
                module(batch)
                n = counts[layer]
                mean = layer.running_mean.double()
                n_all += n
                s1 = s1 + n * mean
                s2 = s2 + n * (layer.running_var.double() * (n - 1) / n + mean.pow(2))
            mean = s1 / n_all
            layer.running_mean.copy_(mean)
            layer.running_var.copy_((s2 / n_all - mean.pow(2)).clamp_min(0) * n_all / max(n_all - 1, 1))
            layer.eval()
    finally:
        for h in hooks:
            h.remove()
        module.train(was_training)
        for m, (training, momentum, tracked) in zip(norms, saved):
            m.train(training)
            m.momentum = momentum
            m.track_running_stats = tracked


@contextmanager
def statistics_of(module: nn.Module, x: torch.Tensor, batch_size: int):
    """Within the block, BatchNorm running statistics are those of ``x`` (:func:`recompute_bn_statistics`);
    afterwards the module's buffers are restored exactly. For scoring in the middle of training
    (curves) without touching what training does next."""
    saved = {k: v.clone() for k, v in module.named_buffers()}
    recompute_bn_statistics(module, x, batch_size)
    try:
        yield module
    finally:
        with torch.no_grad():
            for k, v in module.named_buffers():
                v.copy_(saved[k])


@torch.no_grad()
def score_in_batches(module: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Scores ``(N,)`` of ``x`` in eval mode (the running BatchNorm statistics, which the estimators set to
    their training data's after training: :func:`recompute_bn_statistics`), in large no-grad batches."""
    was_training = module.training
    module.eval()
    try:
        return torch.cat([module(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        module.train(was_training)
