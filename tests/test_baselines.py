"""The baselines: each learns on real data, all see the same split, unsupervised ones never see a label."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import osqp
import pytest
import scipy.sparse as sp
import torch
from hydra import compose, initialize_config_dir
from sklearn.metrics import roc_auc_score

from elite_exp import RSRAE, SSAD, AutoEncoder, DeepDetector, DeepSAD, DeepSVDD, EliteDetector, LabelsOnly
from elite_exp.config import CONF_DIR, register
from elite_exp.data import load_dataset, make_split
from elite_exp.errors import ConfigError
from elite_exp.methods.losses import deep_sad_loss
from elite_exp.methods.registry import build_method, method_name
from elite_exp.methods.ssad import median_gamma, rbf
from elite_exp.runner import _register_resolvers, execute

REPO = Path(__file__).resolve().parent.parent
NET = dict(kind="mlp", hidden=[64, 32], rep_dim=16)
FAST = dict(network=NET, batch_size=32, lr=1e-3, device="cpu")


@pytest.fixture(scope="module")
def digits_task():
    """Digits, normal class 0, r_p 0.1: (X, y, test x, test anomaly flags)."""
    ds = load_dataset("digits")
    split = make_split(ds.y_train, 0, 0.1, 100, 10, 0, ds.name)
    X = torch.cat([ds.x_train[split.unlabeled], ds.x_train[split.labeled]])
    y = np.concatenate([np.full(len(split.unlabeled), -1), split.labeled_anomaly])
    return X, y, ds.x_test, (ds.y_test != 0).astype(int)


def compose_cfg(*overrides):
    register()
    _register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["data=digits", "progress=false", "device=cpu", *overrides])


@pytest.mark.parametrize("make", [
    lambda: AutoEncoder(epochs=15, **FAST),
    lambda: DeepSVDD(epochs=15, pretrain_epochs=15, **FAST),
    lambda: DeepSAD(epochs=15, pretrain_epochs=15, **FAST),
    lambda: DeepSAD(epochs=15, pretrain_epochs=15, labeled_every_batch=True, **FAST),
    lambda: DeepSAD(epochs=15, pretrain_epochs=15, labeled_every_batch=True, loss="hinge", **FAST),
    lambda: RSRAE(epochs=15, **FAST),
    lambda: SSAD(**FAST),
    lambda: SSAD(hybrid=True, epochs=15, **FAST),
    lambda: LabelsOnly(epochs=15, steps_per_epoch=3, **FAST),
    lambda: LabelsOnly(score="ae", epochs=15, steps_per_epoch=3, **FAST),
], ids=["ae", "deepsvdd", "deepsad", "deepsad_every_batch", "deepsad_every_batch_hinge", "rsrae", "ssad",
        "ssad_hybrid", "labels_svdd", "labels_ae"])
def test_each_baseline_learns_on_digits(digits_task, make):
    X, y, x_test, test_anomaly = digits_task
    est = make().fit(X, y)
    auc = roc_auc_score(test_anomaly, est.decision_function(x_test))
    assert auc > 0.85, f"{type(est).__name__}: test AUC {auc:.3f}"


@pytest.mark.parametrize("klass", [AutoEncoder, DeepSVDD, RSRAE])
def test_unsupervised_baselines_never_see_a_label(digits_task, klass, monkeypatch):
    X, y, x_test, _ = digits_task
    seen = []
    train = klass._train

    def spy(self, runs):
        seen.extend((len(r.x_unl), len(r.x_lab), len(r.y_lab)) for r in runs)
        return train(self, runs)

    monkeypatch.setattr(klass, "_train", spy)
    scores = [klass(epochs=2, **FAST).fit(X, labels).decision_function(x_test)
              for labels in (y, None, np.where(y >= 0, 1 - y, y))]
    assert seen == [(len(X), 0, 0)] * 3  # every sample as unlabeled, no label reaches training
    np.testing.assert_array_equal(scores[0], scores[1])
    np.testing.assert_array_equal(scores[0], scores[2])


def test_labels_only_ignores_the_unlabeled_samples(digits_task):
    X, y, x_test, _ = digits_task
    a = LabelsOnly(epochs=2, steps_per_epoch=2, **FAST).fit(X, y).decision_function(x_test)
    lab = y >= 0
    b = LabelsOnly(epochs=2, steps_per_epoch=2, **FAST).fit(X[lab], y[lab]).decision_function(x_test)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_deep_sad_loss_terms():
    d = torch.tensor([4.0, 4.0, 4.0])
    t = torch.tensor([0.0, 1.0, -1.0])
    assert float(deep_sad_loss(d, t, eta=2.0)) == pytest.approx((4.0 + 2 * 4.0 + 2 / 4.0) / 3, rel=1e-5)


def test_deep_sad_with_labels_in_every_batch_reports_its_labeled_loss(digits_task):
    """Fig. 7b's Deep SAD curve: the loss of the labeled part of every batch, falling over training."""
    X, y, _, _ = digits_task
    losses = []
    DeepSAD(epochs=10, pretrain=False, labeled_every_batch=True, **FAST).fit(
        X, y, monitor=lambda info: losses.append(float(info.extra["val_loss"])))
    assert len(losses) == 30 and np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    # without labeled samples there is no labeled loss (it was the whole batch's loss)
    extras = []
    DeepSAD(epochs=1, pretrain=False, labeled_every_batch=True, **FAST).fit(
        X, np.full(len(X), -1), monitor=lambda info: extras.append(info.extra))
    assert extras and all("val_loss" not in e for e in extras)


