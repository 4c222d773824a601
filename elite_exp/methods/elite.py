"""ELITE (Algorithm 1): meta-gradient pseudo-label inference fused into training."""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings

import torch

from elite_exp.errors import ConfigError
from elite_exp.methods.autoencoder import pretrained_encoder
from elite_exp.methods.base import DeepDetector, Run, each_run, run_scalar, train_runs
from elite_exp.methods.loe import check_alpha, check_warmup, latent_anomalies, unlabeled_loss
from elite_exp.methods.losses import supervised_loss, validation_loss
from elite_exp.methods.meta_gradient import META_GRADIENTS, UPDATES, elite_loss, meta_gradients
from elite_exp.methods.training import RunNet, TrainSettings
from elite_exp.scores import SCORES, batch_statistics, build_score, mean_score

log = logging.getLogger(__name__)

MARGINS = ("auto_mean", "auto_max")
LABELED_LOSSES = ("hinge", "inverse")


def parse_margin(margin) -> str | float:
    """``auto_mean``, ``auto_max`` or a positive number (also as a string)."""
    if isinstance(margin, str) and margin in MARGINS:
        return margin
    try:
        value = float(margin)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0:
        raise ConfigError(f"margin={margin!r} is not allowed; allowed: auto_mean, auto_max or a number > 0")
    return value


def labels_step(net: RunNet, idx: torch.Tensor, data) -> tuple[torch.Tensor, dict]:
    """One step on the labeled set alone: ELITE's validation loss L_v (Eq. 6) of the whole labeled set
    ``data['x_lab']`` (normalised with its own batch statistics) at the margin ``data['margin']``."""
    return validation_loss(net(data["x_lab"]), data["y_lab"], data["margin"]), {}


def train_on_labels(runs: list[Run], steps_per_epoch: int, s: TrainSettings, *, desc: str,
                    main: bool = True) -> None:
    """Train the runs' networks on their labeled sets alone (``run.x_lab`` ``(L, ...)``, ``run.y_lab`` ``(L,)``)
    with L_v (:func:`labels_step`) at each run's margin ``run.est.margin_``: ``steps_per_epoch`` steps an epoch
    for ``s.epochs`` epochs. The labels-only ablation, and (``main`` False) ELITE's supervised warm-up."""
    train_runs(runs, steps_per_epoch, labels_step,
               lambda r: {"x_lab": r.x_lab, "y_lab": r.y_lab, "margin": run_scalar(r.est.margin_, r.x_lab)},
               desc=desc, settings=dataclasses.replace(s, batch_size=1), main=main)


class EliteDetector(DeepDetector):
    """ELITE on a score-based deep detector (``score='svdd'``, ``'ae'``, ``'rot'`` or ``'neutral'``:
    ``scores.SCORES``).

    The labeled examples (y = 0 / 1) are used only as ELITE's validation set; the network
    trains on the unlabeled samples (y = -1) with labels inferred from meta-gradients.

    Beyond the paper (off by default): ``pretrain`` starts the encoder from an auto-encoder trained
    on the unlabeled samples for ``epochs`` epochs (Deep SVDD's pre-training; svdd score only: it has no
    effect on the ``ae`` score, an auto-encoder already, nor on ``rot`` / ``neutral``); ``warmup_epochs`` > 0
    first trains the network on the labeled set alone for that many epochs (the labels-only ablation's steps:
    L_v of the whole labeled set, ``len(unlabeled) // batch_size`` steps an epoch, its own Adam), after c and the
    margin C are set and after any pre-training, then runs ELITE's ``epochs``; ``labeled_weight`` > 0 adds
    that weight times the validation loss L_v (Eq. 6) of the labeled set to every step's loss, a direct supervised term
    beside the meta-gradient weights; ``labeled_loss`` picks that term: ``hinge`` (L_v itself) or
    ``inverse`` (SOEL's supervised loss, ``losses.supervised_loss``: Omega for labeled normals,
    1 / (Omega + 1e-6) for labeled anomalies, on ELITE's Omega: the distance unless ``squared``; it keeps
    pushing an anomaly away past the margin); ``loe_weight`` > 0 adds that weight times LOE_H's loss
    (``methods.loe``) of each unlabeled batch on ELITE's Omega, with ``alpha`` (in [0, 0.5]) the share of the
    batch taken as latent anomalies: the prior that most unlabeled samples are normal, which ELITE's own
    update does not use (its step is the validation gradient preconditioned by the batch, README).
    ``alpha`` None (the default) takes ``contamination``; the runner gives it the run's true r_p unless
    ``elite.alpha`` is set. A ``labeled_loss`` or ``alpha`` without the weight of its term is a ConfigError.
    ``joint_batch`` scores the labeled set in one forward pass with each unlabeled mini-batch (one set of
    BatchNorm statistics for both, as SOEL and Deep SAD with labels in every batch score them) for L_v, the
    meta-gradients and the labeled term, instead of in a pass of its own (the paper's validation pass,
    normalised with the labeled set's statistics: half anomalies, unlike any training batch); the trained
    network then scores with the statistics of all training samples. Only the training steps change: c, the
    margin C and the warm-up are computed as without it, and every step's passes cover batch_size + L samples
    (the labeled share of a step's statistics is L / (batch_size + L), larger than in the scoring statistics).
    The monitor's ``val_loss`` (Fig. 7's labeled loss) is then L_v of the joint pass: it depends on the batch.
    A network without BatchNorm scores each sample alone, so there it changes nothing (a warning says so).
    """

    requires_labels = (-1, 0, 1)

    def __init__(self, score: str = "svdd", squared: bool = False, update: str = "reweight",
                 margin="auto_mean", eta_m: float = 1.0, meta_grad: str = "forward_ad", normalize: bool = True,
                 pretrain: bool = False, warmup_epochs: int = 0, labeled_weight: float = 0.0,
                 labeled_loss: str = "hinge", loe_weight: float = 0.0, alpha: float | None = None,
                 joint_batch: bool = False, network=None,
                 epochs: int = 30, batch_size: int = 128, lr: float = 1e-4,
                 optimizer: str = "adam", weight_decay: float = 1e-6, contamination: float = 0.1,
                 device: str = "auto", random_state: int = 0, progress: bool = False):
        self._keep_params(locals())

    def _check_params(self) -> None:
        if self.score not in SCORES:
            raise ConfigError(f"score={self.score!r} is not allowed; allowed: {', '.join(SCORES)}")
        if self.update not in UPDATES:
            raise ConfigError(f"update={self.update!r} is not allowed; allowed: {', '.join(UPDATES)}")
        if self.meta_grad not in META_GRADIENTS:
            raise ConfigError(f"meta_grad={self.meta_grad!r} is not allowed; allowed: {', '.join(META_GRADIENTS)}")
        if not 0 < self.eta_m < math.inf:
            raise ConfigError(f"eta_m={self.eta_m} is not allowed; eta_M must be a finite number > 0")
        parse_margin(self.margin)
        check_warmup(self.warmup_epochs)
        if not self.labeled_weight >= 0:
            raise ConfigError(f"labeled_weight={self.labeled_weight} is not allowed; it must be >= 0")
        if self.labeled_loss not in LABELED_LOSSES:
            raise ConfigError(f"labeled_loss={self.labeled_loss!r} is not allowed; "
                              f"allowed: {', '.join(LABELED_LOSSES)}")
        if self.labeled_loss != "hinge" and not self.labeled_weight:
            raise ConfigError(f"labeled_loss={self.labeled_loss!r} acts only with a direct labeled term: give it a "
                              f"weight > 0 (elite.labeled_weight in the runner, labeled_weight in EliteDetector)")
        if not self.loe_weight >= 0:
            raise ConfigError(f"loe_weight={self.loe_weight} is not allowed; it must be >= 0")
        if self.alpha is not None:
            check_alpha(self.alpha)
            if not self.loe_weight:
                raise ConfigError(f"alpha={self.alpha} acts only with an LOE term: give it a weight > 0 "
                                  f"(elite.loe_weight in the runner, loe_weight in EliteDetector)")

    @property
    def trains_on(self) -> str:
        """The samples whose BatchNorm statistics the trained network scores with (``DeepDetector``): the unlabeled
        ones, or with ``joint_batch`` all (the labeled set joins every training pass)."""
        return "all" if self.joint_batch else "unlabeled"

    def _trains_on_contamination(self) -> bool:
        return bool(self.loe_weight) and self.alpha is None  # the LOE term's alpha

    def _loe_alpha(self) -> float:
        """The LOE term's alpha: ``alpha``, else ``contamination``."""
        return self.contamination if self.alpha is None else self.alpha

    def _build_module(self, input_shape):
        return build_score(self.score, self._spec(input_shape), input_shape, squared=self.squared)

    @torch.no_grad()
    def _margin(self, module, x_unl, x_lab, bs: int) -> float:
        """C: ``auto_mean`` = mean initial score of the training data (the paper);
        ``auto_max`` = largest initial score of the labeled set (the official code)."""
        margin = parse_margin(self.margin)
        if not isinstance(margin, str):
            return margin
        if margin == "auto_max":
            with batch_statistics(module):
                return float(module(x_lab).max())
        return mean_score(module, x_unl, bs)

    def _train(self, runs) -> None:
        s = self._settings()
        if self.pretrain and self.score != "svdd":
            warnings.warn(f"pretrain=True acts on the svdd score only; score={self.score!r} trains without "
                          f"pre-training", UserWarning, stacklevel=4)
        if self.joint_batch and not self._spec(runs[0].est.input_shape_).batch_norm:
            warnings.warn("joint_batch=True acts on a network with BatchNorm only (without it a sample's score does "
                          "not depend on the others in its pass); this one has none", UserWarning, stacklevel=4)
        def init(run):
            est, module = run.est, run.module
            if self.pretrain and self.score == "svdd":
                state, est.pretraining_ = pretrained_encoder(self._spec(est.input_shape_), est.input_shape_, run.x_unl,
                                                             s, int(est.random_state), self.progress)
                module.encoder.load_state_dict(state)
            module.prepare(run.x_unl, batch_size=s.batch_size)
            est.margin_ = self._margin(module, run.x_unl, run.x_lab, s.batch_size)
            log.debug("ELITE margin C = %.4g", est.margin_)

        each_run(runs, init)
        n = len(runs[0].x_unl)
        if self.warmup_epochs:
            train_on_labels(runs, max(n // s.batch_size, 1), dataclasses.replace(s, epochs=self.warmup_epochs),
                            desc=f"ELITE-{self.score} warm-up", main=False)
        alpha = self._loe_alpha()

        def step(net, idx, d):
            scores, m, lv, joint_lab = meta_gradients(net, d["x_unl"][idx], d["x_lab"], d["y_lab"], d["margin"],
                                                      s.lr, self.meta_grad, self.joint_batch)
            loss, y_hat = elite_loss(scores, m, d["margin"], self.update, self.eta_m, self.normalize)
            if self.labeled_weight:
                # the labeled set normalised as for L_v: on its own, or (joint_batch) with the mini-batch
                s_lab = net(d["x_lab"]) if joint_lab is None else joint_lab
                term = (validation_loss(s_lab, d["y_lab"], d["margin"]) if self.labeled_loss == "hinge"
                        else supervised_loss(s_lab, d["y_lab"]))
                loss = loss + self.labeled_weight * term
            if self.loe_weight:
                loss = loss + self.loe_weight * unlabeled_loss(
                    scores, lambda l_n, l_a: latent_anomalies(l_n, l_a, alpha), "hard")[0]
            return loss, {"meta_gradient": m, "anomaly_hat": y_hat, "val_loss": lv}

        train_runs(runs, n, step, lambda r: {"x_unl": r.x_unl, "x_lab": r.x_lab, "y_lab": r.y_lab,
                                             "margin": run_scalar(r.est.margin_, r.x_unl)}, desc=f"ELITE-{self.score}")
