"""LOE (hard / soft) and SOEL's objective: losses, latent labels, learning on digits, runner records."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from sklearn.metrics import roc_auc_score

from elite_exp import LOE, SOEL, DeepDetector, LabelsOnly
from elite_exp.config import CONF_DIR, register
from elite_exp.data import load_dataset, make_split
from elite_exp.errors import ConfigError
from elite_exp.methods.loe import latent_anomalies
from elite_exp.methods.losses import loe_losses
from elite_exp.methods.registry import build_method, method_name
from elite_exp.runner import _register_resolvers, execute

NET = dict(kind="mlp", hidden=[64, 32], rep_dim=16)
FAST = dict(network=NET, batch_size=32, lr=1e-3, device="cpu", epochs=15)
R_P = 0.3


@pytest.fixture(scope="module")
def task():
    """Digits, normal class 0, r_p 0.3: (X, y, which unlabeled samples are anomalies, test x, test anomaly)."""
    ds = load_dataset("digits")
    split = make_split(ds.y_train, 0, R_P, 100, 10, 0, ds.name)
    X = torch.cat([ds.x_train[split.unlabeled], ds.x_train[split.labeled]])
    y = np.concatenate([np.full(len(split.unlabeled), -1), split.labeled_anomaly])
    return X, y, split.unlabeled_anomaly.astype(bool), ds.x_test, (ds.y_test != 0).astype(int)


def compose_cfg(*overrides):
    register()
    _register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["data=digits", "progress=false", "device=cpu", *overrides])


def test_latent_labels_take_the_largest_loss_gap_and_round_half_up():
    l_n = torch.tensor([1.0, 5.0, 2.0, 4.0, 3.0, 0.5, 6.0, 0.1])
    l_a = 1.0 / l_n
    assert latent_anomalies(l_n, l_a, 0.25).tolist() == [False, True, False, False, False, False, True, False]
    assert latent_anomalies(l_n, l_a, 0.3125).sum() == 3  # 0.3125 * 8 = 2.5 -> 3
    assert latent_anomalies(l_n, l_a, 0.0).sum() == 0


def test_hard_and_soft_losses():
    l_n, l_a = torch.tensor([2.0, 2.0]), torch.tensor([0.5, 0.5])
    flags = torch.tensor([False, True])
    assert loe_losses(l_n, l_a, flags, "hard").tolist() == [2.0, 0.5]
    assert loe_losses(l_n, l_a, flags, "soft").tolist() == [2.0, 1.25]


@pytest.mark.parametrize("make", [
    lambda: LOE(mode="hard", alpha=R_P, **FAST),
    lambda: LOE(mode="soft", alpha=R_P, **FAST),
    lambda: SOEL(alpha=R_P, **FAST),
    lambda: LOE(mode="hard", alpha=R_P, score="ae", **FAST),
    lambda: LOE(mode="soft", alpha=R_P, score="ae", **FAST),
    lambda: SOEL(alpha=R_P, score="ae", **FAST),
], ids=["loe_hard_svdd", "loe_soft_svdd", "soel_svdd", "loe_hard_ae", "loe_soft_ae", "soel_ae"])
def test_learns_on_digits_and_its_latent_labels_find_the_hidden_anomalies(task, make):
    X, y, hidden, x_test, test_anomaly = task
    flagged, count = np.zeros(len(hidden)), np.zeros(len(hidden))

    def monitor(info):
        idx = info.index.numpy()
        known = idx < len(hidden)  # LOE also trains on the labeled samples (appended after the unlabeled ones)
        np.add.at(flagged, idx[known], info.extra["anomaly_hat"].numpy()[known])
        np.add.at(count, idx[known], 1)

    est = make().fit(X, y, monitor=monitor)
    auc = roc_auc_score(test_anomaly, est.decision_function(x_test))
    assert auc > 0.85, f"test AUC {auc:.3f}"
    rate = flagged / count
    assert rate[hidden].mean() > rate[~hidden].mean() + 0.3, (rate[hidden].mean(), rate[~hidden].mean())


def test_loe_never_sees_a_label_and_soel_trains_on_them(task):
    X, y, _, x_test, _ = task
    flipped = np.where(y >= 0, 1 - y, y)
    loe = [LOE(alpha=R_P, **{**FAST, "epochs": 2}).fit(X, labels).decision_function(x_test) for labels in (y, flipped)]
    np.testing.assert_array_equal(loe[0], loe[1])
    losses = []
    soel = SOEL(alpha=R_P, **{**FAST, "epochs": 2})
    scores = soel.fit(X, y, monitor=lambda info: losses.append(float(info.extra["val_loss"]))).decision_function(x_test)
    # one step per batch of 32 of the 100 unlabeled samples (ELITE's count), the labeled loss at each
    assert len(losses) == 2 * (100 // 32) and np.isfinite(losses).all()
    assert not np.allclose(scores, SOEL(alpha=R_P, **{**FAST, "epochs": 2}).fit(X, flipped).decision_function(x_test))


def test_save_and_load_round_trip(task, tmp_path):
    X, y, _, x_test, _ = task
    est = LOE(mode="soft", alpha=0.2, **{**FAST, "epochs": 2}).fit(X, y)
    est.save(tmp_path / "loe.pt")
    again = DeepDetector.load(tmp_path / "loe.pt")
    assert isinstance(again, LOE) and again.mode == "soft" and again.alpha == 0.2
    np.testing.assert_allclose(again.decision_function(x_test), est.decision_function(x_test), rtol=1e-6)


@pytest.mark.parametrize("make, message", [
    (lambda: LOE(alpha=0.6), "alpha=0.6 is not allowed; the assumed contamination ratio must lie in [0, 0.5]"),
    (lambda: SOEL(alpha=-0.1), "alpha=-0.1 is not allowed"),
    (lambda: LOE(alpha="0.1"), "alpha='0.1' is not allowed"),
    (lambda: LOE(mode="medium"), "mode='medium' is not allowed; allowed: hard, soft"),
    (lambda: SOEL(warmup_epochs=-1), "warmup_epochs=-1 is not allowed"),
    (lambda: LOE(warmup_epochs=5, epochs=5), "warmup_epochs=5 is not allowed with epochs=5: every epoch would be"),
    (lambda: LOE(score="pca"), "score='pca' is not allowed; allowed: svdd, ae, rot, neutral"),
])
def test_bad_values_are_config_errors(task, make, message):
    X, y, _, _, _ = task
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make().fit(X, y)


def test_baseline_files_name_the_method_with_mode_and_score():
    assert method_name(compose_cfg("baseline=loe")) == "loe_hard_svdd"
    assert method_name(compose_cfg("baseline=loe", "baseline.mode=soft", "model=ae")) == "loe_soft_ae"
    assert method_name(compose_cfg("baseline=soel")) == "soel_svdd"
    assert method_name(compose_cfg("baseline=soel", "model=ae")) == "soel_ae"
    # a configured alpha is another method than the oracle r_p: its records must not share a table cell
    assert method_name(compose_cfg("baseline=loe", "baseline.alpha=0")) == "loe_hard_svdd_alpha0"
    assert method_name(compose_cfg("baseline=soel", "model=rot", "baseline.alpha=0.2")) == "soel_rot_alpha0.2"
    with pytest.raises(Exception, match="baseline.mode"):  # SOEL has no mode: the typed schema rejects it
        compose_cfg("baseline=soel", "baseline.mode=hard")


def test_alpha_defaults_to_the_true_pollution_and_a_wrong_one_is_recorded(tmp_path):
    est = build_method(compose_cfg("baseline=loe", "r_p=0.2"), "cpu")
    assert est.alpha == 0.2
    record = execute(compose_cfg("baseline=soel", "r_p=0.3", "baseline.alpha=0.1", "train.epochs=2"), tmp_path / "run",
                     multirun=False)
    assert record["status"] == "ok"
    assert (record["alpha"], record["alpha_source"], record["r_p"]) == (0.1, "config", 0.3)
    # ELITE's LOE term assumes a contamination too, recorded the same way
    assert build_method(compose_cfg("elite.loe_weight=1", "r_p=0.3"), "cpu").alpha == 0.3
    record = execute(compose_cfg("elite.loe_weight=1", "r_p=0.3", "train.epochs=2"), tmp_path / "elite", multirun=False)
    assert (record["method"], record["alpha"], record["alpha_source"]) == ("elite_svdd_loeterm1", 0.3, "oracle")
    assert build_method(compose_cfg("elite.loe_weight=1", "r_p=0.3", "elite.alpha=0.1"), "cpu").alpha == 0.1
    record = execute(compose_cfg("elite.loe_weight=1", "r_p=0.3", "elite.alpha=0.1", "train.epochs=2"),
                     tmp_path / "elite_alpha", multirun=False)
    assert (record["method"], record["alpha"], record["alpha_source"]) == ("elite_svdd_loeterm1_alpha0.1", 0.1,
                                                                            "config")


def test_bad_alpha_stops_the_run_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        execute(compose_cfg("baseline=loe", "baseline.alpha=0.6"), tmp_path / "run", multirun=False)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: baseline.alpha=0.6 is not allowed; the assumed contamination ratio must lie in [0, 0.5]\n"
    assert not (tmp_path / "run").exists()


def test_a_bad_value_stops_a_single_run_whose_folder_holds_a_finished_record(tmp_path, capsys):
    """``elite.*`` is unread by SOEL (one folder), but a value ELITE does not allow is still an error."""
    assert execute(compose_cfg("baseline=soel", "train.epochs=2"), tmp_path / "run", multirun=False)["status"] == "ok"
    with pytest.raises(SystemExit) as exit_info:
        execute(compose_cfg("baseline=soel", "train.epochs=2", "elite.loe_weight=1", "elite.alpha=0.7"),
                tmp_path / "run", multirun=False)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: elite.alpha=0.7 is not allowed")
    assert (tmp_path / "run" / "result.json").exists()  # the finished record stays


def test_cli_runs_loe_both_modes_and_soel(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "elite_exp", "-m", "method=loe_hard_svdd,loe_soft_svdd,soel_svdd",
                           "data=digits", "r_p=0.3", "train.epochs=20", "train.lr=1e-3", "progress=false",
                           "device=cpu", f"out_dir={tmp_path}"], cwd=CONF_DIR.parent, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = {r["method"]: r for r in (json.loads(p.read_text()) for p in tmp_path.rglob("result.json"))}
    # the learning rate is not digits' default, so it names the records
    assert set(records) == {"loe_hard_svdd+train.lr=0.001", "loe_soft_svdd+train.lr=0.001", "soel_svdd+train.lr=0.001"}
    for name, r in records.items():
        assert r["status"] == "ok" and r["config"]["baseline"]["name"] == name.split("_")[0], name
        assert (r["alpha"], r["alpha_source"]) == (0.3, "oracle"), name
        assert r["test_auc"] > 0.85, (name, r["test_auc"])
        rates = r["label_inference"]
        assert rates["flagged_rate_anomalies"] > rates["flagged_rate_normals"] + 0.3, (name, rates)
        assert "meta_auc" not in rates  # no meta-gradients
    assert not list(tmp_path.rglob("meta_scores.csv"))


@pytest.mark.parametrize("make", [lambda: LOE(alpha=R_P, score="rot"), lambda: SOEL(alpha=R_P, score="rot"),
                                  lambda: LabelsOnly(score="rot", steps_per_epoch=3)], ids=["loe", "soel", "labels"])
def test_rotation_score_trains_saves_and_loads(task, tmp_path, make):
    """LOE, SOEL and labels-only on the rotation score (digits as 1x8x8 images); the head is saved too."""
    X, y, _, x_test, test_anomaly = task
    images, test_images = X.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    est = make().set_params(network=dict(kind="conv", channels=[8, 4], rep_dim=16), batch_size=32, lr=1e-3,
                            device="cpu", epochs=10).fit(images, y)
    scores = est.decision_function(test_images)
    assert roc_auc_score(test_anomaly, scores) > 0.7
    est.save(tmp_path / "rot.pt")
    np.testing.assert_allclose(DeepDetector.load(tmp_path / "rot.pt").decision_function(test_images), scores, rtol=1e-6)
