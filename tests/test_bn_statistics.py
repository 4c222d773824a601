"""Scores use the BatchNorm statistics of the trained network on its training data (not the running
average of a short fit), every training-set size >= 2 works, and one sample is a clear error."""

import copy

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from elite_exp import LOE, RSRAE, SOEL, SSAD, AutoEncoder, DeepSAD, DeepSVDD, EliteDetector, LabelsOnly
from elite_exp.errors import ConfigError
from elite_exp.networks import NetworkSpec
from elite_exp.scores import AEScore, SVDDScore, even_batches, recompute_bn_statistics, score_in_batches, statistics_of

MLP = {"kind": "mlp", "hidden": [64, 32], "rep_dim": 16}  # the digits network


def ring_and_bar(n_normal, n_anomaly, rng):
    """8x8 vectors in [0, 1]: normal = a ring, anomaly = a bar; pixel noise 0.1, clipped."""
    yy, xx = np.mgrid[:8, :8]
    ring = (np.abs(np.hypot(yy - 3.5, xx - 3.5) - 2.5) < 0.8).astype(np.float32)
    bar = np.zeros((8, 8), np.float32)
    bar[:, 3:5] = 1.0
    x = np.concatenate([np.repeat(ring[None], n_normal, 0), np.repeat(bar[None], n_anomaly, 0)])
    x = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1).reshape(len(x), 64).astype(np.float32)
    return x, np.r_[np.zeros(n_normal), np.ones(n_anomaly)].astype(int)


@pytest.fixture(scope="module")
def ring_bar():
    rng = np.random.default_rng(0)
    x_unl, _ = ring_and_bar(90, 10, rng)
    x_lab, y_lab = ring_and_bar(5, 5, rng)
    x_test, y_test = ring_and_bar(300, 300, rng)
    X = np.concatenate([x_unl, x_lab])
    y = np.r_[np.full(100, -1), y_lab]
    return X, y, x_test, y_test


def full_pass_statistics_scores(est, x_train, x_test):
    """Independent reference: one train-mode pass over all of ``x_train`` as a single batch normalises
    every layer with the population statistics of its input and stores them; then eval-mode scores."""
    module = copy.deepcopy(est.module_)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = 1.0
    module.train()
    with torch.no_grad():
        module(torch.as_tensor(x_train))
    return score_in_batches(module, torch.as_tensor(x_test)).numpy()


