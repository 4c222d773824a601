"""The encoder stage's BatchNorm + max-pool through the folded matrix (``networks.batch_norm``) is torch's
``F.max_pool2d(F.batch_norm(...), 2)``: values, gradients, double backward, forward-mode tangents and vmap
in float64, float32 to rounding; it is used exactly when training normalises with batch statistics on CPU."""

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck
from torch.func import grad, jvp, vmap

from elite_exp.methods.training import untracked_batch_norm
from elite_exp.networks import batch_norm
from elite_exp.networks.batch_norm import (
    MAX_CHANNELS,
    _BatchNormMaxPool,
    batch_norm_max_pool,
    matrix_form,
    norm_then_pool,
)
from elite_exp.networks.conv import ConvEncoder

EPS = 1e-4
# channels-last and NCHW tensors; odd sizes (the pool drops the last row / column); N*H*W that k*C = 64 does not
# divide; one channel; 16 channels (the function takes any number; MAX_CHANNELS only says when the encoder uses it)
SHAPES = [(6, 8, 6, 4), (5, 4, 7, 5), (3, 1, 5, 6), (2, 16, 4, 6), (7, 3, 3, 3)]


def reference(y):
    return F.max_pool2d(F.batch_norm(y, None, None, training=True, eps=EPS), 2)


def fused(y):
    return batch_norm_max_pool(y, EPS)


def sample(shape, dtype=torch.float64, channels_last=True, seed=0, ties=True):
    """Values with a large mean against their spread in one channel and, with ``ties``, exact ties in a pooling
    window (a flat zero region, as MNIST's background gives)."""
    y = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(seed)) * 3 + 1
    y[:, 0] += 50.0
    if ties:
        y[0, :, :2, :2] = 0.0
    return y.movedim(-3, -1).contiguous().movedim(-1, -3) if channels_last else y  # any leading dims


