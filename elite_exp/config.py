"""Structured configs: the schema every Hydra config file is checked against.

The YAML files under ``conf/`` fill these in; a key that is not here, or a value of the
wrong type, is rejected by Hydra before anything runs.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

# the config files (conf/config.yaml and its groups)
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def group_file(group: str, option: str) -> DictConfig | None:
    """The values of ``conf/<group>/<option>.yaml`` without its defaults list, or None for an option
    that has no file there (e.g. a data file added through Hydra's search path: :func:`chosen_data_file`)."""
    path = CONF_DIR / group / f"{option}.yaml"
    if not path.exists():
        return None
    body = OmegaConf.load(path)
    body.pop("defaults", None)
    return body


class DataFile(NamedTuple):
    """The data file (``conf/data/<option>.yaml``, or one added with ``--config-dir``) a run takes its data
    set's name (``option``) and its defaults (:meth:`values`) from. ``path`` None: no file (the schema's
    defaults); ``search``: the config folders its defaults list is looked up in."""

    option: str
    path: Path | None
    search: tuple[Path, ...]

    def values(self) -> DictConfig:
        """What the file sets, as keys of the run config (``data.*``, ``n_labels``, ``train.*``, ...), its
        defaults list resolved (other data files it names, then its own values unless ``_self_`` comes
        first; entries of other groups are left out). Shared: do not modify."""
        if self.path is None:
            return OmegaConf.create()
        return _data_values(self.path, self.path.stat().st_mtime_ns, self.search)


def data_file(option: str, search: tuple[Path, ...] = (CONF_DIR,)) -> DataFile:
    """The data file ``<folder>/data/<option>.yaml`` of the first folder of ``search`` that holds one."""
    path = next((d / "data" / f"{option}.yaml" for d in search if (d / "data" / f"{option}.yaml").exists()), None)
    return DataFile(option, path, search)


def chosen_data_file(name: str) -> DataFile:
    """The data file of a run whose ``data.name`` is ``name``: in a Hydra job, the ``data=`` option the job
    chose (``hydra.runtime.choices``) in the first folder of its search path that holds it (conf/, then a
    ``--config-dir``; folders only), so that a file of your own (``data/mytable.yaml`` with ``data.name:
    csv``) names its own data set and sets its runs' defaults; else, or when that file gives another
    ``data.name`` (a config that is not this job's), ``conf/data/<name>.yaml``."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        runtime = HydraConfig.get().runtime
        option = runtime.choices.get("data")
        if option is not None:
            chosen = data_file(option, tuple(Path(s.path) for s in runtime.config_sources if s.schema == "file"))
            if chosen.path is not None and OmegaConf.select(chosen.values(), "data.name") == name:
                return chosen
    return data_file(name)


def default_n_labels(data: DataFile) -> int:
    """n_labels as the data file sets it, else the schema's: the labels of Fig. 3 and of every figure whose
    axis is not n_labels."""
    return int(data.values().get("n_labels", Config.n_labels))


@functools.cache
def _data_values(path: Path, mtime_ns: int, search: tuple[Path, ...]) -> DictConfig:
    text = path.read_text()
    body = OmegaConf.create(text)
    defaults = list(body.pop("defaults", None) or [])
    own = body if re.search(r"^#\s*@package\s+_global_\s*$", text, re.MULTILINE) else OmegaConf.create({"data": body})
    values = OmegaConf.create()
    for entry in defaults if "_self_" in defaults else [*defaults, "_self_"]:
        if entry == "_self_":
            values = OmegaConf.merge(values, own)
        elif isinstance(entry, str) and (not entry.startswith("/") or entry.startswith("/data/")):
            values = OmegaConf.merge(values, data_file(entry.removeprefix("/data/"), search).values())
    return values


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
    # your own data (data=folder / data=csv); None = the loader's default
    path: str | None = None  # folder: the image folder; csv: the CSV file
    test_path: str | None = None  # csv: a separate test table (else split off by test_fraction)
    test_fraction: float | None = None  # folder / csv / breast_cancer: test share of each class (default 1/3)
    label_column: str | None = None  # csv: the column holding the class labels
    feature_columns: list[str] | None = None  # csv: feature columns (default: every column but the label)
    network: NetworkConf = field(default_factory=NetworkConf)
    # the label ratios of sweep=r_l (Fig. 4/5); MNIST's file gives the paper's 20-100 labels of 5,000
    r_l_grid: str = "0.02,0.04,0.06,0.08,0.1"


@dataclass
class ModelConf:
    name: str = "svdd"  # svdd | ae | rot | neutral: the score function Omega
    squared: bool = False  # svdd only: ||phi(x)-c||^2 instead of ||phi(x)-c||


@dataclass
class EliteConf:
    update: str = "reweight"  # reweight | paper | loe (measured: reweight is better, see README)
    margin: str = "auto_mean"  # auto_mean | auto_max | a number
    meta_grad: str = "forward_ad"  # forward_ad | finite_diff | double_backward
    normalize: bool = True  # divide M by its batch mean magnitude
    # beyond the paper; null = off (unset keys leave run folders where they were)
    pretrain: bool | None = None  # auto-encoder pre-training of the encoder (svdd score)
    warmup_epochs: int | None = None  # epochs of supervised warm-up on the labeled set (L_v) before ELITE
    labeled_weight: float | None = None  # weight of a direct training term on the labeled set (labeled_loss)
    labeled_loss: str | None = None  # that term: hinge (L_v, Eq. 6) | inverse (SOEL's); null = hinge
    loe_weight: float | None = None  # weight of an LOE_H term on each unlabeled batch (latent labels, alpha)
    alpha: float | None = None  # the contamination that term assumes; null: the run's true r_p (oracle)
    joint_batch: bool | None = None  # the labeled set scored with each mini-batch (shared BatchNorm statistics)


@dataclass
class BaselineConf:
    """``baseline=`` group: ``none`` = ELITE. Each option's schema below is stored outside the group
    as ``baseline_schema_<name>`` (so it is no choice of ``baseline=``); its values live in
    ``conf/baseline/<name>.yaml``, which extends it."""

    name: str = "none"


@dataclass
class DeepSVDDConf(BaselineConf):
    pretrain: bool = MISSING  # auto-encoder pre-training of the encoder
    pretrain_epochs: int = MISSING


@dataclass
class DeepSADConf(DeepSVDDConf):
    eta: float = MISSING  # weight of the labeled terms
    labeled_every_batch: bool = MISSING  # append the whole labeled set to every mini-batch
    loss: str | None = None  # deepsad (its own, Eq. 3) | hinge (ELITE's Eq. 4, as the paper's Fig. 7); null = deepsad


@dataclass
class SSADConf(BaselineConf):
    kappa: float = MISSING
    nu: float = MISSING  # C_unlabeled = 1 / (nu * n_unlabeled)
    c_labeled: float = MISSING
    hybrid: bool = MISSING  # kernel on the features of a trained auto-encoder
    n_landmarks: int = MISSING  # Nystroem rank of the kernel; 0 = exact kernel


@dataclass
class RSRAEConf(BaselineConf):
    intrinsic_dim: int = MISSING
    lambda1: float = MISSING
    lambda2: float = MISSING


@dataclass
class LatentLabelsConf(BaselineConf):
    """SOEL's keys (and LOE's, which adds ``mode``)."""

    alpha: float | None = None  # assumed contamination in [0, 0.5]; None: the run's true r_p (alpha_source oracle)
    warmup_epochs: int = MISSING  # first epochs on the normal loss only


@dataclass
class LOEConf(LatentLabelsConf):
    mode: str = MISSING  # hard (LOE_H) | soft (LOE_S)


BASELINE_SCHEMAS = {"none": BaselineConf, "deepsvdd": DeepSVDDConf, "deepsad": DeepSADConf, "ssad": SSADConf,
                    "rsrae": RSRAEConf, "ae": BaselineConf, "labels": BaselineConf, "loe": LOEConf,
                    "soel": LatentLabelsConf}


@dataclass
class TrainConf:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-4
    optimizer: str = "adam"  # adam | sgd
    weight_decay: float = 1e-6


@dataclass
class TrackingConf:
    """``+tracking=mlflow`` logs every run to MLflow (elite_exp/tracking.py); these pick the store."""

    uri: str | None = None  # MLflow tracking URI; None: sqlite:///<absolute out_dir>/mlflow.db
    experiment: str | None = None  # experiment name; None: the absolute out_dir


@dataclass
class Config:
    data: DataConf = field(default_factory=DataConf)
    model: ModelConf = field(default_factory=ModelConf)
    baseline: BaselineConf = MISSING  # filled from the baseline= group
    elite: EliteConf = field(default_factory=EliteConf)
    train: TrainConf = field(default_factory=TrainConf)
    normal_class: Any = 0  # a class index, or a class name (folder name, CSV label value)
    r_p: float = 0.1
    n_labels: int = 20  # labeled examples, half normal, half anomalies
    r_l: float | None = None  # the paper's label ratio n_labels / n_train: when set, it gives n_labels
    n_train: int = 5000
    eta_m: float = 1.0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads per run; 0 = torch's default (one per core)
    out_dir: str = "outputs"
    force: bool = False  # rerun even if the run folder holds a finished record
    progress: bool = True  # tqdm bars
    curves_every: int = 0  # >0: record test AUC / losses every this many iterations (curves.csv)
    meta_iterations: int = 500  # ELITE / LOE / SOEL: average inferred labels (ELITE: and -M) over the first iterations
    plots: bool = True  # draw scores.png (test-score histograms, ROC; ELITE: y_hat * |M|) in each run folder
    tracking: TrackingConf = field(default_factory=TrackingConf)


def unknown_settings(cfg: DictConfig) -> list[str]:
    """The dotted keys of a composed run config that its schema (:class:`Config`, with the baseline's own
    schema from :data:`BASELINE_SCHEMAS`) does not have: what a ``+key=value`` override (Hydra's way to add
    a key) put there, sorted. A setting nothing reads would run silently under a folder of its own."""
    from elite_exp.records import flatten

    baseline = str(OmegaConf.select(cfg, "baseline.name"))
    known = _schema_keys(baseline)
    given = flatten(OmegaConf.to_container(cfg, resolve=False))
    if baseline not in BASELINE_SCHEMAS:  # an unknown baseline= is its own error (the registry's), not an unknown key
        given = {k: v for k, v in given.items() if not k.startswith("baseline.")}
    # a key inside a known leaf (a dict given where the schema has Any) is that leaf's value, not a new key
    return sorted(k for k in given
                  if not any(".".join(k.split(".")[:i]) in known for i in range(1, k.count(".") + 2)))


@functools.cache
def _schema_keys(baseline: str) -> frozenset[str]:
    """The dotted keys of :class:`Config` with ``baseline``'s own schema (none for an unknown baseline)."""
    from elite_exp.records import flatten

    schema = OmegaConf.to_container(OmegaConf.structured(Config))
    own = BASELINE_SCHEMAS.get(baseline)
    schema["baseline"] = OmegaConf.to_container(OmegaConf.structured(own)) if own else {}
    return frozenset(flatten(schema))


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for name, schema in BASELINE_SCHEMAS.items():
        cs.store(name=f"baseline_schema_{name}", node=schema)
