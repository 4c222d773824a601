"""One-class Deep SVDD (Ruff et al., ICML 2018): minimise mean ||phi(x) - c||^2 over X, labels ignored."""

from __future__ import annotations

import dataclasses

import torch

from elite_exp.errors import ConfigError
from elite_exp.methods.autoencoder import pretrained_encoder
from elite_exp.methods.base import DeepDetector, each_run, train_runs
from elite_exp.scores import SVDDScore


class DeepSVDD(DeepDetector):
    """One-class Deep SVDD on every sample of X (labels are never used). With ``pretrain``, the
    encoder starts from a trained auto-encoder (``pretrain_epochs`` epochs) as in the reference
    code (``pretraining_``: ``trained``, or ``reused`` from a kept one, ``shared_pretraining``); c is then the
    mean initial embedding. Score: ||phi(x) - c||^2."""

    uses_labels = False

    def __init__(self, pretrain: bool = True, pretrain_epochs: int = 30, network=None, epochs: int = 30,
                 batch_size: int = 128, lr: float = 1e-4, optimizer: str = "adam", weight_decay: float = 1e-6,
                 contamination: float = 0.1, device: str = "auto", random_state: int = 0, progress: bool = False):
        self._keep_params(locals())

    def _check_params(self) -> None:
        if self.pretrain and not self.pretrain_epochs >= 1:
            raise ConfigError(f"pretrain_epochs={self.pretrain_epochs} is not allowed with pretrain=True; it must be "
                              f">= 1 (pretrain=False trains without pre-training)")

    def _build_module(self, input_shape):
        return SVDDScore(self._spec(input_shape), input_shape, squared=True)

    def _init_network(self, module: SVDDScore, x: torch.Tensor) -> None:
        """Auto-encoder pre-training (optional), then c = mean initial embedding of ``x``."""
        s = self._settings()
        if self.pretrain:
            state, self.pretraining_ = pretrained_encoder(self._spec(self.input_shape_), self.input_shape_, x,
                                                          dataclasses.replace(s, epochs=self.pretrain_epochs),
                                                          int(self.random_state), self.progress)
            module.encoder.load_state_dict(state)
        module.prepare(x, batch_size=s.batch_size)

    def _train(self, runs) -> None:
        each_run(runs, lambda run: run.est._init_network(run.module, run.x_unl))
        train_runs(runs, len(runs[0].x_unl), lambda net, idx, d: (net(d["x"][idx]).mean(), {}),
                   lambda run: {"x": run.x_unl}, desc="Deep SVDD")