@pytest.mark.parametrize("channels_last", [True, False], ids=["channels_last", "nchw"])
@pytest.mark.parametrize("shape", SHAPES)
def test_values_and_gradients_equal_torch(shape, channels_last):
    y = sample(shape, channels_last=channels_last).requires_grad_()
    torch.testing.assert_close(fused(y), reference(y), rtol=1e-12, atol=1e-12)
    g = torch.randn_like(reference(y))
    torch.testing.assert_close(torch.autograd.grad(fused(y), y, g)[0], torch.autograd.grad(reference(y), y, g)[0],
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_derivatives_of_every_output_and_double_backward_check_numerically(shape):
    """gradcheck (finite differences) of the output and of the statistics it returns, and of the backward;
    without ties, where the max-pool has no derivative."""
    y = sample(shape, ties=False).requires_grad_()
    for i in range(3):  # the pooled output, the mean, r
        assert gradcheck(lambda y, i=i: _BatchNormMaxPool.apply(y, EPS)[i], (y,))
    assert gradgradcheck(fused, (y,))


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_mode_tangents_equal_torch(shape):
    y, t = sample(shape), sample(shape, seed=1)
    expected = jvp(reference, (y,), (t,))
    for got in (jvp(fused, (y,), (t,)), _dual(y, t)):
        torch.testing.assert_close(got[0], expected[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got[1], expected[1], rtol=1e-10, atol=1e-10)


def test_gradient_of_a_tangent_checks_numerically():
    """A backward pass through the forward-mode rule (reverse over forward), against a central difference;
    torch's own modules are not the reference here: their reverse-over-forward derivative is wrong in 2.14."""
    y, t, e = (sample((6, 8, 6, 4), ties=False, seed=s) for s in (0, 1, 2))

    def loss(y):
        return jvp(fused, (y,), (t,))[1].pow(2).sum()
    h = 1e-6
    numeric = (loss(y + h * e) - loss(y - h * e)) / (2 * h)
    torch.testing.assert_close((grad(loss)(y) * e).sum(), numeric, rtol=1e-6, atol=1e-9)


def _dual(y, t):
    with fwAD.dual_level():
        out = fwAD.unpack_dual(fused(fwAD.make_dual(y, t)))
        return out.primal, out.tangent


def test_vmap_of_values_gradients_and_tangents_equal_torch():
    ys, ts = sample((3, 5, 4, 6, 6)), sample((3, 5, 4, 6, 6), seed=1)
    torch.testing.assert_close(vmap(fused)(ys), vmap(reference)(ys), rtol=1e-12, atol=1e-12)

    def loss(f):
        return lambda y: f(y).pow(3).sum()
    torch.testing.assert_close(vmap(grad(loss(fused)))(ys), vmap(grad(loss(reference)))(ys), rtol=1e-9, atol=1e-9)
    tangent = vmap(lambda y, t: jvp(fused, (y,), (t,))[1])(ys, ts)
    torch.testing.assert_close(tangent, vmap(lambda y, t: jvp(reference, (y,), (t,))[1])(ys, ts),
                               rtol=1e-10, atol=1e-10)


def test_float32_is_as_precise_as_torch():
    """Against the float64 result, the float32 output and gradient are within twice torch's own float32 error
    (a channel's mean is large against its spread: the two-pass variance keeps the precision)."""
    y64 = sample((128, 8, 28, 28)).requires_grad_()
    y32 = y64.detach().float().requires_grad_()
    g64 = torch.randn_like(reference(y64))
    truth = reference(y64), torch.autograd.grad(reference(y64), y64, g64)[0]
    for i, (got, torch32) in enumerate(zip(
            (fused(y32), torch.autograd.grad(fused(y32), y32, g64.float())[0]),
            (reference(y32), torch.autograd.grad(reference(y32), y32, g64.float())[0]))):
        error, torch_error = ((v.double() - truth[i]).abs().max().item() for v in (got, torch32))
        assert error <= 2 * torch_error + 1e-7, (i, error, torch_error)


def test_matrix_form_only_for_batch_statistics_of_few_channels_on_cpu():
    """Training (batch statistics, running statistics left as they are) takes the fused function; scoring (eval),
    training that tracks running statistics, affine BatchNorm, more than MAX_CHANNELS channels and no BatchNorm
    take the modules, with the same values."""
    y = sample((4, 8, 6, 6))
    norm, pool = nn.BatchNorm2d(8, eps=EPS, affine=False).double(), nn.MaxPool2d(2)
    assert not matrix_form(norm, y)  # tracking running statistics
    with untracked_batch_norm([norm]):
        assert matrix_form(norm, y)
        assert not matrix_form(norm, sample((4, MAX_CHANNELS + 1, 6, 6)))
        torch.testing.assert_close(norm_then_pool(norm, pool, y), pool(norm(y)), rtol=1e-12, atol=1e-12)
        norm.eval()
        assert not matrix_form(norm, y)
    affine = nn.BatchNorm2d(8, affine=True).double()
    with untracked_batch_norm([affine]):
        assert not matrix_form(affine, y)
    assert not matrix_form(nn.Identity(), y)
    torch.testing.assert_close(norm_then_pool(nn.Identity(), pool, y), pool(y))


def test_the_mnist_encoder_trains_through_the_fused_stages(monkeypatch):
    """The MNIST LeNet (8-4 channels) calls the fused function once per stage in training with batch statistics
    on CPU, and never when it tracks running statistics, scores (eval), or its pool is not 2x2 / stride 2."""
    calls = []

    def counted(y, eps):
        calls.append(y.shape)
        return batch_norm_max_pool(y, eps)
    monkeypatch.setattr(batch_norm, "batch_norm_max_pool", counted)
    enc = ConvEncoder((1, 28, 28), (8, 4), 32)
    x = torch.rand(6, 1, 28, 28)
    with untracked_batch_norm([enc]):
        enc(x).sum().backward()
    assert [tuple(s) for s in calls] == [(6, 8, 28, 28), (6, 4, 14, 14)]
    calls.clear()
    enc(x)  # tracking running statistics
    enc.eval()
    enc(x)
    enc.train()
    y = sample((4, 8, 6, 6))
    norm = nn.BatchNorm2d(8, eps=EPS, affine=False).double()
    with untracked_batch_norm([norm]):
        for pool in (nn.MaxPool2d(2, stride=1), nn.MaxPool2d(3), nn.MaxPool2d(2, ceil_mode=True)):
            torch.testing.assert_close(batch_norm.norm_then_pool(norm, pool, y), pool(norm(y)))
    assert calls == []


def test_fold_is_a_view_of_a_channels_last_tensor():
    y = sample((6, 8, 6, 4))
    m, k = batch_norm._fold(y)
    assert k * 8 == batch_norm.ROW and m.shape == (6 * 6 * 4 // k, 64) and m.data_ptr() == y.data_ptr()
    assert torch.equal(batch_norm._unfold(m, y), y)
