"""Packed runs (``methods.training``, ``methods.base.fit_packed``): K runs trained as one stacked model end
exactly as each trained alone, for every deep method, in float64 on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elite_exp import LOE, RSRAE, SOEL, AutoEncoder, DeepSAD, DeepSVDD, EliteDetector, LabelsOnly, fit_packed
from elite_exp.data import make_split
from elite_exp.errors import ConfigError
from elite_exp.methods.training import TrainingDiverged

MLP = {"kind": "mlp", "hidden": [16], "rep_dim": 8}
CONV = {"kind": "conv", "channels": [4, 2], "rep_dim": 8}
FAST = dict(epochs=2, batch_size=16, lr=1e-3, device="cpu")

# every deep method, and every option that changes ELITE's step
CASES = {
    "elite_svdd_forward_ad": (EliteDetector, dict(score="svdd")),
    "elite_svdd_finite_diff": (EliteDetector, dict(score="svdd", meta_grad="finite_diff")),
    "elite_svdd_double_backward": (EliteDetector, dict(score="svdd", meta_grad="double_backward")),
    "elite_ae_forward_ad": (EliteDetector, dict(score="ae")),
    "elite_ae_finite_diff": (EliteDetector, dict(score="ae", meta_grad="finite_diff")),
    "elite_ae_double_backward": (EliteDetector, dict(score="ae", meta_grad="double_backward")),
    "elite_options": (EliteDetector, dict(update="paper", pretrain=True, warmup_epochs=1, labeled_weight=1.0,
                                          loe_weight=1.0, alpha=0.2)),
    "elite_joint_forward_ad": (EliteDetector, dict(joint_batch=True, labeled_weight=1.0)),
    "elite_joint_finite_diff": (EliteDetector, dict(joint_batch=True, labeled_weight=1.0, meta_grad="finite_diff")),
    "elite_joint_double_backward": (EliteDetector, dict(joint_batch=True, labeled_weight=1.0,
                                                        labeled_loss="inverse", meta_grad="double_backward")),
    "elite_rot": (EliteDetector, dict(score="rot")),
    "deepsvdd": (DeepSVDD, dict(pretrain_epochs=1)),
    "deepsad": (DeepSAD, dict(pretrain_epochs=1)),
    "deepsad_every_batch": (DeepSAD, dict(pretrain=False, labeled_every_batch=True)),
    "deepsad_hinge": (DeepSAD, dict(pretrain_epochs=1, loss="hinge")),
    "deepsad_every_batch_hinge": (DeepSAD, dict(pretrain=False, labeled_every_batch=True, loss="hinge")),
    "ae": (AutoEncoder, {}),
    "loe_hard": (LOE, dict(mode="hard", alpha=0.2)),
    "loe_soft": (LOE, dict(mode="soft", alpha=0.2, warmup_epochs=1)),
    "soel": (SOEL, dict(alpha=0.2)),
    "labels": (LabelsOnly, dict(steps_per_epoch=3)),
    "rsrae": (RSRAE, dict(intrinsic_dim=4)),
}


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _task(digits, normal: int, r_p: float, seed: int, images: bool):
    split = make_split(digits.y_train, normal, r_p=r_p, n_train=64, n_labels=8, seed=seed, dataset="digits")
    x = digits.x_train.double()
    X = torch.cat([x[split.unlabeled], x[split.labeled]])
    if images:
        X = X.reshape(len(X), 1, 8, 8)
    return X, np.concatenate([np.full(len(split.unlabeled), -1), split.labeled_anomaly])


# three runs that differ in normal class, pollution ratio and seed
RUNS = [(0, 0.1, 0), (3, 0.3, 1), (7, 0.2, 2)]


def _estimators(klass, options, network):
    return [klass(**FAST, **options, network=network, random_state=seed, contamination=r_p)
            for _, r_p, seed in RUNS]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_packed_run_ends_as_the_same_run_alone(digits, float64, case):
    klass, options = CASES[case]
    images = options.get("score") == "rot" or case == "deepsvdd"
    network = CONV if images else MLP
    data = [_task(digits, normal, r_p, seed, images) for normal, r_p, seed in RUNS]
    x_test = digits.x_test.double().reshape(-1, 1, 8, 8) if images else digits.x_test.double()
    alone = [est.fit(X, y) for est, (X, y) in zip(_estimators(klass, options, network), data)]
    packed = _estimators(klass, options, network)
    assert fit_packed(packed, [X for X, _ in data], [y for _, y in data]) == [None] * len(RUNS)
    for a, p in zip(alone, packed):
        state_a, state_p = a.module_.state_dict(), p.module_.state_dict()
        assert state_a.keys() == state_p.keys()
        for key in state_a:
            torch.testing.assert_close(state_p[key], state_a[key], rtol=1e-6, atol=1e-9, msg=key)
        np.testing.assert_allclose(p.decision_function(x_test), a.decision_function(x_test), rtol=1e-6, atol=1e-9)
        assert p.threshold_ == pytest.approx(a.threshold_, rel=1e-6)
        assert len(p.epoch_losses_) == len(a.epoch_losses_) == FAST["epochs"]
        np.testing.assert_allclose(p.epoch_losses_, a.epoch_losses_, rtol=1e-6)
        if hasattr(a, "margin_"):  # the margin C: each run's own
            assert p.margin_ == pytest.approx(a.margin_, rel=1e-6)
    # the runs differ: a pack does not train one network K times
    assert not torch.equal(packed[0].module_.state_dict()[key], packed[1].module_.state_dict()[key])


def test_monitors_of_a_pack_see_what_they_see_alone(digits, float64):
    data = [_task(digits, normal, r_p, seed, False) for normal, r_p, seed in RUNS]
    seen_alone = [[] for _ in RUNS]
    seen_packed = [[] for _ in RUNS]
    for est, (X, y), seen in zip(_estimators(EliteDetector, {}, MLP), data, seen_alone):
        est.fit(X, y, monitor=lambda info, seen=seen, est=est, X=X: seen.append(
            (info.iteration, info.index.clone(), info.loss, info.extra["meta_gradient"].clone(),
             est.score_while_fitting(X[:20]))))
    packed = _estimators(EliteDetector, {}, MLP)
    monitors = [lambda info, seen=seen, est=est, X=X: seen.append(
        (info.iteration, info.index.clone(), info.loss, info.extra["meta_gradient"].clone(),
         est.score_while_fitting(X[:20]))) for seen, est, (X, _) in zip(seen_packed, packed, data)]
    fit_packed(packed, [X for X, _ in data], [y for _, y in data], monitors)
    for a, p in zip(seen_alone, seen_packed):
        assert len(a) == len(p) == FAST["epochs"] * (64 // FAST["batch_size"])
        for (it_a, idx_a, loss_a, m_a, s_a), (it_p, idx_p, loss_p, m_p, s_p) in zip(a, p):
            assert it_a == it_p and torch.equal(idx_a, idx_p)
            assert loss_p == pytest.approx(loss_a, rel=1e-6)
            torch.testing.assert_close(m_p, m_a, rtol=1e-6, atol=1e-12)
            np.testing.assert_allclose(s_p, s_a, rtol=1e-6, atol=1e-9)  # mid-training scores: the run's own weights


NO_BN = {**MLP, "batch_norm": False}  # (BatchNorm would normalise a sample's scale away)


def _huge(X, y, labeled: bool):
    """``X`` with its unlabeled (or labeled) samples scaled by 1e200: their losses overflow."""
    X = X.clone()
    X[(y >= 0) if labeled else (y < 0)] *= 1e200
    return X


# one run of three fails in each phase of its fit, alone and in its pack, with the same error
FAILURES = {
    "main loop": (DeepSVDD, dict(pretrain=False), lambda X, y: (_huge(X, y, False), y), TrainingDiverged,
                  "Deep SVDD: loss became"),
    "pre-training": (DeepSVDD, dict(pretrain_epochs=1), lambda X, y: (_huge(X, y, False), y), TrainingDiverged,
                     "AE pre-training: loss became"),
    "warm-up": (EliteDetector, dict(warmup_epochs=1), lambda X, y: (_huge(X, y, True), y), TrainingDiverged,
                "ELITE-svdd warm-up: loss became"),
    "data": (EliteDetector, {}, lambda X, y: (X, np.where(y == 1, 0, y)), ConfigError,
             "needs at least 1 labeled anomaly"),
}


@pytest.mark.parametrize("phase", sorted(FAILURES))
def test_a_failing_run_fails_alone_and_its_pack_goes_on(digits, float64, phase):
    klass, options, spoil, error, message = FAILURES[phase]
    data = [_task(digits, normal, r_p, seed, False) for normal, r_p, seed in RUNS]
    data[1] = spoil(*data[1])
    packed = _estimators(klass, options, NO_BN)
    errors = fit_packed(packed, [X for X, _ in data], [y for _, y in data])
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], error) and message in str(errors[1])
    assert not hasattr(packed[1], "module_")
    for i in (0, 2):
        alone = _estimators(klass, options, NO_BN)[i].fit(*data[i])
        np.testing.assert_allclose(packed[i].decision_function(digits.x_test.double()),
                                   alone.decision_function(digits.x_test.double()), rtol=1e-6, atol=1e-9)
        assert getattr(packed[i], "pretraining_", None) == getattr(alone, "pretraining_", None)
    with pytest.raises(error, match=message):
        _estimators(klass, options, NO_BN)[1].fit(*data[1])


def test_runs_that_cannot_be_packed_are_refused_before_training(digits):
    data = [_task(digits, normal, r_p, seed, False) for normal, r_p, seed in RUNS[:2]]
    Xs, ys = [X for X, _ in data], [y for _, y in data]
    with pytest.raises(ConfigError, match=r"same hyper-parameters .*eta_m=1.0 and eta_m=2.0"):
        fit_packed([EliteDetector(**FAST, network=MLP), EliteDetector(**FAST, network=MLP, eta_m=2.0)], Xs, ys)
    with pytest.raises(ConfigError, match="one estimator class; got EliteDetector and SOEL"):
        fit_packed([EliteDetector(**FAST, network=MLP), SOEL(**FAST, network=MLP)], Xs, ys)
    with pytest.raises(ConfigError, match=r"unlabeled samples; run #1 has \(74, 64\), run #0 \(64, 64\)"):
        fit_packed([EliteDetector(**FAST, network=MLP), EliteDetector(**FAST, network=MLP)],
                   [Xs[0], torch.cat([Xs[1], Xs[1][:10]])], [ys[0], np.concatenate([np.full(10, -1), ys[1]])])
    one = EliteDetector(**FAST, network=MLP)
    with pytest.raises(ConfigError, match=r"estimator #1 is an earlier one again: .*sklearn.base.clone"):
        fit_packed([one, one], Xs, ys)
    with pytest.raises(ConfigError, match="fit_packed needs a list of estimators"):
        fit_packed(one, Xs[:1], ys[:1])
    with pytest.raises(ConfigError, match="one X, y and monitor per estimator"):
        fit_packed([EliteDetector(**FAST, network=MLP)], Xs, ys)
    # contamination is each run's threshold, unless training reads it (ELITE's LOE term without alpha)
    fit_packed([EliteDetector(**FAST, network=MLP, contamination=0.1),
                EliteDetector(**FAST, network=MLP, contamination=0.3)], Xs, ys)
    with pytest.raises(ConfigError, match=r"contamination=0.1 and contamination=0.3 \(its training reads it\)"):
        fit_packed([EliteDetector(**FAST, network=MLP, loe_weight=1.0, contamination=0.1),
                    EliteDetector(**FAST, network=MLP, loe_weight=1.0, contamination=0.3)], Xs, ys)


def test_a_failed_fit_leaves_the_estimator_unfitted(digits):
    from sklearn.exceptions import NotFittedError

    X, y = _task(digits, 0, 0.1, 0, False)
    est = EliteDetector(**FAST, network=MLP).fit(X.float(), y)
    assert hasattr(est, "threshold_") and hasattr(est, "margin_")
    with pytest.raises(ConfigError, match="needs at least 1 labeled anomaly"):
        est.fit(X.float(), np.where(y == 1, 0, y))
    assert not [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]
    with pytest.raises(NotFittedError):
        est.decision_function(X.float())
