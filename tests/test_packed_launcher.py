"""``hydra/launcher=packed``: a real multirun on digits writes the records the basic launcher writes, keeps
skip / force / failure isolation per run, and refuses bad settings before any job."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hydra.experimental.callback import Callback

from elite_exp.errors import ConfigError
from elite_exp.packing import check_settings
from tests.test_sweep import cli

SWEEP = ["-m", "data=digits", "method=elite_svdd,deepsvdd,soel_svdd", "normal_class=0,1", "r_p=0.1,0.3", "seed=0",
         "train.epochs=2", "progress=false", "device=cpu"]
PACKED = ["hydra/launcher=packed", "hydra.launcher.pack_size=4", "hydra.launcher.n_jobs=1"]
TIMES = {"seconds", "train_seconds", "seconds_per_epoch", "finished_at", "run_dir", "pack_size"}


class JobLog(Callback):
    """A user's Hydra callback: appends ``start <job folder> <has a record>`` and ``end <job folder> <has a record>
    <the job's return value: its record's status, or None>`` to ``path``."""

    def __init__(self, path: str):
        self.path = Path(path)

    def _write(self, event: str, config) -> None:
        run_dir = Path(config.hydra.runtime.output_dir)
        with self.path.open("a") as fh:
            fh.write(f"{event} {run_dir.name} {(run_dir / 'result.json').exists()}\n")

    def on_job_start(self, config, **kwargs) -> None:
        self._write("start", config)

    def on_job_end(self, config, job_return, **kwargs) -> None:
        value = job_return.return_value
        self._write(f"end {value['status'] if isinstance(value, dict) else value}", config)


def _job_events(path: Path) -> dict[str, list[str]]:
    """Each job folder's callback events, in order: ``start <has a record>``, ``end <return value> <has a record>``."""
    events: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        *event, folder, has_record = line.split()
        events.setdefault(folder, []).append(f"{' '.join(event)} {has_record}")
    return events


def _job_log(path: Path) -> list[str]:
    return ["+hydra.callbacks.log._target_=tests.test_packed_launcher.JobLog", f"+hydra.callbacks.log.path={path}"]


def _records(out_dir: Path) -> dict[str, dict]:
    return {str(p.parent.relative_to(out_dir)): json.loads(p.read_text()) for p in out_dir.rglob("result.json")}


def test_packed_launcher_writes_the_basic_launchers_records(tmp_path):
    basic = cli([*SWEEP, *_job_log(tmp_path / "basic.log")], tmp_path / "basic")
    packed = cli([*SWEEP, *PACKED, *_job_log(tmp_path / "packed.log")], tmp_path / "packed")
    assert basic.returncode == 0 and packed.returncode == 0, packed.stderr[-2000:]
    assert "composed here" not in packed.stdout  # grouped from the sweeper's check
    # a user's callbacks hear of each job once, as from the basic launcher: started, then ended with its record
    events = _job_events(tmp_path / "packed.log")
    assert events == _job_events(tmp_path / "basic.log") and len(events) == 12
    assert set(map(tuple, events.values())) == {("start False", "end ok True")}
    assert "sweep: 12 run(s): 12 finished" in packed.stdout
    # SOEL's alpha is the run's r_p: one pack per r_p
    assert "12 job(s) in 4 unit(s) of work (pack_size=4)" in packed.stdout
    a, b = _records(tmp_path / "basic"), _records(tmp_path / "packed")
    assert a.keys() == b.keys() and len(a) == 12
    for folder, rec in b.items():
        assert rec["status"] == "ok" and a[folder]["pack_size"] == 1
        assert rec["pack_size"] == (2 if rec["method"] == "soel_svdd" else 4)
        assert rec["test_auc"] == pytest.approx(a[folder]["test_auc"], abs=1e-6)
        assert rec["train_auc"] == pytest.approx(a[folder]["train_auc"], abs=1e-6)
        rec["config"]["out_dir"] = a[folder]["config"]["out_dir"]
        same = {k: v for k, v in rec.items() if k not in TIMES | {"test_auc", "train_auc", "test_aupr", "train_aupr"}}
        assert same == {k: v for k, v in a[folder].items() if k in same}, folder
        run = tmp_path / "packed" / folder
        assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in (tmp_path / "basic" / folder).iterdir())
        if (run / "meta_scores.csv").exists():  # ELITE's per-sample meta-gradient scores, as alone
            pd.testing.assert_frame_equal(pd.read_csv(run / "meta_scores.csv"),
                                          pd.read_csv(tmp_path / "basic" / folder / "meta_scores.csv"), atol=1e-6)

    again = cli([*SWEEP, *PACKED, *_job_log(tmp_path / "again.log")], tmp_path / "packed")  # skipped, per run
    assert again.returncode == 0 and "12 skipped" in again.stdout
    assert set(map(tuple, _job_events(tmp_path / "again.log").values())) == {("start True", "end None True")}
    forced = cli([*SWEEP[:-4], "normal_class=0", "r_p=0.1", "method=elite_svdd", "seed=0", *SWEEP[-3:], *PACKED,
                  "force=true"], tmp_path / "packed")
    assert forced.returncode == 0 and "1 finished" in forced.stdout


