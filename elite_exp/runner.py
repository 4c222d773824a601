"""The experiment runner: one Hydra job = one (method, data set, class, r_p, n_labels, eta_M, seed) run.

``python -m elite_exp [overrides]`` or ``elite-exp [overrides]``. Each run writes, in its own
folder ``<out_dir>/<data>/<method>/class<k>/rp<r_p>_nl<n_labels>_eta<eta_M>_seed<seed>_<hash>``:
``result.json`` (the record), ``curves.csv`` (with ``curves_every>0``), ``meta_scores.csv``
(ELITE), ``scores.png`` (unless ``plots=false``) and Hydra's ``.hydra/`` config copy. A folder
whose record says ``ok`` is skipped on a rerun unless ``force=true``; the hash covers every
setting that changes the result.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationResolutionError
from sklearn.metrics import average_precision_score, roc_auc_score

from elite_exp.config import CONF_DIR, chosen_data_file, default_n_labels, register, unknown_settings
from elite_exp.curves import TrainingRecorder
from elite_exp.data import (
    check_label_ratio,
    check_normal_class,
    check_protocol,
    class_index,
    labels_from_ratio,
    load_dataset,
    make_split,
)
from elite_exp.data.datasets import TEST_TABLE, check_data, data_fingerprint, data_root, refuse_test_fraction
from elite_exp.errors import ConfigError
from elite_exp.methods.autoencoder import shared_pretraining
from elite_exp.methods.base import check_device_name, fit_packed, resolve_device
from elite_exp.methods.registry import (
    UNSET_WHEN,
    as_read,
    as_read_value,
    build_method,
    config_key_error,
    method_name,
    method_record,
    names_its_method,
    setting_text,
    spelled_number,
    unread_overrides,
)
from elite_exp.methods.training import TrainingDiverged
from elite_exp.records import (
    RECORD_FORMAT,
    environment,
    flatten,
    is_finished,
    read_record,
    record_format,
    utc_now,
    write_csv,
    write_json,
)
from elite_exp.run_figure import save_run_figure
from elite_exp.sweeps import finish

log = logging.getLogger("elite_exp")

# settings that do not change a run's result: left out of its folder's hash
NOT_HASHED = ("hydra", "out_dir", "force", "progress", "device", "threads", "plots", "tracking")
# data.* keys that only hold sweep grids (the values a sweep gives to r_p, r_l, ...): not hashed
GRIDS = ("r_l_grid",)
# data.* keys that say where the named data set is found, not which data it is: hashed as their
# defaults, so that data.download=false or data.root=/copy finds the runs made without them
FOUND_AT = {"download": True, "root": None}
# the files a run writes beside its record
RUN_FILES = ("curves.csv", "meta_scores.csv", "scores.png")
PRETRAINED_DIR = ".pretrained"  # in out_dir: the auto-encoder pre-trainings its runs share (shared_pretraining)
# data.* keys that only some loaders take (passed as load_dataset options)
DATA_OPTIONS = ("path", "test_path", "test_fraction", "label_column", "feature_columns")


def n_labels_of(cfg: DictConfig) -> int:
    """The run's number of labels: from the label ratio ``r_l`` (= n_labels / n_train) when it is
    set, else ``n_labels`` (``check_config`` checks that r_l gives an even whole number)."""
    return cfg.n_labels if cfg.r_l is None else labels_from_ratio(cfg.r_l, cfg.n_train)


def _without_none(tree):
    if isinstance(tree, dict):
        return {k: _without_none(v) for k, v in tree.items() if v is not None}
    return tree


def result_settings(config: dict, as_its_method_reads: bool = True) -> dict:
    """The settings of a config (a plain dict, resolved or not) that change the result, in one
    normal form: without ``NOT_HASHED``, the sweep grids and unset (None) keys (so an optional key
    added later moves no folder); settings the run's method does not read (``elite.*`` for a baseline:
    ``registry.as_read``) and ``FOUND_AT`` keys as their defaults; ``UNSET_WHEN`` keys set to
    their off value count as unset; n_labels as the run uses it (``r_l=0.004`` and ``n_labels=20`` of 5,000
    are one run); a numeric margin as its number (``elite.margin=1`` and ``=1.0`` are one run).
    ``as_its_method_reads=False`` leaves the unread settings as they are (to compare with an old record
    that does not say what its method reads)."""
    body = {k: v for k, v in config.items() if k not in NOT_HASHED}
    body = as_read(body) if as_its_method_reads else copy.deepcopy(body)
    if body.get("r_l") is not None:
        body["n_labels"] = labels_from_ratio(body["r_l"], body["n_train"])
    body["r_l"] = None
    body["data"] = {k: FOUND_AT.get(k, v) for k, v in body.get("data", {}).items() if k not in GRIDS}
    for group, off in UNSET_WHEN.items():
        body[group] = {k: (None if k in off and v == off[k] else v) for k, v in body.get(group, {}).items()}
    if spelled_number(body["elite"].get("margin")) is not None:  # a number given as text: "1" and "1.0" are one
        body["elite"]["margin"] = setting_text(body["elite"]["margin"])  # margin, hashed as the name shows it
    return _without_none(body)


def config_hash(cfg: DictConfig) -> str:
    """Hash of :func:`result_settings` of the (unresolved) config: equal hashes, equal folders."""
    body = result_settings(OmegaConf.to_container(cfg, resolve=False))
    return hashlib.sha1(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:8]


def run_path(cfg: DictConfig) -> str:
    """The run's folder relative to ``out_dir``; equal configs give equal folders (resume)."""
    cls = re.sub(r"[^\w.-]+", "_", str(cfg.normal_class))  # a class name may hold any character
    return (f"{data_set_name(cfg)}/{method_name(cfg)}/class{cls}/"
            f"rp{cfg.r_p}_nl{n_labels_of(cfg)}_eta{as_read_value(cfg, 'eta_m')}_seed{cfg.seed}_{config_hash(cfg)}")


