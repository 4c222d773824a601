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

With ``joint`` (beyond the paper) the labeled set and the mini-batch are scored in one forward pass of
their concatenation, so BatchNorm normalises both with one set of statistics: Omega(x_i) and L_v are then
those of that pass (each depends on the other samples through the statistics), and M_i is the same
derivative of that L_v. Every pass above then covers the n + L samples: ``forward_ad`` makes two forward
passes and one backward pass over them, ``finite_diff`` one forward and one backward pass (the training
step's) and one no-grad forward.

All three act on the run's parameters (``training.RunNet``) with autograd and forward-mode AD, which
compose with ``torch.func`` transforms: the same code runs for one run and, mapped with ``vmap`` over
``grad_and_value``, for a pack of runs (``methods.training``).
"""

from __future__ import annotations

import warnings

import torch
import torch.autograd.forward_ad as fwAD
from torch.func import grad, grad_and_value
from torch.profiler import record_function

from elite_exp.errors import ConfigError
from elite_exp.methods.losses import anomaly_loss, hinge_loss, loe_losses, validation_loss
from elite_exp.methods.training import RunNet

# torch's forward-mode AD scripts a helper on first use and warns that scripting is deprecated:
# an internal matter of torch that users cannot act on
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)

META_GRADIENTS = ("forward_ad", "finite_diff", "double_backward")
# finite-difference step, relative: ||h g|| = FD_STEP * ||theta|| (in float32 the best trade-off between
# truncation and rounding error measured on the MNIST nets: about 0.3% relative error of M)
FD_STEP = 1e-5
UPDATES = ("paper", "reweight", "loe")


def _validation_gradient(lv: torch.Tensor, net: RunNet, retain_graph: bool = False) -> dict[str, torch.Tensor]:
    """grad L_v(theta) (zeros for parameters L_v does not reach)."""
    with record_function("elite.validation_gradient"):
        grads = torch.autograd.grad(lv, list(net.params.values()), allow_unused=True, retain_graph=retain_graph)
    return {k: torch.zeros_like(p) if g is None else g for (k, p), g in zip(net.params.items(), grads)}


def _norm(tensors) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))


def meta_gradients(net: RunNet, x: torch.Tensor, val_x: torch.Tensor, val_anomaly: torch.Tensor,
                   margin, step_size: float, method: str = "forward_ad", joint: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Return (scores ``(n,)`` of ``x`` with their autograd graph, meta-gradients M ``(n,)`` (detached),
    L_v (detached, 0-d), scores ``(L,)`` of ``val_x`` with their graph when ``joint``, else None) for one run's
    network ``net`` (``RunNet.of(module)`` for a module), the labeled set ``val_x`` with ``val_anomaly`` (bool)
    and the margin C ``margin`` (a number or a 0-d tensor).

    Every forward pass is a training-mode pass with batch statistics: the labeled set's own (the paper's
    validation pass), or with ``joint`` (beyond the paper) those of the mini-batch and the labeled set together,
    one forward pass of both, so that L_v and the scores it is steered by share one normalisation. Call it inside
    ``training.untracked_batch_norm`` (the training loop does): BatchNorm then updates no running statistics,
    which a pass under ``vmap`` or ``grad_and_value`` could not.
    """
    n = x.shape[0]
    batch = torch.cat([x, val_x]) if joint else x  # what a training-step forward pass scores

    def split(scored: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A pass over ``batch`` -> (scores of x, scores of the labeled set when joint, else None)."""
        return scored[:n], (scored[n:] if joint else None)

    def labeled_loss(at: RunNet, scored: torch.Tensor | None = None) -> torch.Tensor:
        """L_v at ``at``: the labeled part of ``scored`` (a pass over ``batch``) or of a new pass when joint,
        else of a pass over the labeled set alone."""
        with record_function("elite.validation_pass"):
            if not joint:
                return validation_loss(at(val_x), val_anomaly, margin)
            return validation_loss((at(batch) if scored is None else scored)[n:], val_anomaly, margin)

    if method == "forward_ad":
        lv = labeled_loss(net)
        grads = _validation_gradient(lv, net)
        with record_function("elite.dual_forward"), fwAD.dual_level():
            duals = {k: fwAD.make_dual(p, grads[k]) for k, p in net.params.items()}
            scored, tangent = fwAD.unpack_dual(net.at(duals)(batch))
        scores, lab = split(scored)
        return scores, tangent[:n].detach() * (-step_size / n), lv.detach(), lab
    if method == "finite_diff":
        scored = net(batch)
        lv = labeled_loss(net, scored)
        grads = _validation_gradient(lv, net, retain_graph=joint)  # joint: the step's loss backpropagates it too
        with torch.no_grad():
            params = {k: p.detach() for k, p in net.params.items()}
            g_norm = _norm(grads.values())
            h = FD_STEP * _norm(params.values()) / g_norm.clamp_min(torch.finfo(g_norm.dtype).tiny)
            with record_function("elite.shifted_forward"):
                ahead = net.at({k: p + h * grads[k] for k, p in params.items()})(batch)
        scores, lab = split(scored)
        m = (ahead[:n] - scores.detach()) * (-step_size / n / h)
        return scores, m, lv.detach(), lab
    if method == "double_backward":
        scored = net(batch)

        def lookahead_loss(eps):
            step = grad(lambda p: (eps * net.at(p)(batch)[:n]).sum() / n)(net.params)
            return labeled_loss(net.at({k: p - step_size * step[k] for k, p in net.params.items()}))

        m, lv = grad_and_value(lookahead_loss)(torch.zeros(n, device=x.device, dtype=scored.dtype))
        scores, lab = split(scored)
        return scores, m.detach(), lv.detach(), lab
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