def test_a_failing_run_is_recorded_and_the_others_finish(tmp_path):
    proc = cli(["-m", "data=digits", "method=elite_svdd", "normal_class=0,1", "r_p=0.1", "train.lr=1e-3,1e30",
                "train.epochs=2", "progress=false", "device=cpu", *PACKED, *_job_log(tmp_path / "jobs.log")],
               tmp_path / "runs")
    assert proc.returncode == 1
    assert "4 run(s): 2 finished, 0 skipped (finished before), 2 failed" in proc.stdout
    records = list(_records(tmp_path / "runs").values())
    assert sorted(r["status"] for r in records) == ["failed", "failed", "ok", "ok"]
    assert all(r["error"] == "TrainingDiverged" for r in records if r["status"] == "failed")
    assert sorted(map(tuple, _job_events(tmp_path / "jobs.log").values())) == \
        [("start False", "end failed True")] * 2 + [("start False", "end ok True")] * 2


def test_auto_packs_are_runs_alone_on_cpu(tmp_path):
    proc = cli(["-m", "data=digits", "method=elite_svdd", "normal_class=0,1", "train.epochs=1", "progress=false",
                "device=cpu", "hydra/launcher=packed"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 job(s) in 2 unit(s) of work (pack_size=auto)" in proc.stdout
    assert [r["pack_size"] for r in _records(tmp_path).values()] == [1, 1]


@pytest.mark.parametrize("setting, message", [
    ("pack_size=0", "hydra.launcher.pack_size=0 is not allowed; allowed: a number of runs >= 1, or auto"),
    ("n_jobs=two", "hydra.launcher.n_jobs='two' is not allowed; allowed: a number of packs at once >= 1, or auto"),
    ("memory_fraction=1.5", "hydra.launcher.memory_fraction=1.5 is not allowed; it must lie in (0, 1]"),
])
def test_bad_launcher_settings_stop_the_sweep_before_any_job(tmp_path, setting, message):
    proc = cli(["-m", "data=digits", "normal_class=0,1", "progress=false", "hydra/launcher=packed",
                f"hydra.launcher.{setting}"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"error: {message}; no job was started"
    assert not list(tmp_path.rglob("result.json"))


def test_settings_are_checked_by_value():
    assert check_settings("auto", "auto", 0.5) == (None, None)
    assert check_settings(8, 2, 1) == (8, 2)
    for bad in (True, 1.5, -1):
        with pytest.raises(ConfigError, match="pack_size"):
            check_settings(bad, 1, 0.5)


def test_a_pack_that_fails_as_a_whole_trains_its_runs_alone(tmp_path, monkeypatch):
    from elite_exp import runner
    from tests.test_sweep import cfg_of

    real = runner.fit_packed

    def out_of_memory_at_the_end_of_packs(estimators, *args):
        errors = real(estimators, *args)  # the pack trains (its monitors see every step) ...
        if len(estimators) > 1:
            raise RuntimeError("CUDA out of memory (simulated)")  # ... and fails as a whole at its end
        return errors

    monkeypatch.setattr(runner, "fit_packed", out_of_memory_at_the_end_of_packs)
    runs = [runner.prepare_job(cfg_of(["data=digits", f"normal_class={c}", "train.epochs=1", "progress=false",
                                       "device=cpu", "curves_every=1", f"out_dir={tmp_path}"]), tmp_path / str(c),
                               multirun=True) for c in (0, 1)]
    runner.train_pack(runs)
    assert [r.fit_error for r in runs] == [None, None] and [r.pack_size for r in runs] == [1, 1]
    records = [runner.finish_job(r) for r in runs]
    assert [r["status"] for r in records] == ["ok", "ok"]
    for c in (0, 1):  # the curves of the run trained again alone, not the failed pack's steps before them
        iterations = pd.read_csv(tmp_path / str(c) / "curves.csv")["iteration"].tolist()
        assert iterations == list(range(1, len(iterations) + 1))


def test_under_hydras_basic_sweeper_the_launcher_groups_the_jobs_itself(tmp_path):
    # the runner's sweeper hands the launcher each job's pack from its check; Hydra's own sweeper does not
    proc = cli([*SWEEP, *PACKED, "hydra/sweeper=basic"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "12 job(s) in 4 unit(s) of work (pack_size=4)" in proc.stdout
    assert "(12 job(s) composed here to group them: not checked by the runner's sweeper)" in proc.stdout
    assert len(_records(tmp_path)) == 12
