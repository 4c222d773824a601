"""Plain auto-encoder (unsupervised; score = squared reconstruction error) and the auto-encoder
pre-training that Deep SVDD, Deep SAD and hybrid SSAD build on."""

from __future__ import annotations

import torch

from elite_exp.methods.base import DeepDetector
from elite_exp.methods.training import Monitor, TrainSettings, run_training
from elite_exp.networks import NetworkSpec
from elite_exp.scores import AEScore


def train_autoencoder(ae: AEScore, x: torch.Tensor, s: TrainSettings, generator: torch.Generator, *,
                      desc: str, progress: bool, monitor: Monitor | None = None) -> list[float]:
    """Minimise the mean squared reconstruction error of ``x``; returns the mean loss per epoch."""
    return run_training(ae, len(x), lambda idx: (ae(x[idx]).mean(), {}), s, generator, desc=desc,
                        progress=progress, monitor=monitor)


def pretrained_encoder(spec: NetworkSpec, input_shape: tuple[int, ...], x: torch.Tensor, s: TrainSettings,
                       seed: int, progress: bool) -> dict[str, torch.Tensor]:
    """Deep SVDD's pre-training: train an auto-encoder whose encoder has ``spec`` on ``x`` and
    return the encoder's state (weights; its BatchNorm running averages are left as training left
    them: a user of the encoder in eval mode recomputes them, as hybrid SSAD does) to initialise
    another network."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ae = AEScore(spec, input_shape)
    ae.to(x.device)
    train_autoencoder(ae, x, s, torch.Generator().manual_seed(seed), desc="AE pre-training", progress=progress)
    return ae.encoder.state_dict()


class AutoEncoder(DeepDetector):
    """Auto-encoder trained on every sample of X (labels are never used); the anomaly score
    is the squared reconstruction error."""

    uses_labels = False

    def __init__(self, network=None, epochs: int = 30, batch_size: int = 128, lr: float = 1e-4,
                 optimizer: str = "adam", weight_decay: float = 1e-6, contamination: float = 0.1,
                 device: str = "auto", random_state: int = 0, progress: bool = False):
        self._keep_params(locals())

    def _check_params(self) -> None:
        """Only the training settings, checked by the base class."""

    def _build_module(self, input_shape):
        return AEScore(self._spec(input_shape), input_shape)

    def _train(self, module, x_unl, x_lab, y_lab, monitor) -> None:
        self.epoch_losses_ = train_autoencoder(module, x_unl, self._settings(), self._generator(), desc="AE",
                                               progress=self.progress, monitor=monitor)
