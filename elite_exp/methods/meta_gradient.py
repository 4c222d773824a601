"""ELITE's meta-gradients and its training loss (Sec. 4 and Algorithm 1 of the paper).

For a mini-batch x_1..x_n with pseudo-label weights eps_i (all 0), one look-ahead step

    theta_hat(eps) = theta - eta_theta / n * sum_i eps_i * grad Omega(x_i; theta)

and the validation loss L_v on the labeled set, the meta-gradient is

    M_i = dL_v(theta_hat(eps)) / deps_i |_{eps=0} = -eta_theta / n * <grad L_v(theta), grad Omega(x_i; theta)>.

``forward_ad`` computes every M_i with one gradient of L_v (a backward pass over the small
labeled set) and one forward pass whose parameters carry that gradient as a tangent: the
same pass yields the batch scores for the training step, so no model copy, no double
backward and no per-sample loop is needed. ``finite_diff`` replaces the forward-mode pass
by the one-sided difference (Omega(theta + h g) - Omega(theta)) / h along g = grad L_v: the
training step's own forward gives Omega(theta), so the only extra work is one no-grad
forward. ``double_backward`` is the literal definition (the official code's approach),
kept as the reference the fast paths are tested against.
"""

from __future__ import annotations

import warnings

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn
from torch.func import functional_call
from torch.profiler import record_function

from elite_exp.errors import ConfigError
from elite_exp.methods.losses import anomaly_loss, hinge_loss, loe_losses, validation_loss
from elite_exp.scores import batch_statistics

# torch's forward-mode AD scripts a helper on first use and warns that scripting is deprecated:
# an internal matter of torch that users cannot act on
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)

META_GRADIENTS = ("forward_ad", "finite_diff", "double_backward")
# finite-difference step, relative: ||h g|| = FD_STEP * ||theta|| (in float32 the best trade-off between
# truncation and rounding error measured on the MNIST nets: about 0.3% relative error of M)
FD_STEP = 1e-5
UPDATES = ("paper", "reweight", "loe")


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p for k, p in module.named_parameters() if p.requires_grad}


def _validation_gradient(module: nn.Module, params: dict[str, torch.Tensor], val_x: torch.Tensor,
                         val_anomaly: torch.Tensor, margin: float) -> tuple[list[torch.Tensor], torch.Tensor]:
    """grad L_v(theta) (zeros for parameters L_v does not reach) and L_v, with batch statistics."""
    with record_function("elite.validation_gradient"), batch_statistics(module):
        lv = validation_loss(module(val_x), val_anomaly, margin)
        grads = torch.autograd.grad(lv, list(params.values()), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params.values(), grads)], lv.detach()


def meta_gradients(module: nn.Module, x: torch.Tensor, val_x: torch.Tensor, val_anomaly: torch.Tensor,
                   margin: float, step_size: float, method: str = "forward_ad"
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (scores of ``x`` with their autograd graph, meta-gradients M (detached), L_v (detached)).

    The scores come from a train-mode forward pass (it counts as the training step's forward
    pass and updates BatchNorm running statistics); every other forward pass uses batch
    statistics without updating them.
    """
    params = _params(module)
    n = x.shape[0]
    if method == "forward_ad":
        grads, lv = _validation_gradient(module, params, val_x, val_anomaly, margin)
        with record_function("elite.dual_forward"), fwAD.dual_level():
            duals = {k: fwAD.make_dual(p, g) for (k, p), g in zip(params.items(), grads)}
            scores, tangent = fwAD.unpack_dual(functional_call(module, duals, (x,), strict=False))
        return scores, tangent.detach().mul_(-step_size / n), lv
    if method == "finite_diff":
        scores = module(x)
        grads, lv = _validation_gradient(module, params, val_x, val_anomaly, margin)
        with torch.no_grad():
            g_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            p_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(params.values()))))
            h = FD_STEP * p_norm / g_norm.clamp_min(torch.finfo(g_norm.dtype).tiny)
            shifted = dict(zip(params, torch._foreach_add(list(params.values()), torch._foreach_mul(grads, h))))
            with record_function("elite.shifted_forward"), batch_statistics(module):
                ahead = functional_call(module, shifted, (x,), strict=False)
            m = (ahead - scores.detach()).mul_(-step_size / n / h)
        return scores, m, lv
    if method == "double_backward":
        scores = module(x)
        eps = torch.zeros(n, device=x.device, dtype=scores.dtype, requires_grad=True)
        grads = torch.autograd.grad((eps * scores).sum() / n, list(params.values()), create_graph=True,
                                    allow_unused=True)
        lookahead = {k: p if g is None else p - step_size * g for (k, p), g in zip(params.items(), grads)}
        with batch_statistics(module):
            lv = validation_loss(functional_call(module, lookahead, (val_x,), strict=False), val_anomaly, margin)
        (m,) = torch.autograd.grad(lv, eps, retain_graph=True)
        return scores, m.detach(), lv.detach()
    raise ConfigError(f"meta_grad={method!r} is not allowed; allowed: {', '.join(META_GRADIENTS)}")


def elite_loss(scores: torch.Tensor, m: torch.Tensor, margin: float, update: str, eta_m: float,
               normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss of one ELITE step and the inferred anomaly labels (y_hat = -1 <=> True).

    ``paper``: y_hat_i = -sign(M_i), alpha_i = eta_M * |M_i|, loss = mean_i alpha_i * l(x_i, y_hat_i) (Eq. 14).
    ``reweight``: loss = mean_i eta_M * (-M_i) * Omega(x_i) (signed weights, no hinge; official code).
    ``loe`` (beyond the paper): the labels and weights of ``paper`` with LOE_H's losses instead of the
    hinge (``methods.losses.loe_losses``): Omega(x_i) for inferred normals, L_a = 1 / (Omega(x_i) + 1e-6)
    for inferred anomalies (Deep SAD's and LOE's anomaly term, on ELITE's Omega: the distance, not its
    square, unless ``squared``). The push on an inferred anomaly fades as it moves away instead of
    stopping at the margin C; the training loss has no C (L_v, and so M, still uses it).
    ``normalize`` divides M by its batch mean magnitude, so the step size does not vanish with
    eta_theta (|M| scales with the learning rate); eta_M then scales the step.
    """
    if normalize:
        m = m / m.abs().mean().clamp_min(torch.finfo(m.dtype).tiny)
    is_anomaly = m > 0
    if update == "paper":
        loss = (eta_m * m.abs() * hinge_loss(scores, is_anomaly, margin)).mean()
    elif update == "reweight":
        loss = (eta_m * (-m) * scores).mean()
    elif update == "loe":
        loss = (eta_m * m.abs() * loe_losses(scores, anomaly_loss(scores), is_anomaly, "hard")).mean()
    else:
        raise ConfigError(f"update={update!r} is not allowed; allowed: {', '.join(UPDATES)}")
    return loss, is_anomaly