def test_ssad_exact_kernel_matches_the_dense_dual_qp(digits_task):
    """The (alpha, w) formulation with the exact kernel gives the centre of the textbook dense dual."""
    X, y, x_test, _ = digits_task
    est = SSAD(n_landmarks=0, device="cpu").fit(X, y)
    x = X.double()
    gamma = median_gamma(x, torch.Generator().manual_seed(0))
    assert est.gamma_ == pytest.approx(gamma)
    K = rbf(x, x, gamma).numpy()
    yy = np.concatenate([np.ones((y < 0).sum()), 1.0 - 2.0 * y[y >= 0]])
    n, lab = len(yy), (y >= 0).astype(float)
    A = sp.vstack([sp.csc_matrix(yy[None]), sp.csc_matrix(lab[None]), sp.eye(n)], format="csc")
    solver = osqp.OSQP()
    upper = np.where(lab > 0, 1.0, 1 / (0.1 * (y < 0).sum()))  # C_labeled = 1, C_unlabeled = 1 / (nu n_unl)
    solver.setup(sp.csc_matrix(np.triu(2 * np.outer(yy, yy) * K)), -yy, A, np.r_[1.0, 1.0, np.zeros(n)],
                 np.r_[1.0, np.inf, upper], verbose=False, eps_abs=1e-8, eps_rel=1e-8, max_iter=50000)
    alpha = solver.solve().x
    k_test = rbf(x_test.double(), x, gamma).numpy()
    dense = 1 - 2 * k_test @ (alpha * yy) + (alpha * yy) @ K @ (alpha * yy)
    np.testing.assert_allclose(est.decision_function(x_test), dense, atol=1e-3)


def test_ssad_save_and_load_round_trip(digits_task, tmp_path):
    X, y, x_test, _ = digits_task
    est = SSAD(n_landmarks=40, device="cpu").fit(X, y)
    est.save(tmp_path / "ssad.pt")
    again = DeepDetector.load(tmp_path / "ssad.pt")
    np.testing.assert_allclose(again.decision_function(x_test), est.decision_function(x_test), rtol=1e-6)


def test_bad_combination_is_a_config_error(capsys, tmp_path):
    with pytest.raises(ConfigError, match="baseline=deepsad does not combine with model=ae; allowed: model=svdd"):
        build_method(compose_cfg("baseline=deepsad", "model=ae"), "cpu")
    cfg = compose_cfg("baseline=rsrae", "model=svdd")
    with pytest.raises(SystemExit) as exit_info:
        execute(cfg, tmp_path, multirun=False)
    assert exit_info.value.code == 2
    assert "error: baseline=rsrae does not combine with model=svdd" in capsys.readouterr().err


