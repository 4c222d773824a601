"""Latent Outlier Exposure (LOE; Qiu, Li, Kloft, Rudolph, Mandt, ICML 2022) and SOEL's training
objective (Li, Qiu, Kloft, Smyth, Mandt, Rudolph, ICML 2023) on a given labeled set.

LOE gives every training sample a normal loss L_n and an anomaly loss L_a that share the network's
parameters. In each mini-batch of B samples the k = round(alpha * B) samples (rounded half up) with
the largest L_n - L_a are latent anomalies: with k anomalies fixed, these labels minimise the batch
loss (LOE's block-coordinate update of the latent labels, alternating with the parameter step).
``hard`` (LOE_H) trains a latent anomaly on L_a, ``soft`` (LOE_S) on 0.5 L_n + 0.5 L_a; every other
sample trains on L_n. The test score is L_n. alpha is the assumed contamination ratio (the LOE
paper's experiments set it to the true one).

Losses here: L_n = Omega(x), the score network's output, and L_a = 1 / (Omega(x) + 1e-6).
- Deep SVDD (``score='svdd'``): L_n = ||phi(x) - c||^2 and L_a = 1 / ||phi(x) - c||^2, LOE's pairing
  for the one-class objective: the inverse squared distance is Deep SAD's anomaly term (Ruff et al.,
  ICLR 2020, Eq. 3 of the ELITE paper), with Deep SAD's eps 1e-6. Always the squared distance, as
  in Deep SVDD's objective (``model.squared`` does not apply).
- Auto-encoder (``score='ae'``): L_n = squared reconstruction error, L_a = its inverse. This
  counterpart is our choice (not taken from the LOE paper), built the same way as Deep SVDD's.
- Rotation prediction (``score='rot'``): L_n = the cross-entropy summed over the four rotations,
  L_a = its inverse; our choice, built as for the auto-encoder (not taken from the LOE paper).
- NeuTraL AD (``score='neutral'``): L_n = its contrastive loss (DCL), L_a = its inverse, as for the others.
  The LOE paper pairs NeuTraL AD's DCL with -sum_k log(1 - p_k) instead (p_k the softmax probability
  each view is recognised with); the inverse keeps one anomaly loss for every score here.

Both start as ELITE does: c is the mean initial embedding of the training samples and there is no
auto-encoder pre-training, so LOE / SOEL and ELITE differ only in how they treat the unlabeled
samples. Latent labels are assigned from the first step unless ``warmup_epochs`` > 0 (2 warm-up
epochs measured no better on digits classes 0 / 3 / 8, r_p 0.3).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch

from elite_exp.errors import ConfigError
from elite_exp.methods.base import DeepDetector, each_run, train_runs
from elite_exp.methods.losses import anomaly_loss, loe_losses, supervised_loss
from elite_exp.methods.training import TrainSettings
from elite_exp.scores import SCORES, build_score

MODES = ("hard", "soft")


MAX_ALPHA = 0.5  # LOE's latent labels: at most half of a batch is flagged anomalous


def check_alpha(alpha) -> float:
    """alpha, the assumed share of anomalies among the unlabeled samples: a number in [0, MAX_ALPHA]."""
    number = isinstance(alpha, int | float | np.integer | np.floating) and not isinstance(alpha, bool)
    if not (number and 0 <= alpha <= MAX_ALPHA):
        raise ConfigError(f"alpha={alpha!r} is not allowed; the assumed contamination ratio must lie in "
                          f"[0, {MAX_ALPHA}]")
    return float(alpha)


def check_warmup(epochs) -> int:
    """A number of warm-up epochs: an int >= 0."""
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 0:
        raise ConfigError(f"warmup_epochs={epochs!r} is not allowed; it must be an int >= 0")
    return int(epochs)


def latent_anomalies(l_n: torch.Tensor, l_a: torch.Tensor, alpha: float) -> torch.Tensor:
    """(B,) bool: True for the round(alpha * B) samples with the largest L_n - L_a (LOE's label update)."""
    k = int(alpha * len(l_n) + 0.5)
    flags = torch.zeros_like(l_n, dtype=torch.bool)
    # out of place (scatter, not an indexed assignment): the same code maps over a pack of runs
    return flags.scatter(0, torch.topk((l_n - l_a).detach(), k).indices, True) if k else flags


class _LatentLabelDetector(DeepDetector):
    """What LOE and SOEL share: the score network, alpha, the warm-up and the per-batch labels."""

    def _check_params(self) -> None:
        if self.score not in SCORES:
            raise ConfigError(f"score={self.score!r} is not allowed; allowed: {', '.join(SCORES)}")
        check_alpha(self.alpha)
        check_warmup(self.warmup_epochs)
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs={self.warmup_epochs} is not allowed with epochs={self.epochs}: every "
                              f"epoch would be warm-up and no sample get a latent label; allowed: warmup_epochs < "
                              f"epochs (alpha=0 trains on L_n alone)")

    def _build_module(self, input_shape):
        return build_score(self.score, self._spec(input_shape), input_shape, squared=True)

    def _prepare(self, runs) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor | None]:
        """Set each run's centre c (svdd score) from its unlabeled samples; the pack's latent labeler."""
        s = self._settings()
        each_run(runs, lambda run: run.module.prepare(run.x_unl, batch_size=s.batch_size))
        return self._labeler(len(runs[0].x_unl), s)

    def _labeler(self, n: int, s: TrainSettings) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor | None]:
        """``label(l_n, l_a)`` for successive steps over ``n`` samples: None (every sample normal)
        during the first ``warmup_epochs`` epochs, then the latent anomaly flags."""
        warmup_steps = self.warmup_epochs * (n // min(s.batch_size, n))
        steps = itertools.count()

        def label(l_n, l_a):
            return None if next(steps) < warmup_steps else latent_anomalies(l_n, l_a, self.alpha)
        return label


def unlabeled_loss(l_n: torch.Tensor, label, mode: str) -> tuple[torch.Tensor, dict]:
    """Mean LOE loss (``mode`` hard / soft) of a batch of L_n values, (B,), with latent labels from
    ``label(l_n, l_a)`` ((B,) bool, or None: every sample normal), and the monitor's ``anomaly_hat``
    (absent when ``label`` gives None). LOE's, SOEL's and ELITE's LOE term's batch loss."""
    l_a = anomaly_loss(l_n)
    flags = label(l_n, l_a)
    if flags is None:
        return l_n.mean(), {}
    return loe_losses(l_n, l_a, flags, mode).mean(), {"anomaly_hat": flags}


class LOE(_LatentLabelDetector):
    """Latent Outlier Exposure on ``score`` (``svdd`` / ``ae`` / ``rot``), unsupervised: every sample of X
    trains as unlabeled (y is dropped). ``mode``: ``hard`` (LOE_H) or ``soft`` (LOE_S); ``alpha``
    in [0, 0.5]: share of each mini-batch taken as latent anomalies (0 = plain training on L_n).
    ``warmup_epochs``: first epochs on L_n only. One optimiser step per mini-batch of B samples,
    ``len(X) // B`` per epoch (Deep SVDD's and, up to the labeled samples, ELITE's count).

    The monitor's ``extra['anomaly_hat']`` holds each step's (B,) latent labels."""

    uses_labels = False

    def __init__(self, mode: str = "hard", alpha: float = 0.1, warmup_epochs: int = 0, score: str = "svdd",
                 network=None, epochs: int = 30, batch_size: int = 128, lr: float = 1e-4, optimizer: str = "adam",
                 weight_decay: float = 1e-6, contamination: float = 0.1, device: str = "auto", random_state: int = 0,
                 progress: bool = False):
        self._keep_params(locals())

    def _check_params(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r} is not allowed; allowed: {', '.join(MODES)}")
        super()._check_params()

    def _train(self, runs) -> None:
        label = self._prepare(runs)
        mode = self.mode

        def step(net, idx, d):
            return unlabeled_loss(net(d["x"][idx]), label, mode)

        train_runs(runs, len(runs[0].x_unl), step, lambda r: {"x": r.x_unl}, desc=f"LOE-{mode}-{self.score}")


class SOEL(_LatentLabelDetector):
    """SOEL's training objective (Li et al., ICML 2023) on a given labeled set: labeled normals
    train on L_n, labeled anomalies on L_a, unlabeled samples on LOE_S's latent labels with
    ``alpha``. The loss of a step is mean(LOE_S loss of B unlabeled samples) + mean(supervised loss
    of the labeled set), the sum of the two means as in SOEL's objective.

    SOEL's query strategy (which samples to label) and its estimate of the contamination from the
    queried labels are not used: the labeled set is given by the protocol (half anomalies, drawn
    apart from the unlabeled pool), and alpha is a parameter. Where SOEL takes one step on the
    queried set and one on an unlabeled batch per iteration, here the whole labeled set joins every
    mini-batch of unlabeled samples in one step, so SOEL takes ``n_unlabeled // B`` steps per epoch
    and sees the labeled set at every step, exactly as ELITE (and Deep SAD with
    ``labeled_every_batch``). y: -1 unlabeled, 0 / 1 labeled normal / anomaly (either may be absent).

    The monitor's ``extra`` holds each step's latent labels (``anomaly_hat``, (B,)) and the
    supervised loss (``val_loss``)."""

    requires_labels = (-1,)
    trains_on = "all"  # every step's batch holds the labeled set too (scored with those statistics)

    def __init__(self, alpha: float = 0.1, warmup_epochs: int = 0, score: str = "svdd", network=None,
                 epochs: int = 30, batch_size: int = 128, lr: float = 1e-4, optimizer: str = "adam",
                 weight_decay: float = 1e-6, contamination: float = 0.1, device: str = "auto", random_state: int = 0,
                 progress: bool = False):
        self._keep_params(locals())

    def _train(self, runs) -> None:
        label = self._prepare(runs)

        def step(net, idx, d):
            x_lab = d["x_lab"]
            l_n = net(torch.cat([d["x_unl"][idx], x_lab]))
            b = len(idx)
            loss, extra = unlabeled_loss(l_n[:b], label, "soft")
            if len(x_lab):
                supervised = supervised_loss(l_n[b:], d["y_lab"])
                loss = loss + supervised
                extra["val_loss"] = supervised.detach()
            return loss, extra

        train_runs(runs, len(runs[0].x_unl), step, lambda r: {"x_unl": r.x_unl, "x_lab": r.x_lab, "y_lab": r.y_lab},
                   desc=f"SOEL-{self.score}")
