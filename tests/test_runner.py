"""The Hydra runner end to end: records, resume, and one-line errors for bad values."""

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from elite_exp.config import CONF_DIR, register
from elite_exp.runner import _register_resolvers, execute
from tests.conftest import REPO


def run_cli(*args, out_dir):
    flags = [a for a in args if a.startswith("-")]  # Hydra's flags (-m) before the overrides
    return subprocess.run([sys.executable, "-m", "elite_exp", *flags, f"out_dir={out_dir}", "progress=false",
                           *(a for a in args if a not in flags)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def records(out_dir):
    return [json.loads(p.read_text()) for p in sorted(out_dir.rglob("result.json"))]


def test_tiny_run_writes_a_complete_record_and_resumes(tmp_path):
    args = ["data=digits", "train.epochs=3", "normal_class=1", "r_p=0.2", "curves_every=2"]
    proc = run_cli(*args, out_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [rec] = records(tmp_path)
    assert rec["status"] == "ok"
    for key in ("test_auc", "train_auc", "train_seconds", "method", "data", "normal_class", "r_p", "n_labels",
                "eta_m", "seed", "config", "environment", "split_digest", "seconds", "finished_at"):
        assert key in rec, key
    assert datetime.fromisoformat(rec["finished_at"]).utcoffset() == timedelta(0)
    assert rec["method"] == "elite_svdd" and rec["data"] == "digits" and rec["normal_class"] == 1
    assert 0.0 <= rec["test_auc"] <= 1.0 and rec["n_test"] > 500
    assert rec["environment"]["device"] == "cpu"
    run_dir = next(tmp_path.rglob("result.json")).parent
    assert (run_dir / "curves.csv").exists() and (run_dir / "meta_scores.csv").exists()
    assert "test AUC" in proc.stderr + proc.stdout

    again = run_cli(*args, out_dir=tmp_path)
    assert again.returncode == 0 and "skipping" in again.stderr + again.stdout
    assert records(tmp_path)[0]["seconds"] == rec["seconds"]


def composed(tmp_path, *overrides):
    register()
    _register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["data=digits", f"out_dir={tmp_path}", "progress=false", *overrides])


@pytest.mark.parametrize("override, message", [
    ("r_p=1.5", "r_p=1.5 is not allowed"),
    ("n_labels=7", "n_labels=7 is not allowed"),
    ("n_labels=-2", "n_labels=-2 is not allowed"),
    ("normal_class=10", "normal_class=10 is not a class of digits"),
    ("n_train=5000", "n_train=5000 at r_p=0.1 asks for 4500 unlabeled normals of class 0"),
    ("n_train=0", "n_train=0 is not allowed; it must be >= 2"),
    ("train.weight_decay=-1", "train.weight_decay=-1.0 is not allowed; it must be >= 0"),
    ("meta_iterations=-1", "meta_iterations=-1 is not allowed; it must be >= 0"),
    ("data.network.rep_dim=0", "data.network.rep_dim=0 is not allowed; the embedding needs a whole number rep_dim"),
    ("data.network.hidden=[64,0]", "data.network.hidden=[64, 0] is not allowed; a network's hidden is a list of "
                                   "whole numbers >= 1"),
    ("n_labels=1000", "n_labels=1000 asks for 500 labeled normals of class 0"),
    ("method=loe_hard_svdd r_p=0.9", "r_p=0.9 is not allowed with baseline=loe unless baseline.alpha is given"),
    ("elite.loe_weight=1 r_p=0.9", "r_p=0.9 is not allowed with elite.loe_weight=1 unless elite.alpha is given"),
    ("method=soel_svdd elite.loe_weight=1 elite.alpha=0.7", "elite.alpha=0.7 is not allowed; the assumed"),
    ("elite.loe_weight=-1", "elite.loe_weight=-1.0 is not allowed; it must be >= 0"),
    ("elite.warmup_epochs=-2", "elite.warmup_epochs=-2 is not allowed; it must be an int >= 0"),
    ("method=loe_hard_svdd elite.warmup_epochs=-2", "elite.warmup_epochs=-2 is not allowed"),
    ("elite.alpha=0.2", "elite.alpha=0.2 acts only with an LOE term: give it a weight > 0 (elite.loe_weight in"),
    ("method=soel_svdd elite.alpha=0.2", "elite.alpha=0.2 acts only with an LOE term"),
    ("device=tpu", "device='tpu' is not allowed"),
    ("+elite.loe_wieght=4", "elite.loe_wieght is not a setting of this run (added with +elite.loe_wieght=...)"),
    ("method=elite_svdd +baseline.alpha=0.2", "baseline.alpha is not a setting of this run"),
    ("baseline.name=foo", "baseline='foo' is not allowed; allowed: none, "),
    ("method=loe_hard_svdd baseline.warmup_epochs=5 train.epochs=5",
     "baseline.warmup_epochs=5 is not allowed with train.epochs=5: every epoch would be warm-up"),
    ("data.name=svhn", "data.name='svhn' is not a data set loader; allowed: "),
    ("data.image_size=-5", "data.image_size=-5 is not allowed; it must be >= 1"),
    ("eta_m=0", "eta_m=0.0 is not allowed"),
    ("eta_m=inf", "eta_m=inf is not allowed; eta_M must be a finite number > 0"),
    ("elite.update=both", "elite.update='both' is not allowed"),
    ("elite.margin=-1", "elite.margin='-1' is not allowed"),
    ("model=svdd model.name=knn", "model.name='knn' is not allowed"),
    ("model=rot", "model=rot does not combine with data=digits: the rotation score needs square images"),
    ("train.epochs=0", "train.epochs=0 is not allowed; it must be >= 1"),
    ("train.batch_size=1", "train.batch_size=1 is not allowed; it must be >= 2"),
    ("train.lr=0", "train.lr=0.0 is not allowed; it must be > 0"),
    ("train.optimizer=lbfgs", "train.optimizer='lbfgs' is not allowed; allowed: "),
    ("method=rsrae baseline.intrinsic_dim=0", "baseline.intrinsic_dim=0 is not allowed; it must be >= 1"),
    ("method=ssad baseline.nu=2", "baseline.nu=2.0 is not allowed; it must lie in (0, 1]"),
    ("method=deepsad baseline.eta=0", "baseline.eta=0.0 is not allowed"),
    ("method=deepsvdd baseline.pretrain_epochs=-1", "baseline.pretrain_epochs=-1 is not allowed"),
    ("method=deepsad baseline.pretrain_epochs=0",
     "baseline.pretrain_epochs=0 is not allowed with baseline.pretrain=True; it must be >= 1"),
    ("method=deepsad baseline.loss=eq4", "baseline.loss='eq4' is not allowed; allowed: deepsad, hinge"),
    ("method=deepsad baseline.loss=''", "baseline.loss='' is not allowed; allowed: deepsad, hinge"),
    ("method=loe_hard_svdd baseline.warmup_epochs=-1", "baseline.warmup_epochs=-1 is not allowed"),
    ("method=loe_hard_svdd baseline.alpha=0.9", "baseline.alpha=0.9 is not allowed"),
    ("elite.meta_grad=exact", "elite.meta_grad='exact' is not allowed"),
    ("elite.labeled_weight=-1", "elite.labeled_weight=-1.0 is not allowed"),
    ("elite.labeled_loss=inverse", "elite.labeled_loss='inverse' acts only with a direct labeled term"),
    ("elite.labeled_loss=''", "elite.labeled_loss='' is not allowed; allowed: hinge, inverse"),
    ("method=deepsad elite.labeled_loss=foo", "elite.labeled_loss='foo' is not allowed; allowed: hinge, inverse"),
    ("method=ssad elite.meta_grad=exact", "elite.meta_grad='exact' is not allowed"),
    ("r_l=0.15", "r_l=0.15 is not allowed with n_train=100: it gives 15 labels"),
    ("r_l=1.5", "r_l=1.5 is not allowed; the label ratio n_labels / n_train must lie in (0, 1)"),
])
def test_bad_values_fail_with_one_line_and_exit_2(tmp_path, capsys, override, message):
    cfg = composed(tmp_path, *override.split())
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)  # as Hydra leaves it before the job starts
    with pytest.raises(SystemExit) as exc:
        execute(cfg, run_dir, multirun=False)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: " + message), err
    assert records(tmp_path) == [] and not run_dir.exists()


def test_a_rejected_run_leaves_no_empty_folders_under_out_dir(tmp_path):
    proc = run_cli("data=digits", "normal_class=healthy", out_dir=tmp_path / "out")
    assert proc.returncode == 2 and "normal_class='healthy' is not a class of this data set" in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("class*"))


