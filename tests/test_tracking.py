"""MLflow tracking of real digits sweeps (read back through MLflow's own API) and the per-run figure."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from elite_exp.config import CONF_DIR, register
from elite_exp.report import record_files
from elite_exp.runner import execute
from elite_exp.tracking import MlflowTracking
from tests.conftest import REPO

mlflow = pytest.importorskip("mlflow")

TINY = ["data=digits", "train.epochs=1", "progress=false", "device=cpu"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sweep(tmp_path, *args, returncode=0):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "elite_exp", "-m", *TINY, "+tracking=mlflow", f"out_dir={tmp_path}",
                           *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == returncode, done.stderr[-3000:]
    return done


def tracked_runs(out_dir: Path):
    """Every MLflow run of the sweep's experiment, by run name, read from the default store."""
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{out_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(str(out_dir))
    return client, {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}


def records(out_dir: Path) -> dict[str, dict]:
    """The sweep's records by run folder, as the report finds them (MLflow's artifact copies are not runs)."""
    return {p.parent.relative_to(out_dir).as_posix(): json.loads(p.read_text()) for p in record_files([out_dir])}


def test_sweep_runs_are_tracked_with_the_records_metrics_once(tmp_path):
    args = ["method=elite_svdd,deepsvdd", "normal_class=0,1", "curves_every=2"]
    first = sweep(tmp_path, *args)
    assert "Creating initial MLflow database tables" not in first.stdout + first.stderr  # not the sweep's news
    recs = records(tmp_path)
    client, runs = tracked_runs(tmp_path)
    assert len(recs) == 4 and set(runs) == set(recs)
    for name, rec in recs.items():
        run = runs[name]
        assert run.info.status == "FINISHED" and rec["status"] == "ok"
        assert run.data.tags["method"] == rec["method"] and run.data.tags["class"] == str(rec["normal_class"])
        metrics = run.data.metrics
        assert {k: metrics[k] for k in ("test_auc", "train_auc", "test_aupr", "train_aupr")} == {
            k: rec[k] for k in ("test_auc", "train_auc", "test_aupr", "train_aupr")}
        assert metrics["seconds_per_epoch"] == rec["seconds_per_epoch"]
        assert {k: metrics[f"seconds.{k}"] for k in rec["seconds"]} == rec["seconds"]
        assert not {"seed", "r_p", "r_l", "n_labels"} & set(metrics)  # settings are params
        assert not [k for k in metrics if k.split(".")[0] in ("identity", "config", "environment")]
        assert run.data.params["train.epochs"] == "1" and run.data.params["seed"] == "0"
        assert run.data.params["normal_class"] == str(rec["normal_class"])
        curve = client.get_metric_history(run.info.run_id, "curve.test_auc")
        assert sorted(m.step for m in curve) == list(range(2, 2 * len(curve) + 1, 2)) and curve
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        expected = {"result.json", "curves.csv", "scores.png"} | ({"meta_scores.csv"} if "elite" in name else set())
        assert artifacts == expected
        png = tmp_path / name / "scores.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and matplotlib.image.imread(png).ndim == 3
    ids = {run.info.run_id for run in runs.values()}

    again = sweep(tmp_path, *args)  # every job is skipped: nothing is logged twice
    assert (again.stdout + again.stderr).count("skipping") == 4
    assert {run.info.run_id for run in tracked_runs(tmp_path)[1].values()} == ids


def test_parallel_workers_lose_no_run_and_failures_are_tagged(tmp_path):
    # a learning rate of 1e30 makes the loss NaN in training: those two runs fail, the other two finish
    sweep(tmp_path, "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "method=elite_svdd,ae", "train.lr=1e-4,1e30",
          returncode=1)
    recs = records(tmp_path)
    _, runs = tracked_runs(tmp_path)
    assert len(recs) == 4 and set(runs) == set(recs)
    for name, rec in recs.items():
        run = runs[name]
        if rec["config"]["train"]["lr"] == 1e30:
            assert run.info.status == "FAILED" and run.data.tags["status"] == "failed"
            assert "loss became nan" in run.data.tags["reason"]
        else:
            assert run.info.status == "FINISHED" and run.data.metrics["test_auc"] == rec["test_auc"]


def cfg_of(*overrides):
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[*TINY, *overrides])


def test_unreachable_store_is_one_warning_and_the_record_stays(tmp_path, caplog):
    run_dir = tmp_path / "run"
    rec = execute(cfg_of(), run_dir, multirun=True)
    (tmp_path / "a_file").write_text("not a folder")
    tracking = MlflowTracking(out_dir=str(tmp_path), uri=f"sqlite:///{tmp_path}/a_file/mlflow.db")
    job = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(run_dir)}}})
    with caplog.at_level(logging.WARNING, logger="elite_exp.tracking"):
        tracking.on_multirun_start(job)
        tracking.on_job_end(job, None)
        tracking.on_job_end(job, None)
    [warning] = [r for r in caplog.records if r.name == "elite_exp.tracking"]
    assert "mlflow tracking off" in warning.getMessage() and "a_file/mlflow.db" in warning.getMessage()
    assert "\n" not in warning.getMessage()
    assert json.loads((run_dir / "result.json").read_text())["test_auc"] == rec["test_auc"]


@pytest.fixture
def logged_run(tmp_path):
    """A finished run logged once: (tracking callback, client, run folder, MLflow run id)."""
    run_dir = tmp_path / "run"
    execute(cfg_of(), run_dir, multirun=True)
    tracking = MlflowTracking(out_dir=str(tmp_path))
    client = mlflow.MlflowClient(tracking_uri=tracking.uri)
    return tracking, client, run_dir, tracking.log_run(client, run_dir)


def test_changed_record_replaces_its_mlflow_run(tmp_path, logged_run):
    tracking, client, run_dir, first = logged_run
    assert first is not None and tracking.log_run(client, run_dir) is None  # the same record: logged once
    rec = execute(cfg_of("force=true", "seed=1"), run_dir, multirun=True)
    second = tracking.log_run(client, run_dir)
    [run] = tracked_runs(tmp_path)[1].values()
    assert run.info.run_id == second != first and run.data.metrics["test_auc"] == rec["test_auc"]


def test_a_run_whose_logging_was_cut_off_is_logged_again(tmp_path, logged_run):
    tracking, client, run_dir, first = logged_run
    client.update_run(first, status="RUNNING")  # as a process killed between create_run and set_terminated left it
    second = tracking.log_run(client, run_dir)
    [run] = tracked_runs(tmp_path)[1].values()
    assert second not in (None, first) and run.info.run_id == second and run.info.status == "FINISHED"
    assert "test_auc" in run.data.metrics and tracking.log_run(client, run_dir) is None


def test_run_figure_has_a_third_panel_for_elite_and_plots_false_skips_it(tmp_path):
    width = {}
    for method in ("elite_svdd", "deepsvdd"):
        execute(cfg_of(f"method={method}"), tmp_path / method, multirun=True)
        png = tmp_path / method / "scores.png"
        assert png.read_bytes()[:8] == PNG_MAGIC
        width[method] = matplotlib.image.imread(png).shape[1]
    assert width["elite_svdd"] > width["deepsvdd"]  # the y_hat * |M| histogram
    rec = execute(cfg_of("plots=false"), tmp_path / "off", multirun=True)
    assert rec["status"] == "ok" and not (tmp_path / "off" / "scores.png").exists()
