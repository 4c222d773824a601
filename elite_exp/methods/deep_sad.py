"""Deep SAD (Ruff et al., ICLR 2020; Eq. 3 of the ELITE paper): Deep SVDD plus labeled terms.

Per sample, with squared distance d = ||phi(x) - c||^2: d for unlabeled samples, eta * d for
labeled normals, eta / (d + eps) for labeled anomalies; the loss is the mean over the mini-batch.
``loss='hinge'`` trains Deep SAD with ELITE's loss instead (Eq. 4; Sec. 5.5.1 and Fig. 7 of the paper).
"""

from __future__ import annotations

import torch

from elite_exp.errors import ConfigError
from elite_exp.methods.base import each_run, run_scalar, train_runs
from elite_exp.methods.deep_svdd import DeepSVDD
from elite_exp.methods.losses import deep_sad_hinge_loss, deep_sad_loss, validation_loss
from elite_exp.scores import SVDDScore, mean_score

LOSSES = ("deepsad", "hinge")


class DeepSAD(DeepSVDD):
    """Deep SAD. By default mini-batches are drawn from the union of the unlabeled and the
    labeled samples (the reference implementation); ``labeled_every_batch=True`` draws them
    from the unlabeled samples and appends the whole labeled set to each (as ELITE sees it).

    ``loss``: ``deepsad`` (Deep SAD's own, Eq. 3 of the ELITE paper; score ||phi(x) - c||^2) or ``hinge``
    (ELITE's Eq. 4 on ELITE's score Omega = ||phi(x) - c||: Omega for unlabeled samples and labeled normals,
    max(C - Omega, 0) for labeled anomalies, the labeled terms weighted by eta, C = ``margin_`` = the mean
    Omega of all training samples, unlabeled and labeled, after pre-training and c, as ELITE's ``auto_mean`` over
    its unlabeled ones): the paper's Fig. 7 trains Deep SAD so, to compare ELITE's mechanism with plain
    semi-supervised training under one loss. Its labeled loss (``val_loss`` with the labels in every batch) is
    then ELITE's L_v (Eq. 6) of the labeled set as scored inside the training batch (its BatchNorm statistics;
    ELITE scores its labeled set in a pass of its own). The two scores rank alike.
    A ``loss`` outside ``LOSSES`` is a ConfigError."""

    uses_labels = True
    trains_on = "all"

    @property
    def requires_labels(self) -> tuple[int, ...]:
        """With the labels in every batch the batches are drawn from the unlabeled samples: at least 2 (y=-1)."""
        return (-1,) if self.labeled_every_batch else ()

    def __init__(self, eta: float = 1.0, labeled_every_batch: bool = False, loss: str = "deepsad",
                 pretrain: bool = True, pretrain_epochs: int = 30, network=None, epochs: int = 30,
                 batch_size: int = 128, lr: float = 1e-4, optimizer: str = "adam", weight_decay: float = 1e-6,
                 contamination: float = 0.1, device: str = "auto", random_state: int = 0, progress: bool = False):
        self._keep_params(locals())

    def _check_params(self) -> None:
        super()._check_params()
        if not self.eta > 0:
            raise ConfigError(f"eta={self.eta} is not allowed; Deep SAD's eta must be > 0")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss={self.loss!r} is not allowed; allowed: {', '.join(LOSSES)}")

    def _build_module(self, input_shape):
        return SVDDScore(self._spec(input_shape), input_shape, squared=self.loss == "deepsad")

    def _train(self, runs) -> None:
        hinge, bs = self.loss == "hinge", self._settings().batch_size

        def init(run):
            # the reference pre-trains and sets c on all training data; Eq. 4's C is then that data's mean score
            x_all = torch.cat([run.x_unl, run.x_lab])
            run.est._init_network(run.module, x_all)
            if hinge:
                run.est.margin_ = mean_score(run.module, x_all, bs)

        def data(run):
            t_lab = 1.0 - 2.0 * run.y_lab.to(run.x_unl.dtype)  # +1 normal, -1 anomaly
            d = {"x_unl": run.x_unl, "x_lab": run.x_lab, "t_lab": t_lab, "x_all": torch.cat([run.x_unl, run.x_lab]),
                 "t_all": torch.cat([t_lab.new_zeros(len(run.x_unl)), t_lab])}
            return {**d, "margin": run_scalar(run.est.margin_, run.x_unl)} if hinge else d

        each_run(runs, init)
        eta, every_batch = self.eta, self.labeled_every_batch

        def step(net, idx, d):
            def loss(scores, t):
                return deep_sad_hinge_loss(scores, t, eta, d["margin"]) if hinge else deep_sad_loss(scores, t, eta)

            if not every_batch:
                return loss(net(d["x_all"][idx]), d["t_all"][idx]), {}
            # the whole labeled set joins every batch: report its loss too (Fig. 7b's labeled loss)
            scores = net(torch.cat([d["x_unl"][idx], d["x_lab"]]))
            t = torch.cat([d["t_all"][idx], d["t_lab"]])
            b = len(idx)  # the labeled set follows the batch's b samples; without one there is no labeled loss
            if not len(d["x_lab"]):
                return loss(scores, t), {}
            labeled = validation_loss(scores[b:], t[b:] < 0, d["margin"]) if hinge else loss(scores[b:], t[b:])
            return loss(scores, t), {"val_loss": labeled.detach()}

        n = len(runs[0].x_unl) + (0 if every_batch else len(runs[0].x_lab))
        train_runs(runs, n, step, data, desc="Deep SAD")