def test_unknown_method_preset_is_rejected(tmp_path):
    proc = run_cli("data=digits", "method=nonsense", out_dir=tmp_path)
    assert proc.returncode == 1 and "Could not find 'method/nonsense'" in proc.stderr
    assert records(tmp_path) == []


def test_clean_training_set_records_null_train_auc(tmp_path):
    record = execute(composed(tmp_path, "r_p=0", "train.epochs=1"), tmp_path / "run", multirun=False)
    assert record["status"] == "ok" and record["train_auc"] is None
    assert json.loads((tmp_path / "run" / "result.json").read_text())["train_auc"] is None


def test_cli_error_has_no_traceback(tmp_path):
    proc = run_cli("data=digits", "r_p=2", out_dir=tmp_path)
    assert proc.returncode == 2
    assert "error: r_p=2.0 is not allowed; the pollution ratio must lie in [0, 1)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_says_what_the_program_does_and_lists_only_real_choices(tmp_path):
    proc = run_cli("--help", out_dir=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("elite-exp: ELITE (Zhang, Cao, VanNostrand, Madden, Rundensteiner, KDD 2021")
    assert "powered by Hydra" not in proc.stdout and "schema" not in proc.stdout
    baselines = next(line for line in proc.stdout.splitlines() if line.startswith("baseline: "))
    assert baselines == "baseline: " + ", ".join(sorted(p.stem for p in (CONF_DIR / "baseline").glob("*.yaml")))
    assert "python -m elite_exp -m +experiment=fig3" in proc.stdout


@pytest.mark.parametrize("data", ["mnist", "fmnist", "cifar10"])
def test_a_setting_added_later_moves_no_published_run(data):
    """Each method preset's run at class 0, r_p 0.1, seed 0 composes to the folder the published records
    hold for it (where they hold one): a key a later version adds at its off value (``baseline.loss``) moves no
    folder, so a sweep over a copy of the published records skips them instead of training them again."""
    from elite_exp.runner import run_path

    register()
    _register_resolvers()
    results = REPO / "docs" / "results"
    roots = [results / "paper" / "records", results / "beyond" / "report" / "records"]
    found = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for method in sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml")):
            path = Path(run_path(compose("config", overrides=[f"data={data}", f"method={method}", "normal_class=0",
                                                              "r_p=0.1", "seed=0"])))
            for root in roots:  # the published runs at these coordinates, whatever their settings hash
                published = list((root / path.parent).glob(path.name.rsplit("_", 1)[0] + "_*"))
                if published:
                    assert root / path in published, f"{path} is not where {published[0]} was published"
                    found.append(method)
    assert len(found) >= 5, found


def test_curves_every_beyond_the_runs_steps_says_no_curves_were_written(tmp_path, caplog):
    execute(composed(tmp_path, "train.epochs=1", "curves_every=1000"), tmp_path / "run", multirun=False)
    assert not (tmp_path / "run" / "curves.csv").exists() and (tmp_path / "run" / "result.json").exists()
    assert "curves_every=1000: no curves.csv written" in caplog.text


def test_label_ratio_and_label_count_name_the_same_run(tmp_path):
    from elite_exp.runner import config_hash, run_path

    by_ratio, by_count = composed(tmp_path, "r_l=0.2"), composed(tmp_path, "n_labels=20")
    assert run_path(by_ratio) == run_path(by_count) and "_nl20_" in run_path(by_ratio)
    assert config_hash(by_ratio) != config_hash(composed(tmp_path, "n_labels=30"))
    record = execute(composed(tmp_path, "r_l=0.2", "train.epochs=1"), tmp_path / "run", multirun=False)
    assert record["n_labels"] == 20 and record["r_l"] == 0.2
    # the same run said the other way is found done in that folder, not a conflict
    assert execute(composed(tmp_path, "n_labels=20", "train.epochs=1"), tmp_path / "run", multirun=False) is None
    assert 0 < record["test_aupr"] <= 1 and 0 < record["train_aupr"] <= 1


def test_folders_of_finished_runs_never_move():
    # the folders of runs made before (thousands of published records resume by them), pinned
    from elite_exp.runner import run_path

    assert run_path(composed("out")) == "digits/elite_svdd/class0/rp0.1_nl10_eta1.0_seed0_55c5581d"
    assert run_path(composed("out", "elite.margin=1")) == \
        "digits/elite_svdd+elite.margin=1/class0/rp0.1_nl10_eta1.0_seed0_c8217c41"
    assert run_path(composed("out", "elite.margin=0.5")) == \
        "digits/elite_svdd+elite.margin=0.5/class0/rp0.1_nl10_eta1.0_seed0_440f4cff"


def test_a_setting_the_method_does_not_read_names_no_other_run():
    # a sweep over method=elite_svdd,deepsad elite.meta_grad=finite_diff finds Deep SAD's runs done
    from elite_exp.runner import run_path

    pinned = {("method=deepsad",): "digits/deepsad/class0/rp0.1_nl10_eta1.0_seed0_7bb36071",
              ("method=ssad",): "digits/ssad/class0/rp0.1_nl10_eta1.0_seed0_56a7d260",
              ("method=loe_hard_svdd",): "digits/loe_hard_svdd/class0/rp0.1_nl10_eta1.0_seed0_d2463822",
              ("method=labels_svdd",): "digits/labels_svdd/class0/rp0.1_nl10_eta1.0_seed0_af4f6821",
              ("method=deepsvdd", "baseline.pretrain=false"):
                  "digits/deepsvdd+baseline.pretrain=false/class0/rp0.1_nl10_eta1.0_seed0_ba28c26a"}
    unread = {("method=deepsad",): ("elite.meta_grad=finite_diff", "elite.pretrain=true", "model.squared=true",
                                    "eta_m=0.3"),
              ("method=ssad",): ("train.lr=0.01", "data.network.rep_dim=8", "elite.update=paper", "eta_m=0.3"),
              ("method=loe_hard_svdd",): ("model.squared=true", "elite.labeled_weight=1", "eta_m=0.3"),
              ("method=labels_svdd",): ("elite.update=paper", "elite.meta_grad=finite_diff", "eta_m=0.3"),
              ("method=deepsvdd", "baseline.pretrain=false"): ("baseline.pretrain_epochs=3",)}
    for method, path in pinned.items():
        assert run_path(composed("out", *method)) == path  # folders of finished runs never move
        for setting in unread[method]:
            assert run_path(composed("out", *method, setting)) == path, setting
    # a network reads the fields its kind builds: an MLP has no channels, a conv network no hidden sizes
    assert run_path(composed("out", "data.network.channels=[16]")) == run_path(composed("out"))
    assert run_path(composed("out", "data.network.hidden=[16]")) != run_path(composed("out"))
    mnist = ("data=mnist", "normal_class=3")
    assert run_path(composed("out", *mnist, "data.network.hidden=[16]")) == run_path(composed("out", *mnist))
    assert run_path(composed("out", *mnist, "data.network.channels=[16]")) != run_path(composed("out", *mnist))
    # ELITE's pre-training acts on the svdd score only
    assert run_path(composed("out", "model=ae", "elite.pretrain=true")) == run_path(composed("out", "model=ae"))
    assert run_path(composed("out", "elite.pretrain=true")) != run_path(composed("out"))
    # eta_M is ELITE's alone (Eq. 4's weight): another value is another run of ELITE, of no baseline
    assert run_path(composed("out", "eta_m=0.3")) == "digits/elite_svdd/class0/rp0.1_nl10_eta0.3_seed0_11e57373"
    # what the method reads is another run
    for method, setting in ((("method=deepsad",), "baseline.eta=2"), (("method=ssad",), "baseline.nu=0.5"),
                            (("method=labels_svdd",), "elite.margin=2"), (("method=loe_hard_svdd",), "train.lr=0.01"),
                            (("method=ssad", "baseline.hybrid=true"), "train.lr=0.01")):
        assert run_path(composed("out", *method, setting)) != run_path(composed("out", *method)), setting


@pytest.mark.parametrize("args, key, method", [(("model=ae", "elite.pretrain=true"), "elite.pretrain", "elite_ae"),
                                               (("data.network.batch_norm=false", "elite.joint_batch=true"),
                                                "elite.joint_batch", "elite_svdd+data.network.batch_norm=false"),
                                               (("method=deepsad", "eta_m=0.3"), "eta_m", "deepsad"),
                                               (("data.network.channels=[16]",), "data.network.channels",
                                                "elite_svdd")])
def test_an_option_that_does_not_act_is_said_once(tmp_path, args, key, method):
    proc = run_cli("data=digits", "train.epochs=1", "plots=false", *args, out_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stderr + proc.stdout
    assert out.count(f"{key} is not read by {method}: it changes nothing in this run") == 1
    for estimator_says in ("acts on the svdd score only", "acts on a network with BatchNorm only"):
        assert estimator_says not in out  # not said again by the estimator
    [rec] = records(tmp_path)
    assert rec["method"] == method
    assert rec["eta_m"] == 1.0 and "_eta1.0_" in rec["run_dir"]  # eta_m=0.3 for deepsad: as Deep SAD reads it


def test_elite_options_reach_the_estimator_where_they_act():
    from elite_exp.methods.registry import build_method

    def built(*overrides):
        est = build_method(composed("out", *overrides), "cpu")
        return est.pretrain, est.joint_batch

    assert built("elite.pretrain=true", "elite.joint_batch=true") == (True, True)
    assert built("model=ae", "elite.pretrain=true", "elite.joint_batch=true") == (False, True)
    assert built("data.network.batch_norm=false", "elite.pretrain=true", "elite.joint_batch=true") == (True, False)


def test_a_setting_the_method_reads_keeps_its_value_through_one_it_does_not():
    from omegaconf import OmegaConf

    from elite_exp.runner import config_differences, result_settings, run_path

    # plain SSAD reads baseline.n_landmarks, not train.*: its value, through the interpolation, names the run
    ssad = ("method=ssad", "baseline.n_landmarks=${train.batch_size}")
    assert run_path(composed("out", *ssad, "train.batch_size=32")) != run_path(composed("out", *ssad,
                                                                                         "train.batch_size=64"))
    # the training length is a column of every record and table: another length is another run
    assert run_path(composed("out", "method=ssad", "train.epochs=3")) != run_path(composed("out", "method=ssad"))
    # the caller's config is left as it was
    config = OmegaConf.to_container(composed("out", "method=deepsad", "elite.meta_grad=finite_diff"), resolve=True)
    result_settings(config)
    assert config["elite"]["meta_grad"] == "finite_diff"
    # the record of an old version that does not name its model: compared as it is, no made-up difference
    old = OmegaConf.to_container(composed("out", "elite.meta_grad=finite_diff"), resolve=True)
    del old["model"]
    assert config_differences(old, composed("out", "elite.meta_grad=finite_diff")) == []
    assert config_differences(old, composed("out")) == ["elite.meta_grad: finite_diff -> forward_ad"]


def test_where_the_data_is_found_names_no_other_run():
    from elite_exp.runner import run_path

    paths = {run_path(composed("out", *o)) for o in ((), ("data.download=false",), ("data.root=/copy",),
                                                     ("data.root=/copy", "data.download=false"))}
    assert paths == {"digits/elite_svdd/class0/rp0.1_nl10_eta1.0_seed0_55c5581d"}
    assert run_path(composed("out", "data.image_size=16")) not in paths  # which data it is: another run


def test_a_numeric_margin_spelled_two_ways_is_one_run():
    from elite_exp.runner import run_path

    paths = {run_path(composed("out", f"elite.margin={m}")) for m in ("1", "1.0", "1e0")}
    assert len(paths) == 1 and "/elite_svdd+elite.margin=1/" in paths.pop()
    assert run_path(composed("out", "elite.margin=2")) != run_path(composed("out", "elite.margin=1"))
    assert "/elite_svdd+elite.margin=auto_max/" in run_path(composed("out", "elite.margin=auto_max"))


def test_label_ratio_and_label_count_given_together_is_an_error(tmp_path):
    proc = run_cli("data=digits", "r_l=0.2", "n_labels=10", out_dir=tmp_path / "out")
    assert proc.returncode == 2 and proc.stderr == (
        "error: r_l=0.2 and n_labels=10 are both given; give one: r_l is n_labels / n_train "
        "(r_l=0.2 of n_train=100 is 20 labels)\n"), proc.stderr



def test_a_run_that_diverges_says_so_in_one_line_and_records_it(tmp_path):
    # lr 1e30: one step leaves the network giving every sample one score (or NaN): failed, not AUC 0.5
    proc = run_cli("data=digits", "train.epochs=1", "train.lr=1e30", "train.batch_size=128", out_dir=tmp_path / "out")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    (rec,) = records(tmp_path / "out")
    assert rec["status"] == "failed" and rec["error"] == "TrainingDiverged" and "finished_at" in rec
    assert rec["normal_class_name"] == "0"  # the data was read before training failed: the record names the class


@pytest.mark.parametrize("args, message", [
    (["sweep=r_p"], "error: sweep=r_p is a sweep: run it with -m"),
    (["+experiment=demo"], "error: +experiment=demo is a sweep: run it with -m"),
    (["+experiment=fig3"], "error: +experiment=fig3 is a sweep: run it with -m"),  # not its sweep=r_p
    (["tracking.uri=sqlite:////tmp/x.db"], "error: tracking.uri=sqlite:////tmp/x.db is set but tracking is off: add "
                                           "+tracking=mlflow"),
    (["-m", "normal_class=0,1", "hydra/launcher=slurm"], "error: hydra/launcher=slurm needs a Slurm cluster"),
    (["-m", "normal_class=0,1", "hydra/launcher=parallel", "hydra.launcher.n_jobs=0"],
     "error: hydra.launcher.n_jobs=0 is not allowed"),
])
def test_choices_that_would_do_other_than_asked_stop_before_any_run(tmp_path, args, message):
    """A sweep preset without -m (it would run its first job only), tracking keys without +tracking=mlflow (it
    would log nothing) and the Slurm launcher where there is no Slurm stop with one line, exit 2, no record."""
    if "hydra/launcher=slurm" in args and shutil.which("sbatch"):
        pytest.skip("sbatch is on this machine's PATH")
    done = run_cli("data=digits", "train.epochs=1", *args, out_dir=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith(message), done.stderr[-1500:]
    assert done.stderr.count("\n") == 1 and not list(tmp_path.rglob("result.json"))


def test_a_slurm_submission_the_cluster_refuses_stops_with_one_line(tmp_path):
    """sbatch on the PATH but no cluster it reaches (SLURM_CONF unset, no controller): one error line with
    sbatch's message, exit 2, no record and no submission files left (it ended in a traceback)."""
    pytest.importorskip("submitit")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text("#!/bin/sh\necho 'sbatch: fatal: Could not establish a configuration source' >&2\nexit 1\n")
    sbatch.chmod(0o755)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "elite_exp", "-m", f"out_dir={out}", "data=digits", "train.epochs=1",
                           "normal_class=0,1", "hydra/launcher=slurm"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 2, done.stderr[-1500:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: sbatch refused the submission (sbatch: fatal: Could not establish a configuration "
                           "source); no job was submitted"), done.stderr[-1500:]
    assert "Traceback" not in done.stderr
    assert not list(out.rglob("result.json")) and not (out / ".submitit").exists()


@pytest.mark.parametrize("multirun", [False, True])
@pytest.mark.parametrize("tracking", [False, True])
def test_an_out_dir_that_cannot_be_a_folder_stops_with_one_line(tmp_path, multirun, tracking):
    """out_dir a file, below one, or a broken link: one line, exit 2, before Hydra makes a folder (it stopped with a
    traceback); with +tracking=mlflow too, whose store would be made in out_dir."""
    if tracking:
        pytest.importorskip("mlflow")
    a_file, link = tmp_path / "notes.txt", tmp_path / "gone"
    a_file.write_text("x")
    link.symlink_to(tmp_path / "nowhere")
    args = ["data=digits", "train.epochs=1", *(["-m", "r_p=0.1,0.2"] if multirun else []),
            *(["+tracking=mlflow"] if tracking else [])]
    for out_dir, message in ((a_file, f"error: out_dir={a_file} is a file; give a folder for the runs"),
                             (a_file / "runs", f"error: out_dir={a_file / 'runs'} cannot be made: {a_file} is a file"),
                             (link, f"error: out_dir={link} is a broken link (to nothing, or a loop)"),
                             (link / "runs", f"error: out_dir={link / 'runs'} cannot be made: {link} is a broken link "
                                             f"(to nothing, or a loop)"),
                             ("", "error: out_dir='' is not allowed; give a folder for the runs")):
        done = run_cli(*args, out_dir=out_dir)
        assert done.returncode == 2 and done.stderr == message + "\n", done.stderr[-1500:]
    assert a_file.read_text() == "x" and sorted(tmp_path.iterdir()) == [link, a_file]


def test_a_refused_single_run_leaves_no_out_dir_it_made(tmp_path):
    (tmp_path / "kept").mkdir()
    for out_dir in (tmp_path / "new" / "runs", tmp_path / "kept"):
        done = run_cli("data=digits", "r_p=1.5", out_dir=out_dir)
        assert done.returncode == 2 and done.stderr.startswith("error: r_p=1.5 is not allowed"), done.stderr[-1500:]
    assert sorted(tmp_path.iterdir()) == [tmp_path / "kept"] and not any((tmp_path / "kept").iterdir())


def test_the_out_dir_check_leaves_no_folder(tmp_path):
    from elite_exp.runner import check_out_dir

    check_out_dir(str(tmp_path / "a" / "b"))  # can be made: made and removed again (Hydra makes it)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a" / "b").mkdir(parents=True)
    check_out_dir(str(tmp_path / "a" / "b"))  # there already: fine, kept
    assert (tmp_path / "a" / "b").is_dir()


def test_a_forced_rerun_leaves_no_file_of_the_run_it_replaced(tmp_path):
    """force=true replaces the record and what its run wrote beside it (scores.png, meta_scores.csv), so a rerun
    with plots=false holds no picture of the old run."""
    args = ["data=digits", "train.epochs=1", "normal_class=2"]
    first = run_cli(*args, out_dir=tmp_path)
    assert first.returncode == 0, first.stderr[-1500:]
    run_dir = Path(records(tmp_path)[0]["run_dir"])
    assert (run_dir / "scores.png").exists() and (run_dir / "meta_scores.csv").exists()
    (run_dir / "curves.csv").write_text("iteration\n1\n")  # as a run with curves would have left it
    again = run_cli(*args, "force=true", "plots=false", out_dir=tmp_path)
    assert again.returncode == 0, again.stderr[-1500:]
    assert not (run_dir / "scores.png").exists() and not (run_dir / "curves.csv").exists()
    assert (run_dir / "meta_scores.csv").exists()  # written again by the new run
