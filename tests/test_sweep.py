"""Sweep presets, resume / force, failure isolation and crash safety of the runner, on sklearn digits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from elite_exp.config import CONF_DIR, register
from elite_exp.methods.registry import method_name
from elite_exp.records import atomic_write_text, is_finished, read_record
from elite_exp.report import collect
from elite_exp.runner import execute

ROOT = Path(__file__).resolve().parent.parent
TINY = ["data=digits", "train.epochs=1", "progress=false", "device=cpu"]


def cfg_of(overrides, hydra_node=False):
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=hydra_node)


def cli(args, out_dir, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "elite_exp", *args, f"out_dir={out_dir}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, **kwargs)


@pytest.mark.parametrize("data, labels", [("mnist", range(20, 101, 10)), ("cifar10", range(100, 501, 50))])
def test_label_presets_follow_the_data_set(data, labels):
    cfg = cfg_of(["+experiment=fig4", f"data={data}"], hydra_node=True)
    params = cfg.hydra.sweeper.params
    assert [round(float(r) * cfg.n_train) for r in params.r_l.split(",")] == list(labels) and params.r_p == "0.1"
    assert params.normal_class == "range(10)" and params.seed == "0,1,2"  # experiments default to scale=paper


@pytest.mark.parametrize("axis, key, grid", [("r_p", "r_p", "0.1,0.2,0.3,0.4,0.5"),
                                             ("eta_m", "eta_m", "1,10,25,50,75,100"),
                                             ("r_l", "r_l", "0.1,0.2,0.3")])
@pytest.mark.parametrize("method", ["elite_svdd", "deepsad", "loe_hard_ae"])
def test_sweep_group_sweeps_one_axis_for_any_method_and_scale(axis, key, grid, method):
    cfg = cfg_of([f"sweep={axis}", f"method={method}", "data=digits", "scale=quick"], hydra_node=True)
    params = cfg.hydra.sweeper.params
    assert params[key] == grid and params.normal_class == "0,1" and cfg.train.epochs == 3
    assert method_name(cfg) == method


def test_every_sweep_option_runs_at_tiny_scale(tmp_path):
    for axis, count in (("r_p", 5), ("r_l", 3), ("eta_m", 6)):
        proc = cli(["-m", f"sweep={axis}", *TINY], tmp_path / axis)
        assert proc.returncode == 0, proc.stderr
        runs = collect([tmp_path / axis])
        assert len(runs) == count and runs["status"].eq("ok").all()
    assert sorted(collect([tmp_path / "r_l"])["n_labels"]) == [10, 20, 30]


def test_quick_scale_and_experiment_grids():
    cfg = cfg_of(["+experiment=fig3", "scale=quick", "data=fmnist"], hydra_node=True)
    params = cfg.hydra.sweeper.params
    assert cfg.train.epochs == 3 and cfg.n_labels == 20
    assert params.normal_class == "0,1" and params.r_p == "0.1,0.2,0.3,0.4,0.5"
    # Fig. 3 runs every method preset but Fig. 7's Deep SAD trained with ELITE's loss (Eq. 4), made for Fig. 7 only
    presets = {p.stem for p in (CONF_DIR / "method").glob("*.yaml")}
    assert set(params.method.split(",")) == presets - {"deepsad_every_batch_hinge"}
    fig7 = cfg_of(["+experiment=fig7", "scale=quick"], hydra_node=True)
    assert fig7.curves_every > 0 and fig7.hydra.sweeper.params.normal_class == "0"  # the preset beats the scale
    assert "deepsad_every_batch_hinge" in fig7.hydra.sweeper.params.method.split(",")
    assert cfg_of([]).train.epochs == 30  # a plain run is not scaled


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml")))
def test_method_preset_names_its_records(preset):
    baseline = (CONF_DIR / "method" / f"{preset}.yaml").read_text().split("override /baseline: ")[1].split()[0]
    if not (CONF_DIR / "baseline" / f"{baseline}.yaml").exists():
        pytest.skip(f"baseline {baseline!r} has no config in conf/baseline")
    assert method_name(cfg_of([f"method={preset}"])) == preset


def test_rerun_skips_finished_and_force_reruns(tmp_path):
    cfg = cfg_of(TINY)
    run_dir = tmp_path / "run"
    first = execute(cfg, run_dir, multirun=True)
    assert first["status"] == "ok" and is_finished(run_dir)
    stamp = (run_dir / "result.json").stat().st_mtime_ns
    assert execute(cfg, run_dir, multirun=True) is None
    assert (run_dir / "result.json").stat().st_mtime_ns == stamp
    again = execute(cfg_of([*TINY, "force=true"]), run_dir, multirun=True)
    assert again["status"] == "ok" and (run_dir / "result.json").stat().st_mtime_ns != stamp
    assert again["test_auc"] == pytest.approx(first["test_auc"])  # same seed, same result


def test_jobs_that_are_one_run_run_once(tmp_path):
    # Deep SAD does not read elite.meta_grad: its two jobs are one run, in one folder, trained once
    proc = cli(["-m", *TINY, "method=elite_svdd,deepsad", "elite.meta_grad=forward_ad,finite_diff"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "sweep: 3 run(s): 3 finished" in proc.stdout + proc.stderr
    assert " method=deepsad elite.meta_grad=finite_diff out_dir=" in proc.stdout
    assert "is job #2's run (they differ only in elite.meta_grad, which does not change its result): left out" \
        in proc.stdout
    assert sorted(p.parent.parent.parent.name for p in tmp_path.rglob("result.json")) == \
        ["deepsad", "elite_svdd", "elite_svdd+elite.meta_grad=finite_diff"]



def test_jobs_of_other_settings_in_one_folder_of_the_users_stop_the_sweep(tmp_path):
    """A hydra.sweep.subdir that does not name what the jobs differ in would give two runs one folder: the sweep
    stops before any job (it left the second out as the first's run, and said they were one)."""
    proc = cli(["-m", *TINY, "r_p=0.1,0.3", "hydra.sweep.subdir=seed${seed}"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        f"error: jobs #0 and #1 of 2 would write one run folder, {tmp_path / 'seed0'}, with other "
        "settings (they differ in r_p); give hydra.sweep.subdir a form that tells them apart (e.g. "
        "${hydra.job.num}), or leave it at its default; no job was started"], proc.stderr
    assert not list(tmp_path.rglob("result.json"))

def test_the_left_out_line_names_what_two_jobs_differ_in():
    from elite_exp.sweeps import _differing

    assert _differing(["seed=0", "method=deepsad", "eta_m=1"], ["seed=0", "method=deepsad", "eta_m=0.3"]) == ["eta_m"]
    assert _differing(["+a.b=1", "~c", "d=2"], ["+a.b=2", "~c", "d=2"]) == ["a.b"]
    assert _differing(["x=1"], ["x=1", "+y=2"]) == ["y"]  # a key in one list only
    assert _differing(["~c=1"], ["~c"]) == ["c"]
    assert _differing(["seed=0"], ["seed=0"]) == []


def test_a_baseline_swept_over_eta_m_runs_once(tmp_path):
    # eta_M weighs ELITE's loss (Eq. 4): a baseline's runs at two values are one run, recorded at the default
    proc = cli(["-m", *TINY, "method=elite_svdd,deepsad", "eta_m=1,0.3"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "sweep: 3 run(s): 3 finished" in proc.stdout + proc.stderr
    assert "is job #2's run (they differ only in eta_m, which does not change its result): left out" in proc.stdout
    assert "is not read" not in proc.stdout + proc.stderr  # Deep SAD's job at eta_m=1 asks for its default
    found = {(rec["method"], rec["eta_m"]) for rec in (read_record(p.parent) for p in tmp_path.rglob("result.json"))}
    assert found == {("elite_svdd", 1.0), ("elite_svdd", 0.3), ("deepsad", 1.0)}
    assert sorted(p.parent.name.split("_seed")[0] for p in tmp_path.rglob("deepsad/*/*/result.json")) == \
        ["rp0.1_nl10_eta1.0"]
    again = cli([*TINY, "method=deepsad", "eta_m=0.3"], tmp_path)  # its run at 1, finished: skipped, and why
    assert again.returncode == 0, again.stderr
    out = again.stdout + again.stderr
    assert "eta_m is not read by deepsad: it changes nothing in this run" in out
    assert "skipping " in out and "_eta1.0_seed0_" in out


def test_diverged_run_is_recorded_and_rerun(tmp_path):
    run_dir = tmp_path / "run"
    rec = execute(cfg_of([*TINY, "train.lr=1e30"]), run_dir, multirun=True)
    assert rec["status"] == "failed" and rec["error"] == "TrainingDiverged" and "nan" in rec["reason"]
    assert read_record(run_dir)["status"] == "failed" and not is_finished(run_dir)  # a rerun tries again


def test_sweep_records_failures_goes_on_resumes_and_says_so(tmp_path):
    args = ["-m", "method=elite_svdd", "normal_class=0", "train.lr=1e30,1e-4", *TINY]  # 1e30 diverges in training
    first = cli(args, tmp_path)
    runs = collect([tmp_path])
    assert sorted(runs["status"]) == ["failed", "ok"]  # the job after the failure ran
    bad = runs[runs["status"] == "failed"].iloc[0]
    assert bad["error"] == "TrainingDiverged"
    assert first.returncode == 1 and first.stderr.count("\n") == 1, first.stderr[-2000:]
    assert first.stderr.startswith(f"error: 1 of 2 run(s) failed or were not run: {bad['run_dir']}: "
                                   "TrainingDiverged: ")
    assert first.stdout.endswith("sweep: 2 run(s): 1 finished, 0 skipped (finished before), 1 failed or not run\n")
    stamps = {d: (Path(d) / "result.json").stat().st_mtime_ns for d in runs["run_dir"]}
    second = cli(args, tmp_path)
    assert second.returncode == 1 and (second.stdout + second.stderr).count("skipping") == 1
    changed = {d for d in stamps if (Path(d) / "result.json").stat().st_mtime_ns != stamps[d]}
    assert changed == {bad["run_dir"]}  # only the failed run was tried again


def test_a_bad_job_stops_the_sweep_before_any_job_starts(tmp_path):
    done = cli(["-m", "normal_class=0,12", "r_p=0.1,0.3", *TINY], tmp_path)
    assert done.returncode == 2 and done.stderr == (
        "error: normal_class=12 is not a class of digits; allowed: 0..9 (job #2 of 4: normal_class=12 r_p=0.1 "
        f"data=digits train.epochs=1 progress=False device=cpu out_dir={tmp_path}); no job was started\n"), done.stderr
    assert not tmp_path.exists() or not any(tmp_path.rglob("*.json"))


def test_every_job_is_checked_before_the_first_batch_and_devices_by_name(tmp_path):
    done = cli(["-m", "normal_class=0,12", "hydra.sweeper.max_batch_size=1", *TINY], tmp_path)
    assert done.returncode == 2 and "(job #1 of 2: normal_class=12" in done.stderr
    assert not any(tmp_path.iterdir())  # not even multirun.yaml
    from elite_exp.errors import ConfigError
    from elite_exp.runner import check_config
    assert check_config(cfg_of([*TINY, "device=cuda:3"]), on_this_machine=False)[0] == "cuda:3"  # a GPU node's
    with pytest.raises(ConfigError, match="device='tpu' is not allowed"):
        check_config(cfg_of([*TINY, "device=tpu"]), on_this_machine=False)


def test_settings_may_use_the_job_number_as_the_launcher_sets_it(tmp_path):
    done = cli(["-m", "seed=${hydra:job.num}", "r_p=0.1,0.3", *TINY], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(zip(collect([tmp_path])["r_p"], collect([tmp_path])["seed"])) == [(0.1, 0), (0.3, 1)]


def test_the_runner_sweeper_is_a_discovered_hydra_plugin():
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    assert "EliteExpSweeper" in [p.__name__ for p in Plugins.instance().discover(Sweeper)]


def test_killed_run_leaves_no_record(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "elite_exp", "data=digits", "train.epochs=100000", "progress=false",
                             "device=cpu", f"out_dir={tmp_path}"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.rglob(".hydra")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)  # well into training
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    (run_dir,) = [p.parent for p in tmp_path.rglob(".hydra")]
    assert not (run_dir / "result.json").exists() and not list(run_dir.glob(".*.tmp"))
    assert not is_finished(run_dir)  # so a rerun runs it


def test_interrupted_write_keeps_the_old_record(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    atomic_write_text(path, '{"status": "ok"}\n')

    def crash(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, '{"status": "half')
    assert path.read_text() == '{"status": "ok"}\n' and list(tmp_path.iterdir()) == [path]


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    args = ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "method=elite_svdd,elite_ae", *TINY]
    done = cli(args, tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = collect([tmp_path])
    assert sorted(runs["method"]) == ["elite_ae", "elite_svdd"] and runs["status"].eq("ok").all()
    assert list(tmp_path.glob(".submitit/*/*_log.out"))  # the jobs went through submitit


def test_the_main_job_runs_every_method_offline_and_reports_fig3(tmp_path):
    """``make run``'s commands: the demo multirun on digits, then its table and Fig. 3."""
    out = tmp_path / "demo"
    proc = cli(["-m", "+experiment=demo", "train.epochs=5"], out)
    assert proc.returncode == 0, proc.stderr
    runs = collect([out])
    assert len(runs) == 42 and runs["status"].eq("ok").all()
    assert set(runs["method"]) == {"elite_svdd", "elite_ae", "labels_svdd", "labels_ae", "deepsvdd", "deepsad",
                                   "deepsad_every_batch", "ssad", "ssad_hybrid", "rsrae", "ae", "loe_hard_svdd",
                                   "loe_soft_svdd", "soel_svdd"}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    for module in ("elite_exp.report", "elite_exp.figures"):
        done = subprocess.run([sys.executable, "-m", module, str(out), "--out", str(out / "report"), "--only", "fig3"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    table = (out / "report" / "fig3.md").read_text()
    assert "| digits | elite_svdd" in table and "r_p=0.5" in table
    assert (out / "report" / "fig3.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF_DIR / "experiment").glob("fig*.yaml")))
def test_every_figure_preset_runs_at_tiny_scale(tmp_path, preset):
    """Each figure's sweep, as the preset composes it, on digits at one epoch (the data set and the
    classes replaced on the command line): every run finishes and the report draws the figure."""
    extra = ["curves_every=1"] if preset == "fig7" else []  # one epoch of digits is 3 iterations
    proc = cli(["-m", f"+experiment={preset}", "scale=quick", "data=digits", "normal_class=0", *TINY, *extra], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = collect([tmp_path])
    assert len(runs) > 1 and runs["status"].eq("ok").all(), runs[["method", "status", "reason"]]
    if preset == "fig7":  # its figure reads FMNIST / MNIST runs; here: the curves every run must leave
        assert all((Path(d) / "curves.csv").exists() for d in runs["run_dir"])
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-m", "elite_exp.figures", str(tmp_path), "--out", str(tmp_path / "r"),
                           "--only", preset], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and (tmp_path / "r" / f"{preset}.png").exists(), done.stderr[-2000:]


def test_an_estimator_check_in_a_sweep_names_the_config_key_before_any_job_starts(tmp_path):
    done = cli(["-m", "train.batch_size=32,1", *TINY], tmp_path)
    assert done.returncode == 2 and done.stderr.startswith(
        "error: train.batch_size=1 is not allowed; it must be >= 2 (BatchNorm needs 2) (job #1 of 2:"), done.stderr
    rot = cli(["-m", "model=rot", "data=digits,breast_cancer", *TINY[1:]], tmp_path)
    assert rot.returncode == 2 and rot.stderr.startswith(
        "error: model=rot does not combine with data=digits: the rotation score needs square images"), rot.stderr
    assert not tmp_path.exists() or not any(tmp_path.rglob("*.json"))


def _check_jobs(jobs, master_overrides):
    """``sweeps.check_jobs`` as the runner's sweeper calls it, on ``jobs`` (override lists)."""
    from elite_exp.runner import _register_resolvers
    from elite_exp.sweeps import check_jobs

    register()
    _register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        master = compose("config", overrides=master_overrides, return_hydra_config=True)
        return check_jobs(GlobalHydra.instance().config_loader(), master, jobs)


@pytest.fixture(params=["one core", "two cores"])
def check_cores(request, monkeypatch):
    """The sweep check on one core, or (two cores) every job composed in worker processes: returns the jobs the
    sweep's own process composed."""
    import elite_exp.sweeps as sweeps

    composed = []
    check_job = sweeps.check_job

    def counted(config_loader, master_config, num, overrides, *args):
        composed.append(num)
        return check_job(config_loader, master_config, num, overrides, *args)

    monkeypatch.setattr(sweeps, "check_job", counted)  # in this process only: workers import their own
    if request.param == "two cores":
        monkeypatch.setattr(sweeps, "JOBS_PER_CHECKER", 1)
        monkeypatch.setattr("joblib.cpu_count", lambda *a, **k: 2)
    return request.param, composed


def test_the_check_numbers_jobs_as_the_launcher_and_gives_it_their_packs(check_cores):
    cores, composed = check_cores
    base = [*TINY, "hydra/launcher=packed", "device=cuda:${hydra:job.num}"]
    # Deep SAD does not read elite.meta_grad: job 1 repeats job 0's run and is not launched, so the launcher
    # numbers the two ELITE jobs 1 and 2 (their device, cuda:1 and cuda:2, says which number each was checked with)
    jobs = [[f"method={m}", f"elite.meta_grad={g}", *base] for m in ("deepsad", "elite_svdd")
            for g in ("forward_ad", "finite_diff")]
    repeats, grouping = _check_jobs(jobs, base)
    assert repeats == {1} and sorted(grouping) == [0, 1, 2]
    for num, index in [(0, 0), (1, 2), (2, 3)]:
        overrides, (key, on_gpu, auto) = grouping[num]
        assert overrides == tuple(jobs[index]) and not auto
        assert f'"cuda:{num}"' in key and ("DeepSAD" if num == 0 else "EliteDetector") in key
    assert grouping[1][1][0] != grouping[2][1][0]  # the meta-gradient is a pack setting
    # in order, each job once; or elsewhere, and again here the jobs whose number changed (their device names it)
    assert composed == ([0, 1, 1, 2] if cores == "one core" else [1, 2])
    composed.clear()
    repeats, grouping = _check_jobs([job[:-1] for job in jobs], base[:-1])  # settings that do not name the number
    assert repeats == {1} and [grouping[num][0] for num in (0, 1, 2)] == [tuple(jobs[i][:-1]) for i in (0, 2, 3)]
    assert composed == ([0, 1, 1, 2] if cores == "one core" else [])

    # runs that differ in class and seed share a pack, whichever process checked them
    packed = [*TINY, "hydra/launcher=packed"]
    same = [[f"normal_class={c}", f"seed={seed}", *packed] for c in (0, 1) for seed in (0, 1)]
    assert len({key for _, (key, _, _) in _check_jobs(same, packed)[1].values()}) == 1


def test_the_check_stops_at_the_first_bad_job_in_order(check_cores, capsys):
    jobs = [[f"normal_class={c}", *TINY] for c in (0, 12, 1, 13)]
    with pytest.raises(SystemExit) as stop:
        _check_jobs(jobs, TINY)
    assert stop.value.code == 2
    assert capsys.readouterr().err == ("error: normal_class=12 is not a class of digits; allowed: 0..9 (job #1 of 4: "
                                       "normal_class=12 data=digits train.epochs=1 progress=false device=cpu); "
                                       "no job was started\n")


def test_a_shuffled_sweep_runs_each_run_once(tmp_path):
    # the check and the launch see one draw of the shuffled values, so the jobs left out as repeats are the
    # right ones (with two draws, ELITE's block would fall where another method's repeats were in 3 of 4 draws)
    proc = cli(["-m", *TINY, "method=shuffle(elite_svdd,deepsad,deepsvdd,labels_svdd)",
                "elite.meta_grad=forward_ad,finite_diff"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sweep: 5 run(s): 5 finished" in proc.stdout
    assert len(list(tmp_path.rglob("result.json"))) == 5


def test_only_a_refused_submission_stops_the_sweep_quietly(tmp_path, capsys):
    """sbatch's refusal: one line, exit 2, and only the files of that submission removed; a job that failed on the
    cluster (the same submitit error, not from sbatch) is left to be raised with its traceback."""
    utils = pytest.importorskip("submitit.core.utils")
    from elite_exp.sweeps import stop_if_submission_refused

    folder = tmp_path / ".submitit"
    folder.mkdir()
    kept = [folder / "notes.txt", folder / "old.pkl"]
    for path in kept:
        path.write_text("x")
    before = set(folder.iterdir())
    refused = utils.FailedJobError("sbatch: error: x\nsbatch: fatal: no cluster")
    refused.__cause__ = subprocess.CalledProcessError(1, ["sbatch", "job.sh"])
    failed_job = utils.FailedJobError("job 12_0 failed: see its log")
    stop_if_submission_refused(failed_job, 0, folder, before)  # returns: the caller raises it
    (folder / "a1b2.pkl").write_text("x")
    (folder / ".submission_file_a1b2.sh").write_text("x")
    with pytest.raises(SystemExit) as stop:
        stop_if_submission_refused(refused, 0, folder, before)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sbatch refused the submission (sbatch: fatal: no cluster); no job was submitted")
    assert err.count("\n") == 1 and sorted(folder.iterdir()) == sorted(kept)
    with pytest.raises(SystemExit):
        stop_if_submission_refused(refused, 4, folder, before)
    assert "the 4 job(s) of the batches before it were submitted" in capsys.readouterr().err
