"""MLflow tracking: a Hydra callback that logs each job's record as one MLflow run.

``python -m elite_exp [-m ...] +tracking=mlflow [tracking.uri=URI] [tracking.experiment=NAME]``
(``conf/tracking/mlflow.yaml`` selects ``conf/hydra/callbacks/mlflow.yaml``). The store defaults
to ``sqlite:///<absolute out_dir>/mlflow.db`` with artifacts in ``<out_dir>/mlartifacts``, the
experiment to the absolute ``out_dir``. Needs the ``mlflow`` package (``pip install 'elite-exp[mlflow]'``).

The record (``result.json``) is the source of truth. After each job, wherever it ran (basic,
joblib or Slurm launcher), :meth:`MlflowTracking.on_job_end` logs its run folder as one MLflow
run named by the folder's path under ``out_dir`` (tag ``run_dir``) with

* params: the record's resolved config, flattened to dotted keys (``train.lr``);
* metrics: every number of the record but the settings and the environment (``test_auc``,
  ``train_auc``, ``seconds.train``, ``label_inference.meta_auc``, ...); ``curves.csv`` columns
  as step metrics ``curve.<column>`` at step ``iteration``;
* tags: ``method``, ``data``, ``class``, ``status`` (``ok`` / ``failed``), ``reason`` of a failure;
  the MLflow run ends FINISHED or FAILED accordingly;
* artifacts: ``result.json``, ``curves.csv``, ``meta_scores.csv``, ``scores.png`` (those present).

A record that is logged already (tag ``record_sha1``, the digest of ``result.json``) is not
logged again, so a resumed sweep that skips finished jobs adds nothing; a record that changed
(``force=true``, a failed run retried) replaces the folder's earlier MLflow run, and a folder
recorded while tracking was off is logged when its job is next skipped. Store writes hold a
file lock (``<out_dir>/.mlflow.lock``): parallel workers never race on a fresh SQLite database.
Tracking never fails a run: a store that cannot be reached or written is one warning line, and
the sweep goes on without tracking (an HTTP store gets one try with a 10 s timeout unless
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``MLFLOW_HTTP_REQUEST_TIMEOUT`` say otherwise); rerunning
the sweep's command later logs the folders that were missed.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from elite_exp.records import RESULT_FILE, flatten, missing_keys

log = logging.getLogger(__name__)

ARTIFACT_DIR = "mlartifacts"  # a SQLite store's artifacts: next to the database (report.py skips it)
ARTIFACTS = (RESULT_FILE, "curves.csv", "meta_scores.csv", "scores.png")
# an HTTP store that does not answer costs one 10 s try, not MLflow's minutes of retries (env vars override)
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# record keys that repeat the run's settings (params), identify it or describe the machine: not metrics
NOT_METRICS = ("config", "environment", "identity",
               "normal_class", "r_p", "n_labels", "r_l", "n_train", "eta_m", "seed", "epochs", "alpha")


def record_metrics(record: dict) -> dict[str, float]:
    """Every finite number of the record (nested keys dotted) but the settings and the environment."""
    values = flatten({k: v for k, v in record.items() if k not in NOT_METRICS})
    return {k: float(v) for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}


def curve_metrics(curves: pd.DataFrame) -> list[tuple[str, float, int]]:
    """``curves.csv`` as (``curve.<column>``, value, step = iteration), missing values left out."""
    return [(f"curve.{col}", float(value), int(step))
            for col in curves.columns.drop(["iteration", "epoch"], errors="ignore")
            for step, value in zip(curves["iteration"], curves[col]) if pd.notna(value)]


class MlflowTracking(Callback):
    """Log every job's run folder to MLflow; see the module docstring.

    ``out_dir``: the runs' root (resolved to an absolute path where the sweep starts);
    ``uri``: an MLflow tracking URI (``sqlite:////abs/path.db``, ``http://host:5000``, ...) or
    None for ``sqlite:///<out_dir>/mlflow.db``; ``experiment``: the experiment's name or None for
    the absolute ``out_dir``. Raises ImportError naming the extra to install if mlflow is missing.
    """

    def __init__(self, out_dir: str, uri: str | None = None, experiment: str | None = None):
        if importlib.util.find_spec("mlflow") is None:
            raise ImportError("+tracking=mlflow needs the mlflow package: pip install 'elite-exp[mlflow]'")
        self.out_dir = Path(out_dir).resolve()
        self.uri = uri or f"sqlite:///{self.out_dir / 'mlflow.db'}"
        self.experiment = experiment or str(self.out_dir)
        self.off = False  # set when the store failed: one warning, then no more tries

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Create the store and the experiment once, in the sweep's process, before any worker starts."""
        self._guarded(self._experiment_id)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.runtime.output_dir)
        self._guarded(lambda client: self.log_run(client, run_dir))

    def log_run(self, client, run_dir: Path) -> str | None:
        """Log ``run_dir``'s record unless that very record is logged; returns the new MLflow run id
        (None: no record, or logged already)."""
        from mlflow.entities import Metric, Param, RunStatus, ViewType

        try:
            body = (run_dir / RESULT_FILE).read_bytes()
        except FileNotFoundError:  # the job left no record (a bad value in a single run)
            return None
        sha1 = hashlib.sha1(body).hexdigest()
        try:
            record = json.loads(body)
        except ValueError:
            record = None
        missing = missing_keys(record) or ([] if "config" in record else ["config"])
        if missing:  # one bad record is skipped; tracking goes on for the others
            log.warning("mlflow: %s not tracked: its record has no %s", run_dir / RESULT_FILE, ", ".join(missing))
            return None
        key = run_dir.relative_to(self.out_dir).as_posix() if run_dir.is_relative_to(self.out_dir) else str(run_dir)
        experiment_id = self._experiment_id(client)
        logged = client.search_runs([experiment_id], filter_string=f"tags.run_dir = '{key}'",
                                    run_view_type=ViewType.ACTIVE_ONLY)
        ended = ("FINISHED", "FAILED")  # a run still RUNNING was cut off while it was logged
        if any(run.data.tags.get("record_sha1") == sha1 and run.info.status in ended for run in logged):
            return None
        for run in logged:  # an older record of the same folder, or this one's logging cut off before it ended
            client.delete_run(run.info.run_id)

        tags = {"run_dir": key, "record_sha1": sha1, "method": record["method"], "data": record["data"],
                "class": str(record["normal_class"]), "status": record["status"]}
        if record["status"] != "ok":
            tags["reason"] = f"{record.get('error', '')}: {record.get('reason', '')}"
        run_id = client.create_run(experiment_id, run_name=key, tags=tags).info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in record_metrics(record).items()]
        if (run_dir / "curves.csv").exists():
            metrics += [Metric(k, v, now, step) for k, v, step in curve_metrics(pd.read_csv(run_dir / "curves.csv"))]
        params = [Param(k, str(v)) for k, v in flatten(record["config"]).items()]
        client.log_batch(run_id, metrics=metrics, params=params)
        for name in ARTIFACTS:
            if (run_dir / name).exists():
                client.log_artifact(run_id, str(run_dir / name))
        status = RunStatus.FINISHED if record["status"] == "ok" else RunStatus.FAILED
        client.set_terminated(run_id, status=RunStatus.to_string(status))
        return run_id

    def _experiment_id(self, client) -> str:
        """The experiment's id, created (artifacts next to a SQLite database) if it does not exist."""
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if self.uri.startswith("sqlite:///"):
            location = (Path(self.uri.removeprefix("sqlite:///")).resolve().parent / ARTIFACT_DIR).as_uri()
        return client.create_experiment(self.experiment, artifact_location=location)

    def _guarded(self, action) -> None:
        """Run ``action(client)`` under the store's file lock; a failure is one warning and ends tracking."""
        if self.off:
            return
        for name, value in HTTP_LIMITS.items():
            os.environ.setdefault(name, value)
        try:
            from mlflow import MlflowClient

            # MLflow says at INFO level that it creates and migrates a new SQLite store's tables: not the sweep's
            # news (unless the user set MLflow's own logging level)
            if "MLFLOW_LOGGING_LEVEL" not in os.environ:
                logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)

            with self._lock():
                action(MlflowClient(tracking_uri=self.uri))
        except Exception as err:  # tracking never fails a run
            self.off = True
            first_line = (str(err).strip().splitlines() or [""])[0]
            log.warning("mlflow tracking off: store %s failed: %s: %s", self.uri, type(err).__name__, first_line)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / ".mlflow.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield
