"""ELITE's fast meta-gradients against the double-backward definition, on scikit-learn's digits."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from elite_exp.data import load_dataset, make_split
from elite_exp.methods.elite import EliteDetector
from elite_exp.methods.losses import validation_loss
from elite_exp.methods.meta_gradient import elite_loss
from elite_exp.methods.meta_gradient import meta_gradients as meta_gradients_of
from elite_exp.methods.training import RunNet, untracked_batch_norm
from elite_exp.networks import NetworkSpec
from elite_exp.scores import batch_statistics, build_score


def meta_gradients(module, *args, **kwargs):
    """ELITE's meta-gradients on ``module``'s own parameters, as the training loop takes them (no BatchNorm
    running statistics kept)."""
    with untracked_batch_norm([module]):
        return meta_gradients_of(RunNet.of(module), *args, **kwargs)

NETS = {  # digits as 64-d vectors (MLP) and as 1x8x8 images (LeNet-type conv net); both with BatchNorm
    "mlp": (NetworkSpec(kind="mlp", hidden=(32, 16), rep_dim=8), (64,)),
    "conv": (NetworkSpec(kind="conv", channels=(4, 2), rep_dim=8), (1, 8, 8)),
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _batch(digits, shape, n=64, n_val=10):
    """A training batch (all classes) and a labeled set: half class 0 (normal), half other digits."""
    x = digits.x_train
    val = np.concatenate([np.flatnonzero(digits.y_train == 0)[:n_val // 2],
                          np.flatnonzero(digits.y_train != 0)[:n_val // 2]])
    return (x[-n:].reshape(n, *shape), x[val].reshape(len(val), *shape),
            torch.from_numpy(digits.y_train[val] != 0))


def _module(score, spec, shape, x, dtype):
    torch.manual_seed(0)
    module = build_score(score, spec, shape).to(dtype)
    module.prepare(x.to(dtype))
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)  # move away from the initialisation a little
    for _ in range(3):
        loss = module(x.to(dtype)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return module


# every score on every network it takes (the rotation score needs images)
CASES = [(score, net) for score in ("svdd", "ae", "neutral") for net in sorted(NETS)] + [("rot", "conv")]


@pytest.mark.parametrize("joint", [False, True])
@pytest.mark.parametrize("score, net", CASES)
def test_forward_ad_equals_double_backward_float64(digits, score, net, joint):
    spec, shape = NETS[net]
    x, xv, yv = _batch(digits, shape)
    module = _module(score, spec, shape, x, torch.float64)
    out = {}
    for method in ("forward_ad", "double_backward"):
        m = copy.deepcopy(module)
        scores, meta, lv, lab = meta_gradients(m, x.double(), xv.double(), yv, margin=5.0, step_size=1e-3,
                                               method=method, joint=joint)
        assert (lab is None) == (not joint)
        out[method] = (scores.detach(), meta, lv, [b.clone() for b in m.buffers()])
    (s1, m1, l1, b1), (s2, m2, l2, b2) = out["forward_ad"], out["double_backward"]
    assert m1.abs().max() > 0 and (m1 > 0).any() and (m1 < 0).any()
    torch.testing.assert_close(m1, m2, rtol=1e-9, atol=1e-12 * float(m2.abs().max()))
    torch.testing.assert_close(s1, s2, rtol=1e-12, atol=0)
    torch.testing.assert_close(l1, l2, rtol=1e-12, atol=0)
    with batch_statistics(module):  # L_v of the labeled set as normalised alone, or with the batch (joint)
        scored = module(torch.cat([x, xv]).double()) if joint else None
        lv = validation_loss(scored[len(x):] if joint else module(xv.double()), yv, 5.0)
        torch.testing.assert_close(s1, scored[:len(x)] if joint else module(x.double()), rtol=1e-12, atol=0)
    torch.testing.assert_close(l1, lv.detach(), rtol=1e-12, atol=0)
    for a, b in zip(b1, b2):  # no running statistics kept during training
        assert torch.equal(a, b)
    for a, b in zip(b1, module.buffers()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("joint", [False, True])
@pytest.mark.parametrize("score, net", CASES)
def test_finite_diff_close_to_exact_float32(digits, score, net, joint):
    spec, shape = NETS[net]
    x, xv, yv = _batch(digits, shape)
    module = _module(score, spec, shape, x, torch.float32)
    exact = meta_gradients(copy.deepcopy(module).double(), x.double(), xv.double(), yv, 5.0, 1e-3, "forward_ad",
                           joint)[1]
    fast = copy.deepcopy(module)
    scores, approx, _, lab = meta_gradients(fast, x, xv, yv, 5.0, 1e-3, "finite_diff", joint)
    if joint:  # the labeled scores keep their graph for a training term, beside the batch's
        torch.autograd.grad(scores.sum() + lab.sum(), list(fast.parameters()))
    rel = float((approx.double() - exact).norm() / exact.norm())
    # NeuTraL AD's contrastive score (cosines / temperature 0.1 inside a log-sum-exp) curves more along
    # grad L_v: measured 3.1% on the conv net, against 0.3% for the others
    assert rel < (5e-2 if score == "neutral" else 2e-2), f"finite-difference meta-gradients off by {rel:.2e} (relative)"
    big = exact.abs() > 0.1 * exact.abs().max()  # the samples that carry weight agree in sign
    assert ((approx > 0) == (exact > 0))[big].all()
    assert fast.training and scores.requires_grad
    for a, b in zip(fast.buffers(), module.buffers()):  # no running statistics kept during training
        assert torch.equal(a, b)


def _fit(digits, meta_grad):
    split = make_split(digits.y_train, 0, r_p=0.2, n_train=120, n_labels=10, seed=0, dataset="digits")
    X = torch.cat([digits.x_train[split.unlabeled], digits.x_train[split.labeled]])
    y = np.concatenate([np.full(len(split.unlabeled), -1), split.labeled_anomaly])
    est = EliteDetector(score="svdd", meta_grad=meta_grad, epochs=10, batch_size=32, lr=1e-3, device="cpu",
                        random_state=0).fit(X, y)
    auc = roc_auc_score(digits.y_test != 0, est.decision_function(digits.x_test))
    return est, auc


def test_same_weights_and_auc_fast_vs_definition(digits):
    fast, auc_fast = _fit(digits, "forward_ad")
    ref, auc_ref = _fit(digits, "double_backward")
    approx, auc_fd = _fit(digits, "finite_diff")
    assert auc_ref > 0.8
    for a, b in zip(fast.module_.parameters(), ref.module_.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert abs(auc_fast - auc_ref) < 1e-4
    assert abs(auc_fd - auc_ref) < 0.01, f"finite_diff AUC {auc_fd:.4f} vs exact {auc_ref:.4f}"


def test_elite_loss_updates_by_definition():
    """Eq. 14 (``paper``), the official code's ``reweight`` and ``loe`` (Eq. 14's labels and weights with
    LOE_H's losses) on hand-made values; M normalised by its mean magnitude (here 2)."""
    scores = torch.tensor([0.5, 2.0, 4.0, 1.0], dtype=torch.float64)
    m = torch.tensor([-1.0, 3.0, -2.0, 2.0], dtype=torch.float64)
    w = m / 2.0
    flags = torch.tensor([False, True, False, True])
    expected = {
        "paper": (w.abs() * torch.where(flags, (3.0 - scores).clamp_min(0), scores)).mean(),
        "reweight": (-w * scores).mean(),
        "loe": (w.abs() * torch.where(flags, 1 / (scores + 1e-6), scores)).mean(),
    }
    for update, value in expected.items():
        loss, y_hat = elite_loss(scores, m, margin=3.0, update=update, eta_m=2.5)
        assert torch.equal(y_hat, flags)
        assert torch.allclose(loss, 2.5 * value, rtol=1e-12), update