def data_set_name(cfg: DictConfig) -> str:
    """The run's data set as its folder, record and tables name it: the ``data=`` option it chose, which is
    ``data.name`` for conf/data's files; a file added with ``--config-dir`` (``data/mytable.yaml`` with
    ``data.name: csv``) names its own data set (``mytable``), apart from other files of the same loader."""
    return chosen_data_file(str(cfg.data.name)).option


def clear_run_files(run_dir: Path) -> None:
    """Remove the :data:`RUN_FILES` a replaced record's run left in ``run_dir`` (``force=true``, or a stale
    record): called once the new run has its results (or its failure), just before they are written, so a rerun
    interrupted while training leaves the old record with its files (one interrupted in the seconds its files are
    written leaves the old record beside some of the new run's files; the record comes last)."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)


def check_out_dir(out_dir) -> list[Path]:
    """That ``out_dir`` is a folder, or can be made with its missing parents (tried, and undone: a check leaves no
    folder behind). Returns the folders Hydra will make, deepest first. Raises ConfigError if it is empty or
    null, is a file or a broken link, lies below one, or cannot be made or written (no permission, a read-only or
    special file system)."""
    if out_dir is None or not str(out_dir).strip():
        raise ConfigError(f"out_dir={out_dir!r} is not allowed; give a folder for the runs")
    path = Path(str(out_dir))
    missing = []
    for p in (path, *path.parents):  # from out_dir up to the first part that is there (or a link)
        if p.is_symlink() and not p.exists():
            raise ConfigError(f"out_dir={out_dir} " + ("is" if p == path else f"cannot be made: {p} is")
                              + " a broken link (to nothing, or a loop)")
        if p.exists():
            if not p.is_dir():
                raise ConfigError(f"out_dir={out_dir} " + ("is a file; give a folder for the runs" if p == path
                                                            else f"cannot be made: {p} is a file"))
            break
        missing.append(p)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"out_dir={out_dir} cannot be made: {err.strerror or err}") from None
    finally:
        _remove_new_folders(missing)  # Hydra makes them again
    if not missing and not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"out_dir={out_dir} is not writable; give a folder you can write to")
    return missing


def _remove_new_folders(folders: Sequence[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty: a folder some other process filled meanwhile stays."""
    for made in folders:
        try:
            made.rmdir()
        except OSError:
            break


# the out_dir folders a single run's Hydra makes (OutDirCheck): removed again when the run is refused
_NEW_OUT_DIRS: list[Path] = []