def test_baseline_files_select_their_model_and_name_the_method():
    names = {b: method_name(compose_cfg(f"baseline={b}")) for b in ("none", "deepsvdd", "deepsad", "ssad", "rsrae",
                                                                      "ae", "labels")}
    assert names == {"none": "elite_svdd", "deepsvdd": "deepsvdd", "deepsad": "deepsad", "ssad": "ssad",
                     "rsrae": "rsrae", "ae": "ae", "labels": "labels_svdd"}
    assert compose_cfg("baseline=ae").model.name == "ae"
    assert method_name(compose_cfg("baseline=labels", "model=ae")) == "labels_ae"
    assert method_name(compose_cfg("baseline=deepsad", "baseline.labeled_every_batch=true")) == "deepsad_every_batch"
    assert method_name(compose_cfg("baseline=deepsad", "baseline.loss=hinge")) == "deepsad_hinge"
    assert method_name(compose_cfg("baseline=ssad", "baseline.hybrid=true")) == "ssad_hybrid"
    with pytest.raises(Exception, match="baseline.eta"):  # the typed schema rejects a key of another baseline
        compose_cfg("baseline=ae", "baseline.eta=1")


@pytest.mark.parametrize("data", ["digits", "mnist", "fmnist", "cifar10", "breast_cancer"])
def test_every_method_preset_at_its_defaults_is_named_by_its_file(data):
    presets = sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml"))
    names = {p: method_name(compose_cfg(f"data={data}", f"method={p}", "train.epochs=7")) for p in presets}
    assert names == {p: p for p in presets}


def test_every_other_setting_a_method_reads_names_its_records():
    # runs of different settings never share a name, so no table averages them together
    assert method_name(compose_cfg("method=deepsad", "baseline.eta=2", "train.lr=0.001")) == \
        "deepsad+baseline.eta=2+train.lr=0.001"
    assert method_name(compose_cfg("elite.meta_grad=finite_diff")) == "elite_svdd+elite.meta_grad=finite_diff"
    assert method_name(compose_cfg("method=labels_svdd", "elite.margin=auto_max")) == \
        "labels_svdd+elite.margin=auto_max"
    assert method_name(compose_cfg("model.squared=true", "train.batch_size=64")) == \
        "elite_svdd+model.squared=true+train.batch_size=64"
    # the default of the run's data set: digits trains with batches of 32, MNIST with 128
    assert method_name(compose_cfg("data=mnist", "train.batch_size=32")) == "elite_svdd+train.batch_size=32"
    assert method_name(compose_cfg("data=mnist", "train.batch_size=128")) == "elite_svdd"
    assert method_name(compose_cfg("data=mnist", "data.network.channels=[16,8]")) == \
        "elite_svdd+data.network.channels=16,8"
    assert method_name(compose_cfg("data=digits", "data.network.hidden=[]")) == "elite_svdd+data.network.hidden=[]"
    # values are shown exactly, never with a "+"
    assert method_name(compose_cfg("train.lr=0.00012345671")) == "elite_svdd+train.lr=0.00012345671"
    assert method_name(compose_cfg("method=ssad", "baseline.c_labeled=1e20")) == "ssad+baseline.c_labeled=1e20"
    # a key the method does not read leaves its name alone (the folder hash still differs)
    assert method_name(compose_cfg("method=labels_svdd", "elite.meta_grad=finite_diff")) == "labels_svdd"
    assert method_name(compose_cfg("method=deepsvdd", "elite.update=paper")) == "deepsvdd"
    assert method_name(compose_cfg("method=ssad", "train.lr=0.001")) == "ssad"  # a kernel on the raw features
    assert method_name(compose_cfg("method=ssad_hybrid", "train.lr=0.001")) == "ssad_hybrid+train.lr=0.001"
    assert method_name(compose_cfg("model=ae", "model.squared=true")) == "elite_ae"
    assert method_name(compose_cfg("method=deepsvdd", "baseline.pretrain=false", "baseline.pretrain_epochs=3")) == \
        "deepsvdd+baseline.pretrain=false"
    # an interpolated default holds however long training is
    assert method_name(compose_cfg("method=deepsad", "train.epochs=3")) == "deepsad"
    assert method_name(compose_cfg("method=deepsad", "baseline.pretrain_epochs=3")) == \
        "deepsad+baseline.pretrain_epochs=3"


