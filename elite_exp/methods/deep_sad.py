"""Deep SAD (Ruff et al., ICLR 2020; Eq. 3 of the ELITE paper): Deep SVDD plus labeled terms.

Per sample, with squared distance d = ||phi(x) - c||^2: d for unlabeled samples, eta * d for
labeled normals, eta / (d + eps) for labeled anomalies; the loss is the mean over the mini-batch.
"""

from __future__ import annotations

import torch

from elite_exp.errors import ConfigError
from elite_exp.methods.deep_svdd import DeepSVDD
from elite_exp.methods.losses import deep_sad_loss
from elite_exp.methods.training import run_training


class DeepSAD(DeepSVDD):
    """Deep SAD. By default mini-batches are drawn from the union of the unlabeled and the
    labeled samples (the reference implementation); ``labeled_every_batch=True`` draws them
    from the unlabeled samples and appends the whole labeled set to each (as ELITE sees it)."""

    uses_labels = True
    trains_on = "all"

    def __init__(self, eta: float = 1.0, labeled_every_batch: bool = False, pretrain: bool = True,
                 pretrain_epochs: int = 30, network=None, epochs: int = 30, batch_size: int = 128, lr: float = 1e-4,
                 optimizer: str = "adam", weight_decay: float = 1e-6, contamination: float = 0.1,
                 device: str = "auto", random_state: int = 0, progress: bool = False):
        self._keep_params(locals())

    def _check_params(self) -> None:
        super()._check_params()
        if not self.eta > 0:
            raise ConfigError(f"eta={self.eta} is not allowed; Deep SAD's eta must be > 0")

    def _train(self, module, x_unl, x_lab, y_lab, monitor) -> None:
        x_all = torch.cat([x_unl, x_lab])
        t_lab = 1.0 - 2.0 * y_lab.float()  # +1 normal, -1 anomaly
        t_all = torch.cat([torch.zeros(len(x_unl), device=x_unl.device), t_lab])
        self._init_network(module, x_all)  # the reference pre-trains and sets c on all training data

        if self.labeled_every_batch:
            n = len(x_unl)

            def batch(idx):
                return torch.cat([x_unl[idx], x_lab]), torch.cat([t_all[idx], t_lab])
        else:
            n = len(x_all)

            def batch(idx):
                return x_all[idx], t_all[idx]

        def step(idx):
            x, t = batch(idx)
            d = module(x)
            if not self.labeled_every_batch:
                return deep_sad_loss(d, t, self.eta), {}
            # the whole labeled set is in every batch: report its loss (Fig. 7b's labeled loss)
            n_lab = len(x_lab)
            return deep_sad_loss(d, t, self.eta), {"val_loss": deep_sad_loss(d[-n_lab:], t[-n_lab:], self.eta).detach()}

        self.epoch_losses_ = run_training(module, n, step, self._settings(), self._generator(), desc="Deep SAD",
                                          progress=self.progress, monitor=monitor)