class OutDirCheck(Callback):
    """``hydra.callbacks.out_dir`` (conf/config.yaml; first in conf/hydra/callbacks/mlflow.yaml too, so that it runs
    before the tracking store is made in out_dir): :func:`check_out_dir` when a run or a sweep starts, before
    Hydra makes its first folder (where a bad out_dir would stop it with a traceback): one ``error:`` line, exit
    status 2. An out_dir that cannot be resolved yet (``${hydra:...}``) is left to Hydra."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _NEW_OUT_DIRS[:] = self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config)

    @staticmethod
    def _check(config: DictConfig) -> list[Path]:
        try:
            out_dir = config.out_dir
        except InterpolationResolutionError:
            return []
        try:
            return check_out_dir(out_dir)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)


def _register_resolvers() -> None:
    if not OmegaConf.has_resolver("elite_run_path"):
        OmegaConf.register_new_resolver("elite_run_path", lambda *, _root_: run_path(_root_))


def pick_device(device: str) -> str:
    """``auto`` with several GPUs in a multirun: job number modulo the GPU count, so each
    parallel worker of the joblib launcher gets its own GPU."""
    if device == "auto" and torch.cuda.device_count() > 1 and HydraConfig.initialized():
        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return f"cuda:{hc.job.num % torch.cuda.device_count()}"
    return str(resolve_device(device))


def check_config(cfg: DictConfig, overrides: Sequence[str] = (), on_this_machine: bool = True) -> tuple[str, object]:
    """Every check of a run's config that needs no data (``overrides``: the command line's, as
    Hydra's ``key=value`` texts); returns (device, estimator). ``on_this_machine=False`` checks the
    device's name, not that this machine has it. Raises ConfigError naming the bad value."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"no value for {', '.join(missing)}; choose a complete option "
                          f"(e.g. baseline=deepsvdd|deepsad|ssad|rsrae|ae|labels|none)")
    if HydraConfig.initialized():
        check_choices(cfg, HydraConfig.get())
    unknown = unknown_settings(cfg)
    if unknown:
        raise ConfigError(f"{unknown[0]} is not a setting of this run (added with +{unknown[0]}=...): nothing "
                          f"would read it; drop it or fix its name (--cfg job lists the settings; a baseline's own "
                          f"keys, such as baseline.alpha, come with its baseline= or method=)")
    if cfg.r_l is not None:
        if any(re.fullmatch(r"[+~]*n_labels=.*", o) for o in overrides):
            raise ConfigError(f"r_l={cfg.r_l} and n_labels={cfg.n_labels} are both given; give one: r_l is "
                              f"n_labels / n_train (r_l={cfg.r_l} of n_train={cfg.n_train} is "
                              f"{cfg.r_l * cfg.n_train:g} labels)")
        check_label_ratio(cfg.r_l, cfg.n_train)
    check_data(cfg.data.name, cfg.data.image_size)
    check_protocol(cfg.r_p, cfg.n_train, n_labels_of(cfg))
    check_normal_class(cfg.normal_class)
    if cfg.data.n_classes is not None and isinstance(cfg.normal_class, int) and cfg.normal_class >= cfg.data.n_classes:
        raise ConfigError(f"normal_class={cfg.normal_class} is not a class of {cfg.data.name}; "
                          f"allowed: 0..{cfg.data.n_classes - 1}")
    if cfg.curves_every < 0:
        raise ConfigError(f"curves_every={cfg.curves_every} is not allowed; it must be >= 0")
    if cfg.meta_iterations < 0:
        raise ConfigError(f"meta_iterations={cfg.meta_iterations} is not allowed; it must be >= 0")
    if cfg.threads < 0:
        raise ConfigError(f"threads={cfg.threads} is not allowed; it must be >= 0 (0 = one per core)")
    if cfg.data.test_path is not None:
        refuse_test_fraction(cfg.data.test_fraction, TEST_TABLE)
    # where jobs run elsewhere (a Slurm login node checks a sweep for GPU nodes) only the name is checked
    device = pick_device(cfg.device) if on_this_machine else check_device_name(cfg.device)
    return device, build_method(cfg, device)


