"""The labels-only ablation: ELITE's network and score trained on the labeled examples alone,
with ELITE's validation loss (Eq. 6: hinge on labeled normals and anomalies); no unlabeled data."""

from __future__ import annotations

import torch

from elite_exp.errors import ConfigError
from elite_exp.methods.base import DeepDetector, each_run
from elite_exp.methods.elite import MARGINS, parse_margin, train_on_labels
from elite_exp.scores import SCORES, batch_statistics, build_score


class LabelsOnly(DeepDetector):
    """Trains ``score`` (``svdd`` / ``ae`` / ``rot``) on the labeled set only: every optimiser step uses
    the whole labeled set, ``steps_per_epoch`` steps per epoch (the runner sets it to ELITE's
    step count, ``n_train // batch_size``). c is the mean initial embedding of the labeled
    normals (normalised with the whole labeled set's batch statistics, as every training step
    is); the margin C is ``auto_mean`` (mean initial labeled score), ``auto_max`` (largest
    initial labeled score) or a number, as in ELITE. Unlabeled samples in X are ignored; the
    finished network is scored with BatchNorm statistics of the labeled set it trained on."""

    requires_labels = (0, 1)
    trains_on = "labeled"

    def __init__(self, score: str = "svdd", squared: bool = False, margin="auto_mean", steps_per_epoch: int = 39,
                 network=None, epochs: int = 30, batch_size: int = 128, lr: float = 1e-4, optimizer: str = "adam",
                 weight_decay: float = 1e-6, contamination: float = 0.1, device: str = "auto", random_state: int = 0,
                 progress: bool = False):
        self._keep_params(locals())

    def _check_params(self) -> None:
        if self.score not in SCORES:
            raise ConfigError(f"score={self.score!r} is not allowed; allowed: {', '.join(SCORES)}")
        if self.steps_per_epoch < 1:
            raise ConfigError(f"steps_per_epoch={self.steps_per_epoch} is not allowed; it must be >= 1")
        parse_margin(self.margin)

    def _build_module(self, input_shape):
        return build_score(self.score, self._spec(input_shape), input_shape, squared=self.squared)

    @torch.no_grad()
    def _margin(self, module, x_lab) -> float:
        margin = parse_margin(self.margin)
        if margin not in MARGINS:
            return margin
        with batch_statistics(module):
            scores = module(x_lab)
        return float(scores.max() if margin == "auto_max" else scores.mean())

    def _train(self, runs) -> None:
        def init(run):
            run.module.prepare(run.x_lab, among=~run.y_lab)  # batch statistics of the whole labeled set, as in training
            run.est.margin_ = run.est._margin(run.module, run.x_lab)

        each_run(runs, init)
        train_on_labels(runs, self.steps_per_epoch, self._settings(), desc=f"labels-{self.score}")
