"""Structured configs: the schema every Hydra config file is checked against.

The YAML files under ``conf/`` fill these in; a key that is not here, or a value of the
wrong type, is rejected by Hydra before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class NetworkConf:
    kind: str = "conv"  # conv | mlp
    channels: list[int] = field(default_factory=lambda: [8, 4])
    hidden: list[int] = field(default_factory=lambda: [128, 64])
    rep_dim: int = 32
    batch_norm: bool = True


@dataclass
class DataConf:
    name: str = MISSING
    root: str | None = None  # None: $ELITE_DATA_DIR, else ./data
    download: bool = True
    image_size: int | None = None  # resize square images (e.g. 32 for the official ELITE MNIST net)
    n_classes: int | None = None  # known class count: normal_class is checked before loading
    network: NetworkConf = field(default_factory=NetworkConf)
    label_grid: str = ""  # n_labels sweep of Fig. 4/5 (a Hydra sweep value, e.g. range(20,101,10))


@dataclass
class ModelConf:
    name: str = "svdd"  # svdd | ae: the score function Omega
    squared: bool = False  # svdd only: ||phi(x)-c||^2 instead of ||phi(x)-c||


@dataclass
class EliteConf:
    update: str = "paper"  # paper | reweight
    margin: str = "auto_mean"  # auto_mean | auto_max | a number
    meta_grad: str = "forward_ad"  # forward_ad | double_backward
    normalize: bool = True  # divide M by its batch mean magnitude


@dataclass
class BaselineConf:
    name: str = "none"  # none = ELITE


@dataclass
class TrainConf:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-4
    optimizer: str = "adam"  # adam | sgd
    weight_decay: float = 1e-6


@dataclass
class Config:
    data: DataConf = field(default_factory=DataConf)
    model: ModelConf = field(default_factory=ModelConf)
    baseline: Any = field(default_factory=BaselineConf)
    elite: EliteConf = field(default_factory=EliteConf)
    train: TrainConf = field(default_factory=TrainConf)
    normal_class: int = 0
    r_p: float = 0.1
    n_labels: int = 20
    n_train: int = 5000
    eta_m: float = 1.0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    out_dir: str = "outputs"
    force: bool = False  # rerun even if the run folder holds a finished record
    progress: bool = True  # tqdm bars
    curves_every: int = 0  # >0: record test AUC / losses every this many iterations (curves.csv)
    meta_iterations: int = 500  # ELITE: average -M per training sample over this many first iterations


def register() -> None:
    ConfigStore.instance().store(name="base_config", node=Config)
