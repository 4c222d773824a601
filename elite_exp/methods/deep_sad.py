"""Deep SAD (Ruff et al., ICLR 2020; Eq. 3 of the ELITE paper): Deep SVDD plus labeled terms.

Per sample, with squared distance d = ||phi(x) - c||^2: d for unlabeled samples, eta * d for
labeled normals, eta / (d + eps) for labeled anomalies; the loss is the mean over the mini-batch.
"""

from __future__ import annotations

import torch

from elite_exp.errors import ConfigError
from elite_exp.methods.base import each_run, train_runs
from elite_exp.methods.deep_svdd import DeepSVDD
from elite_exp.methods.losses import deep_sad_loss


class DeepSAD(DeepSVDD):
    """Deep SAD. By default mini-batches are drawn from the union of the unlabeled and the
    labeled samples (the reference implementation); ``labeled_every_batch=True`` draws them
    from the unlabeled samples and appends the whole labeled set to each (as ELITE sees it)."""

    uses_labels = True
    trains_on = "all"

    @property
    def requires_labels(self) -> tuple[int, ...]:
        """With the labels in every batch the batches are drawn from the unlabeled samples: at least 2 (y=-1)."""
        return (-1,) if self.labeled_every_batch else ()

    def __init__(self, eta: float = 1.0, labeled_every_batch: bool = False, pretrain: bool = True,
                 pretrain_epochs: int = 30, network=None, epochs: int = 30, batch_size: int = 128, lr: float = 1e-4,
                 optimizer: str = "adam", weight_decay: float = 1e-6, contamination: float = 0.1,
                 device: str = "auto", random_state: int = 0, progress: bool = False):
        self._keep_params(locals())

    def _check_params(self) -> None:
        super()._check_params()
        if not self.eta > 0:
            raise ConfigError(f"eta={self.eta} is not allowed; Deep SAD's eta must be > 0")

    def _train(self, runs) -> None:
        def data(run):
            t_lab = 1.0 - 2.0 * run.y_lab.to(run.x_unl.dtype)  # +1 normal, -1 anomaly
            return {"x_unl": run.x_unl, "x_lab": run.x_lab, "t_lab": t_lab, "x_all": torch.cat([run.x_unl, run.x_lab]),
                    "t_all": torch.cat([t_lab.new_zeros(len(run.x_unl)), t_lab])}

        # the reference pre-trains and sets c on all training data
        each_run(runs, lambda run: run.est._init_network(run.module, torch.cat([run.x_unl, run.x_lab])))
        eta, every_batch = self.eta, self.labeled_every_batch

        def step(net, idx, d):
            if not every_batch:
                return deep_sad_loss(net(d["x_all"][idx]), d["t_all"][idx], eta), {}
            # the whole labeled set joins every batch: report its loss too (Fig. 7b's labeled loss)
            dist = net(torch.cat([d["x_unl"][idx], d["x_lab"]]))
            t = torch.cat([d["t_all"][idx], d["t_lab"]])
            b = len(idx)  # the labeled set follows the batch's b samples; without one there is no labeled loss
            return deep_sad_loss(dist, t, eta), ({"val_loss": deep_sad_loss(dist[b:], t[b:], eta).detach()}
                                                 if len(d["x_lab"]) else {})

        n = len(runs[0].x_unl) + (0 if every_batch else len(runs[0].x_lab))
        train_runs(runs, n, step, data, desc="Deep SAD")