@pytest.mark.parametrize("make", [
    lambda: EliteDetector(network=MLP, epochs=2, batch_size=32, lr=1e-4, device="cpu"),
    lambda: DeepSVDD(network=MLP, epochs=2, pretrain_epochs=2, batch_size=32, lr=1e-4, device="cpu"),
], ids=["elite", "deepsvdd"])
def test_short_fit_scores_with_the_training_data_statistics(ring_bar, make):
    X, y, x_test, y_test = ring_bar
    est = make().fit(X, y)
    scores = est.decision_function(x_test)
    assert roc_auc_score(y_test, scores) > 0.99
    trained_on = X[y == -1] if est.uses_labels else X
    reference = full_pass_statistics_scores(est, trained_on, x_test)
    # equal up to the unbiased (N-1) variance the stored statistics use, which the full pass normalises without
    # (a relative 1e-2 per layer here, N = 100)
    assert np.corrcoef(scores, reference)[0, 1] > 0.9999
    np.testing.assert_allclose(scores, reference, rtol=3e-2)


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_recompute_gives_the_population_statistics_whatever_the_batches(kind):
    """Uneven batches of 32 give, layer by layer, exactly the statistics of one batch of all N = 97
    samples (float64): the mean and unbiased variance of each layer's inputs with every earlier layer
    normalised by its own new statistics."""
    torch.manual_seed(0)
    spec = NetworkSpec(kind=kind, hidden=(8, 6), channels=(3, 2), rep_dim=4)
    shape = (5,) if kind == "mlp" else (1, 8, 8)
    m = AEScore(spec, shape).double()  # encoder and decoder: 4 (mlp) / 3 (conv) BatchNorm layers
    x = torch.randn(97, *shape, dtype=torch.float64) * 3 + 2
    norms = [b for b in m.modules() if isinstance(b, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) >= 3
    reference = copy.deepcopy(m)
    recompute_bn_statistics(reference, x, batch_size=97)
    for b in norms:
        b.running_mean.fill_(123.0)
    recompute_bn_statistics(m, x, batch_size=32)
    first = norms[0]
    with torch.no_grad():
        h = (m.encoder[0] if kind == "mlp" else m.encoder.features[0])(x)
    dims = [0] if kind == "mlp" else [0, 2, 3]
    torch.testing.assert_close(first.running_mean, h.mean(dims), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(first.running_var, h.var(dims), rtol=1e-10, atol=1e-10)
    references = [b for b in reference.modules() if isinstance(b, torch.nn.modules.batchnorm._BatchNorm)]
    for ours, ref in zip(norms, references):
        torch.testing.assert_close(ours.running_mean, ref.running_mean, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(ours.running_var, ref.running_var, rtol=1e-9, atol=1e-9)


def test_statistics_of_restores_every_buffer():
    torch.manual_seed(0)
    m = SVDDScore(NetworkSpec(kind="mlp", hidden=(8,), rep_dim=4), (5,))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with statistics_of(m, torch.randn(40, 5) + 5, batch_size=16):
        changed = any(not torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert changed
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


@pytest.mark.parametrize("n, bs", [(2, 32), (33, 32), (97, 32), (65, 32), (3, 2), (1000, 128)])
def test_even_batches_never_hold_one_sample_and_use_every_sample(n, bs):
    parts = even_batches(torch.arange(n), bs)
    assert sum(len(p) for p in parts) == n
    assert min(len(p) for p in parts) >= min(n, bs) >= 2
    assert torch.equal(torch.cat(parts), torch.arange(n))


def test_curves_score_like_the_finished_model(ring_bar):
    """A monitor scoring during fit uses the same statistics rule as the finished model: at the last
    step, both give the same scores; the training itself is unaffected by the monitor."""
    X, y, x_test, _ = ring_bar
    seen = []

    def monitor(info):
        seen.append(est.score_while_fitting(torch.as_tensor(x_test)))

    params = dict(network=MLP, epochs=2, batch_size=32, device="cpu")
    est = EliteDetector(**params)
    est.fit(X, y, monitor=monitor)
    np.testing.assert_allclose(seen[-1], est.decision_function(x_test), rtol=1e-5, atol=1e-6)
    plain = EliteDetector(**params).fit(X, y)
    np.testing.assert_array_equal(plain.decision_function(x_test), est.decision_function(x_test))


def _digits_xy(digits, n_unl, n_lab=10):
    x = digits.x_train[:n_unl + n_lab]
    y = np.r_[np.full(n_unl, -1), np.arange(n_lab) % 2]
    return x, y


ROT_NET = dict(kind="conv", channels=[4, 2], rep_dim=8)
ESTIMATORS = {
    "elite_svdd": lambda: EliteDetector(epochs=1, batch_size=32, device="cpu"),
    "elite_ae": lambda: EliteDetector(score="ae", epochs=1, batch_size=32, device="cpu"),
    "deepsvdd": lambda: DeepSVDD(epochs=1, pretrain_epochs=1, batch_size=32, device="cpu"),
    "deepsad": lambda: DeepSAD(epochs=1, pretrain_epochs=1, batch_size=32, device="cpu"),
    "deepsad_every_batch": lambda: DeepSAD(labeled_every_batch=True, epochs=1, pretrain_epochs=1, batch_size=32,
                                           device="cpu"),
    "labels": lambda: LabelsOnly(epochs=1, steps_per_epoch=2, batch_size=32, device="cpu"),
    "ae": lambda: AutoEncoder(epochs=1, batch_size=32, device="cpu"),
    "rsrae": lambda: RSRAE(epochs=1, batch_size=32, device="cpu"),
    "ssad_hybrid": lambda: SSAD(hybrid=True, epochs=1, batch_size=32, device="cpu"),
    "loe_hard": lambda: LOE(epochs=1, batch_size=32, device="cpu"),
    "soel_ae": lambda: SOEL(score="ae", epochs=1, batch_size=32, device="cpu"),
    # the rotation score on the digits as 1x8x8 images (its BatchNorm sees 4 copies of each batch)
    "elite_rot": lambda: EliteDetector(score="rot", network=ROT_NET, epochs=1, batch_size=32, device="cpu"),
    "soel_rot": lambda: SOEL(score="rot", network=ROT_NET, epochs=1, batch_size=32, device="cpu"),
    "labels_rot": lambda: LabelsOnly(score="rot", network=ROT_NET, epochs=1, steps_per_epoch=2, batch_size=32,
                                     device="cpu"),
    "elite_neutral": lambda: EliteDetector(score="neutral", epochs=1, batch_size=32, device="cpu"),
    "loe_neutral": lambda: LOE(score="neutral", epochs=1, batch_size=32, device="cpu"),
}


@pytest.mark.parametrize("n_unl", [33, 65, 97])
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_any_training_size_k_batches_plus_one_works(digits, name, n_unl):
    x, y = _digits_xy(digits, n_unl)
    x_test = digits.x_test[:50]
    if name.endswith("_rot"):
        x, x_test = x.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    est = ESTIMATORS[name]().fit(x, y)
    assert np.isfinite(est.decision_function(x_test)).all()


def test_labels_only_with_a_single_labeled_normal(digits):
    x = digits.x_train[:2]
    est = LabelsOnly(epochs=1, steps_per_epoch=2, device="cpu").fit(x, np.array([0, 1]))
    assert np.isfinite(est.decision_function(digits.x_test[:10])).all()


@pytest.mark.parametrize("cls", [DeepSVDD, AutoEncoder, RSRAE, DeepSAD, SSAD, EliteDetector, LabelsOnly, LOE, SOEL])
def test_one_sample_is_a_clear_config_error(digits, cls):
    with pytest.raises(ConfigError, match="needs at least 2 training samples in X.*got 1"):
        cls(epochs=1, device="cpu").fit(digits.x_train[:1])