def test_every_method_gets_the_identical_split_and_writes_an_ok_record(tmp_path):
    digests = {}
    for b in ("none", "deepsvdd", "deepsad", "ssad", "rsrae", "ae", "labels", "loe", "soel"):
        cfg = compose_cfg(f"baseline={b}", "train.epochs=1", f"out_dir={tmp_path}")
        run_dir = tmp_path / b
        execute(cfg, run_dir, multirun=False)
        record = json.loads((run_dir / "result.json").read_text())
        assert record["status"] == "ok", record.get("reason")
        assert record["method"] == method_name(cfg)
        digests[b] = record["split_digest"]
    assert len(set(digests.values())) == 1, digests


def test_cli_runs_a_baseline(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "elite_exp", "baseline=deepsad", "data=digits", "train.epochs=1",
                           "progress=false", f"out_dir={tmp_path}"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    [path] = tmp_path.rglob("result.json")
    assert "/deepsad/" in str(path) and json.loads(path.read_text())["status"] == "ok"


@pytest.mark.parametrize("model", sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml")))
@pytest.mark.parametrize("baseline", sorted(p.stem for p in (CONF_DIR / "baseline").glob("*.yaml")))
def test_every_model_composes_with_every_baseline(model, baseline):
    """Each model= file with each baseline= file on image data (MNIST's config; no data is read) builds its
    estimator, named by its score where it takes model=, or fails with the one error that names the pair."""
    from elite_exp.methods.registry import FIXED_MODEL

    cfg = compose_cfg("data=mnist", f"baseline={baseline}", f"model={model}")
    if baseline in FIXED_MODEL and model != FIXED_MODEL[baseline]:
        with pytest.raises(ConfigError, match=f"baseline={baseline} does not combine with model={model}"):
            build_method(cfg, "cpu")
        return
    est = build_method(cfg, "cpu")
    name = method_name(cfg)
    if baseline in ("none", "labels", "loe", "soel"):
        assert est.score == model and name.endswith(f"_{model}"), name


def test_runs_of_one_split_and_seed_share_one_pretraining_with_the_same_result(tmp_path):
    """Deep SVDD, Deep SAD (both batch modes) and hybrid SSAD pre-train the same auto-encoder: in one out_dir the
    first run trains it, the others reuse it, and their results equal those of runs that trained it themselves."""
    def run(out, method, name):
        cfg = compose_cfg(f"method={method}", "train.epochs=2", "normal_class=3", f"out_dir={tmp_path / out}")
        execute(cfg, tmp_path / out / name, multirun=False)
        return json.loads((tmp_path / out / name / "result.json").read_text())

    shared = {m: run("shared", m, m) for m in ("deepsvdd", "deepsad", "deepsad_every_batch", "ssad_hybrid")}
    alone = {m: run(f"alone_{m}", m, m) for m in ("deepsad", "ssad_hybrid")}
    assert {m: r["pretraining"] for m, r in shared.items()} == {
        "deepsvdd": "trained", "deepsad": "reused", "deepsad_every_batch": "reused", "ssad_hybrid": "reused"}
    assert [r["pretraining"] for r in alone.values()] == ["trained", "trained"]
    for m, r in alone.items():
        assert [shared[m][k] for k in ("test_auc", "test_aupr", "train_auc", "train_aupr")] == \
            [r[k] for k in ("test_auc", "test_aupr", "train_auc", "train_aupr")], m
    assert len(list((tmp_path / "shared" / ".pretrained").glob("*.pt"))) == 1
    assert "pretraining" not in run("shared", "elite_svdd", "elite")  # no pre-training, nothing said


def test_a_kept_pretraining_is_used_only_for_the_same_samples_seed_and_settings(tmp_path):
    from elite_exp.methods.autoencoder import pretrained_encoder, pretraining_key, shared_pretraining
    from elite_exp.methods.training import TrainSettings
    from elite_exp.networks import NetworkSpec

    conv = NetworkSpec(kind="conv", channels=(4,), rep_dim=4)  # images: the same kept state as trained anew
    images, s = torch.rand(32, 1, 8, 8), TrainSettings(epochs=2, batch_size=16)
    trained, outcome = pretrained_encoder(conv, (1, 8, 8), images, s, 0, False)
    assert outcome == "trained"
    with shared_pretraining(tmp_path / "conv"):
        assert pretrained_encoder(conv, (1, 8, 8), images, s, 0, False)[1] == "trained"
        kept, outcome = pretrained_encoder(conv, (1, 8, 8), images, s, 0, False)
    assert outcome == "reused" and all(torch.equal(kept[k], trained[k]) for k in trained)

    spec = NetworkSpec(kind="mlp", hidden=(16,), rep_dim=4)
    x = torch.rand(64, 8)
    fresh = pretrained_encoder(spec, (8,), x, s, 0, False)[0]
    with shared_pretraining(tmp_path) as store:
        first = pretrained_encoder(spec, (8,), x, s, 0, False)[0]
        again = pretrained_encoder(spec, (8,), x.clone(), s, 0, False)[0]
        for other in ((x.flip(0), s, 0), (x, s, 1), (x, TrainSettings(epochs=3, batch_size=16), 0)):
            pretrained_encoder(spec, (8,), *other, False)
    assert (store.reused, store.trained) == (1, 4)
    for state in (first, again):
        assert all(torch.equal(state[k], fresh[k]) for k in fresh)
    with shared_pretraining(tmp_path) as store:  # a damaged kept file is trained again, not fatal
        for f in tmp_path.glob("*.pt"):
            f.write_bytes(b"damaged")
        assert all(torch.equal(v, fresh[k]) for k, v in pretrained_encoder(spec, (8,), x, s, 0, False)[0].items())
    assert (store.reused, store.trained) == (0, 1)
    with shared_pretraining(tmp_path / "swapped"):  # two kept files swapped by hand: neither is taken for the other
        pretrained_encoder(spec, (8,), x, s, 0, False)
        pretrained_encoder(spec, (8,), x, s, 1, False)
    seed0, seed1 = (tmp_path / "swapped" / f"{pretraining_key(spec, (8,), x, s, k)}.pt" for k in (0, 1))
    seed0.rename(tmp_path / "swapped" / "tmp")
    seed1.rename(seed0)
    (tmp_path / "swapped" / "tmp").rename(seed1)
    with shared_pretraining(tmp_path / "swapped") as store:
        assert all(torch.equal(v, fresh[k]) for k, v in pretrained_encoder(spec, (8,), x, s, 0, False)[0].items())
    assert (store.reused, store.trained) == (0, 1)
    (tmp_path / "blocked").write_text("a file where the store's folder would be")
    with shared_pretraining(tmp_path / "blocked") as store:  # an unusable store: trained, nothing kept
        assert all(torch.equal(v, fresh[k]) for k, v in pretrained_encoder(spec, (8,), x, s, 0, False)[0].items())
    assert (store.reused, store.trained) == (0, 1)


def test_settings_the_method_does_not_read_are_named():
    from elite_exp.methods.registry import unread_overrides

    given = ["elite.pretrain=true", "train.lr=0.01", "++model.squared=true", "seed=1"]
    assert unread_overrides(compose_cfg("model=ae", *given), ["model=ae", *given]) == \
        ["elite.pretrain", "model.squared"]
    assert unread_overrides(compose_cfg("method=ssad", *given), ["method=ssad", *given]) == \
        ["elite.pretrain", "train.lr", "model.squared"]
    assert unread_overrides(compose_cfg(*given), given) == []  # ELITE on svdd reads all three
    at_default = [f"train.lr={compose_cfg().train.lr}", "eta_m=1", "elite.pretrain=false"]  # asks for nothing new
    assert unread_overrides(compose_cfg("method=ssad", *at_default), ["method=ssad", *at_default]) == []
    assert unread_overrides(compose_cfg("method=ssad", "eta_m=0.3"), ["method=ssad", "eta_m=0.3"]) == ["eta_m"]
    EliteDetector(score="ae", pretrain=True)._check_params()  # the check that every method's build runs: silent
    x, y = np.random.default_rng(0).random((40, 6)), np.r_[np.full(36, -1), 0, 0, 1, 1]
    with pytest.warns(UserWarning, match="pretrain=True acts on the svdd score only; score='ae' trains without"):
        EliteDetector(score="ae", pretrain=True, epochs=1, batch_size=8, device="cpu").fit(x, y)


def test_a_run_waits_for_the_same_pretraining_in_another_process_and_clears_a_dead_ones_lock(tmp_path):
    import os
    import socket
    import threading

    from elite_exp.methods.autoencoder import pretrained_encoder, pretraining_key, shared_pretraining
    from elite_exp.methods.training import TrainSettings
    from elite_exp.networks import NetworkSpec
    from elite_exp.records import atomic_torch_save

    spec, s = NetworkSpec(kind="mlp", hidden=(16,), rep_dim=4), TrainSettings(epochs=2, batch_size=16)
    x = torch.rand(64, 8)
    fresh = pretrained_encoder(spec, (8,), x, s, 0, False)[0]
    key = pretraining_key(spec, (8,), x, s, 0)
    lock = tmp_path / f"{key}.lock"
    lock.write_text(f"{socket.gethostname()} {os.getpid()}")  # a live process (this one) trains that key

    def finish():  # ... and finishes it a moment later
        atomic_torch_save({"key": key, "state": fresh}, tmp_path / f"{key}.pt")
        lock.unlink()

    timer = threading.Timer(1.5, finish)
    timer.start()
    with shared_pretraining(tmp_path) as store:
        state, outcome = pretrained_encoder(spec, (8,), x, s, 0, False)
    timer.join()
    assert (store.reused, store.trained) == (1, 0) and all(torch.equal(state[k], fresh[k]) for k in fresh)
    assert outcome == "reused"

    (tmp_path / f"{key}.pt").unlink()
    lock.write_text(f"{socket.gethostname()} 4194999")  # a process that has ended: its lock is cleared
    with shared_pretraining(tmp_path) as store:
        pretrained_encoder(spec, (8,), x, s, 0, False)
    assert (store.reused, store.trained) == (0, 1) and not lock.exists() and (tmp_path / f"{key}.pt").exists()


def test_deepsad_hinge_trains_elites_eq4_at_the_mean_initial_distance_of_all_training_data(digits_task, monkeypatch):
    """``loss='hinge'`` (the paper's Fig. 7): ELITE's score (the distance, not squared), C = the mean initial
    score of unlabeled + labeled samples, and each step's loss is Eq. 4 with the labeled terms weighted by eta."""
    import elite_exp.methods.deep_sad as deep_sad
    from elite_exp.methods.losses import deep_sad_hinge_loss, hinge_loss

    X, y, _, _ = digits_task
    margins, losses = [], []
    mean_score, hinge = deep_sad.mean_score, deep_sad.deep_sad_hinge_loss
    monkeypatch.setattr(deep_sad, "mean_score", lambda m, x, bs: margins.append((len(x), mean_score(m, x, bs)))
                        or margins[-1][1])
    monkeypatch.setattr(deep_sad, "deep_sad_hinge_loss", lambda s, t, eta, c: losses.append((s, t, eta, c))
                        or hinge(s, t, eta, c))
    est = DeepSAD(epochs=1, pretrain=False, labeled_every_batch=True, loss="hinge", eta=2.0, **FAST).fit(X, y)
    assert margins == [(len(X), est.margin_)] and est.margin_ > 0 and not est.module_.squared
    s, t, eta, c = losses[0]
    assert (eta, float(c)) == (2.0, pytest.approx(est.margin_)) and (t != 0).sum() == (y >= 0).sum()
    per_sample = torch.where(t == 0, s, 2.0 * hinge_loss(s, t < 0, c))
    assert torch.allclose(deep_sad_hinge_loss(s, t, 2.0, c), per_sample.mean())
    assert torch.allclose(hinge_loss(s, t < 0, c)[t < 0], torch.relu(c - s[t < 0]))  # anomalies: max(C - Omega, 0)