def check_choices(cfg: DictConfig, hc) -> None:
    """The checks that need the job's Hydra config ``hc``: a sweep preset (``sweep=``, ``+experiment=``) chosen
    for a single run (no ``-m``: it would run its first job only), and ``tracking.*`` set without
    ``+tracking=mlflow`` (it would log nothing). Raises ConfigError."""
    choices = hc.runtime.choices
    if hc.mode == RunMode.RUN:
        for group in ("experiment", "sweep"):  # a preset holds a sweep=: name what the user chose
            if choices.get(group) is not None:
                plus = "+" if group == "experiment" else ""
                raise ConfigError(f"{plus}{group}={choices[group]} is a sweep: run it with -m (python -m elite_exp -m "
                                  f"{plus}{group}={choices[group]} ...); without -m only its first job would run")
    given = [k for k in ("uri", "experiment") if cfg.tracking[k] is not None]
    if given and choices.get("tracking") is None and choices.get("hydra/callbacks") != "mlflow":
        raise ConfigError(f"tracking.{given[0]}={cfg.tracking[given[0]]} is set but tracking is off: add "
                          f"+tracking=mlflow to log the runs")


def task_overrides() -> Sequence[str]:
    """The job's command-line overrides (Hydra's ``key=value`` texts); none outside a Hydra job."""
    return HydraConfig.get().overrides.task if HydraConfig.initialized() else ()


def validate(cfg: DictConfig) -> tuple[str, object]:
    """:func:`check_config` with the job's command-line overrides, then the run's thread count."""
    device, estimator = check_config(cfg, task_overrides())
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return device, estimator


