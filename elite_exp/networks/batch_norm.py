"""BatchNorm then 2x2 max-pool, in training mode on CPU, computed on channels-last tensors read as wide matrices.

torch's CPU BatchNorm is slow on channels-last tensors with few channels: its reductions over
(N, H, W) and its broadcasts over C run along a channel axis of 4-16 values (at 128x8x28x28 the
forward and backward of ``F.batch_norm`` take about 3 ms, a copy of the tensor 0.07 ms). A
channels-last tensor is a (N*H*W, C) matrix in memory; read as (N*H*W / k, k*C) with k*C near 64
(:func:`_fold`), its column sums and per-column scalings run along rows of 64 contiguous values,
and summing the k column groups gives the per-channel sums.

:func:`batch_norm_max_pool` computes an encoder stage's BatchNorm (no affine, batch mean, biased
batch variance in two passes: ``F.batch_norm(y, None, None, training=True, eps=eps)``) and the 2x2
max-pool after it that way: as the pooled raw tensor, normalised. The normalisation is increasing per
channel, so the maximum is taken at the same element, and only a quarter of the values are
normalised. Its backward is the pool's backward plus one per-channel affine map of the raw tensor
(the statistics' share); it has forward-mode (``jvp``, ELITE's exact meta-gradient) and ``vmap``
(packed runs) rules, and its backward is differentiable (double backward). It is the same function
as torch's modules; the sums run in another order, so values agree to rounding
(``tests/test_batch_norm.py``). ``scripts/bench.py`` times the encoder's training step against plain
PyTorch; the README's Performance section gives what this function gains.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# widest channel count the matrix form is used for: in the MNIST LeNet's training step (8 and 4
# channels) it is faster than torch's BatchNorm then max-pool; alone, at 16 channels and more (the
# folder data's 16-32 LeNet, the CIFAR-10 LeNet's 32-128) it measured slower (one thread)
MAX_CHANNELS = 8
ROW = 64  # values per matrix row, at most: k * C with k the largest whole number that divides N*H*W and k*C <= 64


def _fold(y: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``y`` ``(N, C, H, W)`` -> its values as a ``(N*H*W / k, k*C)`` matrix (a view when ``y`` is
    channels-last) and k."""
    n, c, h, w = y.shape
    k = max(ROW // c, 1)
    while (n * h * w) % k:
        k -= 1
    return y.permute(0, 2, 3, 1).reshape(-1, k * c), k


def _unfold(m: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_fold`: ``m`` as a channels-last tensor of ``like``'s shape."""
    n, c, h, w = like.shape
    return m.reshape(n, h, w, c).permute(0, 3, 1, 2)


def _count(y: torch.Tensor) -> int:
    """Values per channel of ``y`` ``(N, C, H, W)``: N*H*W."""
    return y.numel() // y.shape[1]


def _channel_sum(v: torch.Tensor, k: int) -> torch.Tensor:
    """``(k*C,)`` column values of a folded matrix -> ``(C,)`` per-channel sums."""
    return v.view(k, -1).sum(0)


def _tile(v: torch.Tensor, k: int) -> torch.Tensor:
    """``(C,)`` per-channel values -> ``(k*C,)``, one per column of a folded matrix."""
    return v.expand(k, -1).reshape(-1)


def _statistics(m: torch.Tensor, k: int, count: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean ``(C,)``, r = (biased var + eps)^-1/2 ``(C,)``) of a folded matrix of ``count`` values per channel."""
    mean = _channel_sum(m.sum(0), k) / count
    centred = m - _tile(mean, k)
    var = _channel_sum(torch.linalg.vecdot(centred, centred, dim=0), k) / count
    return mean, (var + eps).rsqrt()


class _BatchNormMaxPool(torch.autograd.Function):
    """y ``(N, C, H, W)`` -> (out ``(N, C, H // 2, W // 2)`` = (maxpool(y) - mean) * r, mean ``(C,)``, r ``(C,)``,
    the pool's int64 indices, shaped as out): the pooled normalised tensor, with the statistics as outputs
    (derivative rules then read saved inputs and outputs only)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(y: torch.Tensor, eps: float):
        m, k = _fold(y)
        mean, r = _statistics(m, k, _count(y), eps)
        pooled, idx = F.max_pool2d(y, 2, return_indices=True)
        p, kp = _fold(pooled)
        return _unfold((p - _tile(mean, kp)).mul_(_tile(r, kp)), pooled), mean, r, idx

    @staticmethod
    def setup_context(ctx, inputs, output):
        out, mean, r, idx = output
        ctx.mark_non_differentiable(idx)
        ctx.save_for_backward(inputs[0], out, mean, r, idx)
        ctx.save_for_forward(inputs[0], out, mean, r, idx)

    @staticmethod
    def backward(ctx, grad_out, grad_mean, grad_r, _grad_idx):
        y, out, mean, r, idx = ctx.saved_tensors
        g, kp = _fold(grad_out)
        o, _ = _fold(out)
        count = _count(y)
        # through the pooled values; the statistics' gradients (out = (p - mean) r, d out / d r = out / r)
        through_pool = torch.ops.aten.max_pool2d_with_indices_backward(
            _unfold(g * _tile(r, kp), grad_out), y, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)
        g_mean = grad_mean - r * _channel_sum(g.sum(0), kp)
        g_r = grad_r + _channel_sum(torch.linalg.vecdot(g, o, dim=0), kp) / r
        # d mean / d y = 1 / count, d r / d y = -r^3 (y - mean) / count: dy = through_pool + a + b y
        b = -g_r * r.pow(3) / count
        a = g_mean / count - b * mean
        s, k = _fold(through_pool)
        ym, _ = _fold(y)
        return _unfold(torch.addcmul(s.add_(_tile(a, k)), ym, _tile(b, k)), y), None

    @staticmethod
    def jvp(ctx, tangent, _eps):
        y, out, mean, r, idx = ctx.saved_tensors
        t, k = _fold(tangent)
        ym, _ = _fold(y)
        count = _count(y)
        t_mean = _channel_sum(t.sum(0), k) / count
        t_r = -r.pow(3) * _channel_sum(torch.linalg.vecdot(ym - _tile(mean, k), t, dim=0), k) / count
        t_pooled, kp = _fold(tangent.flatten(2).gather(2, idx.flatten(2)).reshape(out.shape))
        o, _ = _fold(out)
        # out = (pooled - mean) r, d out / d r = out / r
        t_out = (t_pooled - _tile(t_mean, kp)) * _tile(r, kp) + o * _tile(t_r / r, kp)
        return _unfold(t_out, out), t_mean, t_r, None


def batch_norm_max_pool(y: torch.Tensor, eps: float) -> torch.Tensor:
    """``F.max_pool2d(F.batch_norm(y, None, None, training=True, eps=eps), 2)`` ``(N, C, H // 2, W // 2)`` for
    ``y`` ``(N, C, H, W)`` with at least 2 values per channel, computed as the normalised max-pool of ``y``
    through the folded matrix (module docstring).
    Differentiable (backward, double backward, forward mode) and vmappable."""
    return _BatchNormMaxPool.apply(y, eps)[0]


def matrix_form(norm: nn.Module, y: torch.Tensor) -> bool:
    """Whether ``norm`` normalises ``y`` through the folded matrix: a training-mode ``nn.BatchNorm2d`` without
    running statistics (``track_running_stats`` off, as ``methods.training`` trains) and without affine, on a
    CPU tensor of at most ``MAX_CHANNELS`` channels."""
    return (isinstance(norm, nn.BatchNorm2d) and norm.training and not norm.track_running_stats
            and not norm.affine and y.device.type == "cpu" and y.shape[1] <= MAX_CHANNELS)


def norm_then_pool(norm: nn.Module, pool: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """``pool(norm(y))`` for ``y`` ``(N, C, H, W)`` (an encoder stage): :func:`batch_norm_max_pool` when
    :func:`matrix_form` holds and ``pool`` is a 2x2 max-pool of stride 2 (the module hooks of ``norm`` and
    ``pool`` then do not run), else the two modules."""
    if matrix_form(norm, y) and isinstance(pool, nn.MaxPool2d) and _is_2x2(pool):
        return batch_norm_max_pool(y, norm.eps)
    return pool(norm(y))


def _is_2x2(pool: nn.MaxPool2d) -> bool:
    def pair(v):
        return tuple(v) if isinstance(v, tuple | list) else (v, v)
    return ((pair(pool.kernel_size), pair(pool.stride), pair(pool.padding), pair(pool.dilation), pool.ceil_mode,
             pool.return_indices) == ((2, 2), (2, 2), (0, 0), (1, 1), False, False))
