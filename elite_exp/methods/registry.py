"""From a run config to an estimator: the one place that maps config keys onto method parameters."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from elite_exp.errors import ConfigError
from elite_exp.methods.base import DeepDetector
from elite_exp.methods.elite import EliteDetector

BASELINES = ("none",)


def method_name(cfg: DictConfig) -> str:
    """``elite_svdd`` / ``elite_ae`` for ELITE, else the baseline's name."""
    if cfg.baseline.name == "none":
        return f"elite_{cfg.model.name}"
    return str(cfg.baseline.name)


def common_params(cfg: DictConfig) -> dict:
    """Parameters every deep method takes from the run config."""
    return dict(network=OmegaConf.to_container(cfg.data.network, resolve=True), epochs=cfg.train.epochs,
                batch_size=cfg.train.batch_size, lr=cfg.train.lr, optimizer=cfg.train.optimizer,
                weight_decay=cfg.train.weight_decay, random_state=cfg.seed, progress=cfg.progress)


def build_method(cfg: DictConfig, device: str) -> DeepDetector:
    """The estimator a run config asks for, with its parameters checked (no data touched)."""
    name = cfg.baseline.name
    if name == "none":
        est = EliteDetector(score=cfg.model.name, squared=cfg.model.squared, update=cfg.elite["update"],
                            margin=cfg.elite.margin, eta_m=cfg.eta_m, meta_grad=cfg.elite.meta_grad,
                            normalize=cfg.elite.normalize, device=device, **common_params(cfg))
    else:
        raise ConfigError(f"baseline={name!r} is not allowed; allowed: {', '.join(BASELINES)}")
    est._check_params()
    est._settings()
    return est