@pytest.mark.parametrize("joint", [False, True])
@pytest.mark.parametrize("net", sorted(NETS))
def test_reweight_step_is_the_validation_gradient_preconditioned_by_the_batch(digits, net, joint):
    """The gradient of ELITE's ``reweight`` loss is kappa J^T J grad L_v (kappa > 0; J the (n, P) Jacobian of
    the batch's scores, BatchNorm's coupling included, computed here apart from ELITE's pass by
    ``torch.func.jacrev``): the unlabeled samples enter the step only through J, never as a prior that
    they are normal (README, ELITE). With ``joint`` J and L_v are those of one pass over the batch and the
    labeled set together."""
    spec, shape = NETS[net]
    x, xv, yv = _batch(digits, shape)
    module = _module("svdd", spec, shape, x, torch.float64)
    x, xv, lr, eta_m = x.double(), xv.double(), 1e-3, 2.0
    n = len(x)
    both = torch.cat([x, xv])
    params = {k: p.detach() for k, p in module.named_parameters()}
    jac = torch.func.jacrev(lambda p: torch.func.functional_call(copy.deepcopy(module), p, (both if joint else x,))
                            [:n])(params)
    J = torch.cat([jac[k].flatten(1) for k in params], 1)
    step = copy.deepcopy(module)
    scores, m, _, _ = meta_gradients(step, x, xv, yv, margin=5.0, step_size=lr, method="forward_ad", joint=joint)
    loss, _ = elite_loss(scores, m, margin=5.0, update="reweight", eta_m=eta_m)
    grad = torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(step.parameters()))])
    with batch_statistics(module):  # L_v as ELITE takes it
        lv = validation_loss(module(both)[n:] if joint else module(xv), yv, 5.0)
    g_v = torch.cat([g.flatten() for g in torch.autograd.grad(lv, list(module.parameters()))])
    kappa = eta_m * lr / (n * n * float(m.abs().mean()))
    torch.testing.assert_close(grad, kappa * J.T @ (J @ g_v), rtol=1e-8, atol=1e-12 * float(grad.abs().max()))