def ranking_metrics(is_anomaly: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC AUC and average precision (AUPR) of anomaly ``scores`` (higher = more anomalous), with
    anomaly (1) as the positive class; ``is_anomaly`` and ``scores`` are ``(N,)``."""
    return {"auc": float(roc_auc_score(is_anomaly, scores)), "aupr": float(average_precision_score(is_anomaly, scores))}


class FinishedUnderOtherSpelling(Exception):
    """This run's finished record is in the folder of the other spelling of its normal class."""


def _finished_under_other_spelling(cfg: DictConfig, normal: int, class_names: Sequence[str], run_dir: Path,
                                   identity: dict) -> Path | None:
    """The folder that holds this run's finished record with its normal class (index ``normal`` of
    ``class_names``) spelled the other way: ``normal_class=0`` and ``normal_class=airplane`` are one run of
    CIFAR-10. Only for a run in its own folder under ``out_dir`` (not a ``hydra.run.dir`` of the user's) that
    holds no record yet, and never with ``force``; a spelling that names another class (class names that are
    numbers: index 1 of the labels ``1, 2`` is the class ``2``) is no spelling of this one. None: run it."""
    if cfg.force or run_dir.resolve() != (Path(cfg.out_dir) / run_path(cfg)).resolve() or read_record(run_dir):
        return None
    for spelling in (normal, class_names[normal]):
        if str(spelling) == str(cfg.normal_class):
            continue
        try:
            if class_index(spelling, class_names) != normal:
                continue
        except ConfigError:
            continue
        other = copy.deepcopy(cfg)
        with open_dict(other):
            other.normal_class = spelling
        other_dir = Path(cfg.out_dir) / run_path(other)
        if is_finished(other_dir, {**identity, "config_hash": config_hash(other)}):
            return other_dir
    return None


@dataclasses.dataclass
class PendingRun:
    """A job prepared to train (:func:`prepare_job`): its config, folder and record so far, its estimator and
    training data (``X``, ``y``, ``monitor``), what evaluating it needs, its seconds (``prepare``: its own
    checks, data and split), and, once its pack has trained (:func:`train_pack`), the error of its fit (None:
    fitted), its share of the pack's training time and the pack's size."""

    cfg: DictConfig
    run_dir: Path
    multirun: bool
    record: dict
    estimator: object
    X: torch.Tensor
    y: np.ndarray
    monitor: TrainingRecorder
    x_unl: torch.Tensor
    x_test: torch.Tensor
    test_anomaly: np.ndarray
    split: object
    class_name: str
    device: str
    seconds: dict[str, float]
    fit_error: Exception | None = None
    pack_size: int = 1


_LOADED: dict[str, object] = {}  # the benchmark data set this process read last (its next job mostly reads it again)
FIXED_DATA = ("mnist", "fmnist", "cifar10", "digits", "breast_cancer")  # files that do not change under a sweep


def _data_set(cfg: DictConfig) -> object:
    """The run's data set (``load_dataset``). A benchmark data set (:data:`FIXED_DATA`) is read once per process
    for consecutive jobs of the same settings and data folder (its tensors are only read, never changed); your own
    data (csv, folder) is read for every job, so that a file changed between jobs is read as it is."""
    options = OmegaConf.to_container(cfg.data, resolve=True)
    given = {k: options[k] for k in DATA_OPTIONS}
    name = cfg.data.name
    args = (name, cfg.data.root, cfg.data.download, cfg.data.image_size)
    if name not in FIXED_DATA:
        return load_dataset(*args, **given)
    key = json.dumps([name, str(data_root(cfg.data.root).resolve()), cfg.data.download, cfg.data.image_size, given],
                     sort_keys=True, default=str)
    ds = _LOADED.get(key)
    if ds is None:
        ds = load_dataset(*args, **given)
        _LOADED.clear()
        _LOADED[key] = ds
    return ds


def prepare_experiment(cfg: DictConfig, run_dir: Path, record: dict, multirun: bool) -> PendingRun:
    """Check the run (:func:`validate`), read its data set, draw its split and build its estimator and monitor.
    Raises FinishedUnderOtherSpelling, after reading the data set (which names its classes), when the same run
    is finished with its normal class spelled the other way."""
    started = time.perf_counter()
    device, estimator = validate(cfg)
    t = time.perf_counter()
    ds = _data_set(cfg)
    seconds = {"load": time.perf_counter() - t}
    normal = class_index(cfg.normal_class, ds.class_names)
    same_run = _finished_under_other_spelling(cfg, normal, ds.class_names, run_dir, record["identity"])
    if same_run is not None:
        raise FinishedUnderOtherSpelling(same_run)
    split = make_split(ds.y_train, normal, cfg.r_p, cfg.n_train, n_labels_of(cfg), cfg.seed, ds.name,
                       class_name=ds.class_names[normal])
    test_anomaly = (ds.y_test != normal).astype(int)
    if test_anomaly.all() or not test_anomaly.any():
        raise ConfigError(f"the test split of {cfg.data.name} holds {'no' if test_anomaly.all() else 'only'} samples "
                          f"of the normal class {ds.class_names[normal]} ({len(test_anomaly)} test samples): "
                          "ROC AUC needs normals and anomalies")
    x_unl, x_lab = ds.x_train[split.unlabeled], ds.x_train[split.labeled]
    recorder = TrainingRecorder(estimator, ds.x_test, test_anomaly, split.unlabeled_anomaly,
                                every=cfg.curves_every, meta_iterations=cfg.meta_iterations)
    seconds["prepare"] = time.perf_counter() - started
    return PendingRun(cfg, run_dir, multirun, record, estimator, torch.cat([x_unl, x_lab]),
                      np.concatenate([np.full(len(x_unl), -1), split.labeled_anomaly]), recorder, x_unl, ds.x_test,
                      test_anomaly, split, ds.class_names[normal], device, seconds)


def train_pack(runs: Sequence[PendingRun]) -> None:
    """Fit the estimators of prepared runs (of one ``out_dir``) as one pack (``methods.base.fit_packed``; a run
    alone is a pack of one) with the shared pre-training store of that ``out_dir``; sets each run's
    ``fit_error``, its share of the training time and the pack's size. When the pack as a whole fails (e.g. out
    of memory), each of its runs is trained again alone, so that a run fails only of its own error."""
    t = time.perf_counter()
    with shared_pretraining(Path(runs[0].cfg.out_dir) / PRETRAINED_DIR):
        try:
            errors = fit_packed([r.estimator for r in runs], [r.X for r in runs], [r.y for r in runs],
                                [r.monitor for r in runs])
        except Exception as err:
            if len(runs) == 1:
                errors = [err]
            else:
                log.warning("a pack of %d runs failed (%s: %s); training each alone", len(runs), type(err).__name__,
                            err)
                errors = None
    if errors is None:  # out of the except block: the failed pack's tensors are freed before the runs train again
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        for run in runs:
            run.monitor.reset()
            train_pack([run])
        return
    share = (time.perf_counter() - t) / len(runs)
    for run, error in zip(runs, errors):
        run.fit_error, run.seconds["train"], run.pack_size = error, share, len(runs)


def finish_experiment(run: PendingRun) -> dict:
    """Evaluate a trained run and write its files (curves, meta-scores, the score figure) into its folder;
    returns what its record adds."""
    cfg, run_dir, estimator, seconds = run.cfg, run.run_dir, run.estimator, run.seconds
    t = time.perf_counter()
    test_scores = estimator.decision_function(run.x_test)
    test = ranking_metrics(run.test_anomaly, test_scores)
    split = run.split
    # r_p = 0 leaves no anomaly in the training set: its metrics are undefined (null in the record)
    train = (ranking_metrics(split.unlabeled_anomaly, estimator.decision_function(run.x_unl))
             if 0 < split.unlabeled_anomaly.sum() < len(run.x_unl) else {"auc": None, "aupr": None})
    seconds["evaluate"] = time.perf_counter() - t

    clear_run_files(run_dir)
    recorder = run.monitor
    if recorder.rows:
        write_csv(run_dir / "curves.csv", recorder.curves())
    elif cfg.curves_every:
        log.warning("curves_every=%d: no curves.csv written; no training step of this run was a multiple of it "
                    "(it has fewer steps, or its method has no training loop)", cfg.curves_every)
    meta = recorder.meta_scores()
    if len(meta):
        write_csv(run_dir / "meta_scores.csv", meta)
    if cfg.plots:
        try:
            save_run_figure(run_dir / "scores.png", run.test_anomaly, test_scores, estimator.threshold_, meta)
        except Exception as err:  # a picture must never cost a finished run
            log.warning("scores.png not drawn for %s: %s: %s", run_dir, type(err).__name__, err)
    # this run's own time: its preparation, its share of its pack's training, its evaluation and files
    seconds["total"] = seconds.pop("prepare") + seconds["train"] + time.perf_counter() - t
    digest = hashlib.sha1(np.concatenate([split.unlabeled, split.labeled]).tobytes()).hexdigest()[:12]
    return {
        "status": "ok", "test_auc": test["auc"], "test_aupr": test["aupr"], "train_auc": train["auc"],
        "train_aupr": train["aupr"],
        "train_seconds": seconds["train"], "seconds": seconds,
        "seconds_per_epoch": seconds["train"] / max(cfg.train.epochs, 1), "pack_size": run.pack_size,
        "split_digest": digest, "n_test": len(run.test_anomaly),
        "margin": getattr(estimator, "margin_", None), "label_inference": recorder.inference_quality(),
        # an auto-encoder pre-training kept by an earlier run of the same split and seed (identical result)
        **({"pretraining": estimator.pretraining_} if hasattr(estimator, "pretraining_") else {}),
        "environment": environment(run.device),
    }


def run_identity(cfg: DictConfig) -> dict:
    """What makes a record the result of this run: the record format, the hash of every setting that
    changes the result, and for your own data (csv, folder) a fingerprint of the files, for CIFAR-10 the
    layout its pixels come from (``datasets.data_fingerprint``)."""
    options = OmegaConf.to_container(cfg.data, resolve=True)
    return {"format": RECORD_FORMAT, "config_hash": config_hash(cfg),
            "data_fingerprint": data_fingerprint(cfg.data.name, root=options["root"],
                                                 **{k: options[k] for k in DATA_OPTIONS})}


def config_differences(old: dict, new: DictConfig, most: int = 4) -> list[str]:
    """``key: old -> new`` for settings that change the result (:func:`result_settings`) and that both
    configs hold, set or unset (``elite.pretrain=false`` against ``true`` is a difference; a key one config
    lacks, e.g. added by a later version, is none)."""
    both = names_its_method(old)  # else neither is normalised: it cannot be
    raw_new = OmegaConf.to_container(new, resolve=True)
    a, b = flatten(result_settings(old, both)), flatten(result_settings(raw_new, both))
    held_a, held_b = flatten(old), flatten(raw_new)  # as the configs hold them: an unset key too (off, None)
    diff = [f"{k}: {a.get(k, held_a[k])} -> {b.get(k, held_b[k])}"
            for k in sorted((a.keys() | b.keys()) & held_a.keys() & held_b.keys()) if a.get(k) != b.get(k)]
    return diff[:most] + ([f"... ({len(diff) - most} more)"] if len(diff) > most else [])


def base_record(cfg: DictConfig, run_dir: Path) -> dict:
    n_labels = n_labels_of(cfg)
    data = chosen_data_file(str(cfg.data.name))
    return {"method": method_name(cfg), "data": data.option, "normal_class": cfg.normal_class, "r_p": cfg.r_p,
            "n_labels": n_labels, "n_labels_default": default_n_labels(data),
            "r_l": n_labels / cfg.n_train if cfg.n_train > 0 else None,  # checked later
            "n_train": cfg.n_train, "eta_m": as_read_value(cfg, "eta_m"),
            "seed": cfg.seed, "epochs": cfg.train.epochs, "run_dir": str(run_dir), "identity": run_identity(cfg),
            **method_record(cfg), "config": OmegaConf.to_container(cfg, resolve=True)}


def _previous_record(cfg: DictConfig, run_dir: Path, identity: dict, multirun: bool) -> str | None:
    """What ``run_dir``'s record means for this run: ``"finished"`` when it is this run's finished
    record (skip it); ``"conflict"`` for the record of other settings, which is never replaced without
    ``force`` (one line names it; a single run exits with status 2, a sweep leaves the job out);
    None: run it (a record of this run made from other data files or by an older version is stale)."""
    previous = read_record(run_dir)
    if previous is None or cfg.force:
        return None
    differences = config_differences(previous.get("config") or {}, cfg)
    if differences:
        message = (f"{run_dir} holds the record of other settings ({'; '.join(differences)}); it is kept: give "
                   "this run its own folder (hydra.run.dir / hydra.sweep.subdir) or force=true to replace it")
        if multirun:
            log.error("not run: %s", message)
            return "conflict"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    if is_finished(run_dir, identity):
        log.info("skipping %s: finished record present (force=true reruns it)", run_dir)
        return "finished"
    if previous.get("status") == "ok":
        log.warning("rerunning %s: its record was made by %s", run_dir, _why_stale(previous, identity, cfg))
    return None


def _why_stale(previous: dict, identity: dict, cfg: DictConfig) -> str:
    """What made a finished record of this run's folder another run's: said in the "rerunning" line."""
    if record_format(previous) != RECORD_FORMAT:
        return f"an older version of elite-exp (record format {record_format(previous)}, now {RECORD_FORMAT})"
    made_from, now = previous.get("identity", {}).get("data_fingerprint"), identity["data_fingerprint"]
    if made_from is None and previous.get("data") == "cifar10":
        return ("a version that did not record which CIFAR-10 layout it read (an image-folder copy's pixels are "
                "not the original's)")
    if made_from == now:
        return "other settings"
    hint = "; a folder's fingerprint covers its images' names, sizes and modification times" \
        if cfg.data.name == "folder" else ""
    return f"other data files ({made_from}, now {now}{hint})"


def _discard_job_folder(run_dir: Path, out_dir: Path) -> None:
    """Remove the folder Hydra made for a job that did not run (``.hydra/`` and the job's log) and the
    empty folders above it up to ``out_dir``; a folder holding anything else (a record, the user's
    files in a ``hydra.run.dir`` of their own) is left as it is."""
    job_log = f"{HydraConfig.get().job.name}.log" if HydraConfig.initialized() else None
    if run_dir.is_dir() and all(p.name in (".hydra", job_log) for p in run_dir.iterdir()):
        shutil.rmtree(run_dir, ignore_errors=True)
        _remove_empty_parents(run_dir, out_dir)


def _remove_empty_parents(run_dir: Path, out_dir: Path) -> None:
    """Remove the folders above ``run_dir`` that the run created and left empty, up to ``out_dir``."""
    parent, top = run_dir.resolve().parent, out_dir.resolve()
    while parent != top and top in parent.parents:
        try:
            parent.rmdir()  # only an empty folder
        except OSError:
            return
        parent = parent.parent


def _stop_single_run(err: ConfigError, cfg: DictConfig, run_dir: Path) -> None:
    """A user error in a single run: one ``error:`` line, no folder left behind (nothing ran), exit status 2."""
    print(f"error: {err}", file=sys.stderr)
    _discard_job_folder(run_dir, Path(cfg.out_dir))
    _remove_new_folders(_NEW_OUT_DIRS)  # and out_dir, where this run's Hydra made it
    sys.exit(2)


def prepare_job(cfg: DictConfig, run_dir: Path, multirun: bool) -> PendingRun | dict | None:
    """A job up to its training: its :class:`PendingRun`; or None when a finished record was there (skipped), a
    ``"not run"`` stand-in when its folder holds another run's record, its failed record when preparing it failed
    (a sweep goes on). A user error in a single run exits with code 2."""
    record = base_record(cfg, run_dir)
    if not multirun:  # a bad value stops the run even where a finished record of its folder would skip it
        try:
            validate(cfg)  # (a sweep checked every job before the first started: sweeps.check_jobs)
        except ConfigError as err:
            _stop_single_run(err, cfg, run_dir)
    for key in unread_overrides(cfg, task_overrides()):  # said before a skip too: why the folder is another's
        log.warning("%s is not read by %s: it changes nothing in this run", key, record["method"])
    previous = _previous_record(cfg, run_dir, record["identity"], multirun)
    if previous == "finished":
        return None
    if previous == "conflict":  # counted as failed by the sweeper; the folder's record stays as it is
        return {"status": "not run", "run_dir": str(run_dir), "error": "RecordConflict",
                "reason": "the folder holds the record of other settings (force=true replaces it)"}
    try:
        return prepare_experiment(cfg, run_dir, record, multirun)
    except FinishedUnderOtherSpelling as done:
        log.info("skipping %s: finished in %s (the same class, spelled the other way; force=true reruns it)",
                 run_dir, done)
        _discard_job_folder(run_dir, Path(cfg.out_dir))
        return None
    except Exception as err:  # every failure is recorded; a sweep goes on
        return _record_failure(err, cfg, run_dir, record, multirun)


def finish_job(run: PendingRun) -> dict:
    """Evaluate a job whose pack has trained and write its record (its failed record when its fit failed)."""
    cfg, run_dir, record = run.cfg, run.run_dir, run.record
    record.update(pack_size=run.pack_size, normal_class_name=run.class_name)  # a failed fit's record names it too
    try:
        if run.fit_error is not None:
            raise run.fit_error
        record.update(finish_experiment(run))
    except Exception as err:  # every failure is recorded; a sweep goes on
        return _record_failure(err, cfg, run_dir, record, run.multirun)
    record["finished_at"] = utc_now()
    write_json(run_dir / "result.json", record)
    log.info("%s %s class %s r_p %s: test AUC %.4f (AUPR %.4f), train AUC %s, %.1f s; record: %s",
             record["method"], record["data"], record["normal_class"], record["r_p"], record["test_auc"],
             record["test_aupr"],
             "n/a" if record["train_auc"] is None else f"{record['train_auc']:.4f}", record["seconds"]["total"],
             run_dir / "result.json")
    return record


def _record_failure(err: Exception, cfg: DictConfig, run_dir: Path, record: dict, multirun: bool) -> dict:
    """Write the failed record of a run (a user error in a single run: one line, exit status 2; a divergence:
    one line, status 1; anything else re-raised in a single run) and return it."""
    if isinstance(err, ConfigError):  # one the estimator found while fitting names its config key
        err = config_key_error(err, cfg)
    if isinstance(err, ConfigError) and not multirun:
        _stop_single_run(err, cfg, run_dir)
    record.update(status="failed", error=type(err).__name__, reason=str(err), finished_at=utc_now())
    if not isinstance(err, ConfigError | TrainingDiverged):
        record["traceback"] = "".join(traceback.format_exception(err))
    clear_run_files(run_dir)
    write_json(run_dir / "result.json", record)
    if not multirun and isinstance(err, TrainingDiverged):
        print(f"error: {err}; recorded in {run_dir / 'result.json'}", file=sys.stderr)
        sys.exit(1)
    if not multirun:
        raise err
    log.error("run failed (%s): %s; recorded in %s", type(err).__name__, err, run_dir)
    return record


def execute(cfg: DictConfig, run_dir: Path, multirun: bool) -> dict | None:
    """Run, record and report one job, a pack of one: :func:`prepare_job`, :func:`train_pack`, :func:`finish_job`.
    Returns its record, None when a finished record was there (skipped), or a ``"not run"`` stand-in when its
    folder holds another run's record. A user error in a single run exits with code 2; in a sweep every failure
    is recorded and the sweep goes on."""
    run = prepare_job(cfg, run_dir, multirun)
    if not isinstance(run, PendingRun):
        return run
    train_pack([run])
    return finish_job(run)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> dict | None:
    """One job; its record (None: skipped) is the job's return value, which the sweeper counts."""
    hc = HydraConfig.get()
    return execute(cfg, Path(hc.runtime.output_dir), multirun=hc.mode == RunMode.MULTIRUN)


def main() -> None:
    register()
    _register_resolvers()
    try:
        _hydra_main()
        finish()  # a multirun's count of finished / skipped / failed runs, exit status 1 when any failed
    except KeyboardInterrupt:  # finished records are kept; the interrupted run left none
        print("interrupted: finished runs keep their records; run the same command again to resume",
              file=sys.stderr)
        sys.exit(130)
