"""SSAD (Goernitz, Kloft, Rieck, Brefeld, JAIR 2013): shallow semi-supervised SVDD, RBF kernel.

Primal, with y_i = +1 for unlabeled samples and labeled normals, -1 for labeled anomalies:

    min_{R, c, xi >= 0, gamma >= 0}  R^2 - kappa * gamma + C_u * sum_unl xi_i + C_l * sum_lab xi_j
    s.t.  ||phi(x_i) - c||^2 <= R^2 + xi_i                        (unlabeled)
          y_j (||phi(x_j) - c||^2 - R^2) <= -gamma + xi_j          (labeled)

Its dual is the convex QP solved here with OSQP:

    min_alpha  alpha^T (y y^T o K) alpha - sum_i alpha_i y_i K_ii
    s.t.  sum_i y_i alpha_i = 1,  sum_lab alpha_j >= kappa,  0 <= alpha_i <= C_i,

and c = sum_i alpha_i y_i phi(x_i); the score is ||phi(x) - c||^2. For the RBF kernel this is
the same model as the hyperplane form of Deep SAD's SSAD baseline (K_ii = 1). C_u = 1 / (nu * n_unl)
(the nu-parametrisation: at most a fraction nu of the unlabeled samples lie outside the ball);
the reference's C_u = 1 makes the ball hard-margin (nu -> 1/n), which the polluted training
set punishes (MNIST class 0, r_p 0.1: test AUC 0.82 with C_u = 1, 0.97 with nu = 0.1).

Scale: the dense 5000 x 5000 kernel QP takes minutes per solve in OSQP's sparse factorisation,
so the kernel is replaced by its Nystroem approximation K ~ F F^T of rank ``n_landmarks``
(landmarks drawn uniformly from the training set; ``n_landmarks=0`` or >= n is the exact
kernel). With w = F^T (y o alpha) the QP has n + r variables and the quadratic term w^T w.
Kernel width: gamma = 1 / median of the squared pairwise distances of (up to 1000 random)
training samples (the median heuristic; no labels involved). ``hybrid=True`` applies all of
this to the features of an auto-encoder trained on the training set (Deep SAD's hybrid SSAD).
"""

from __future__ import annotations

import logging

import numpy as np
import osqp
import scipy.sparse as sp
import torch
import torch.nn as nn

from elite_exp.errors import ConfigError
from elite_exp.methods.autoencoder import pretrained_encoder
from elite_exp.methods.base import DeepDetector, each_run
from elite_exp.networks import build_encoder
from elite_exp.scores import Score, recompute_bn_statistics

log = logging.getLogger(__name__)

MEDIAN_SAMPLES = 1000
TOLERANCE = 1e-4  # OSQP's eps_abs = eps_rel; scores agree with a 1e-8 solve to ~1e-3


def rbf(a: torch.Tensor, b: torch.Tensor, gamma: torch.Tensor | float) -> torch.Tensor:
    return torch.exp(-gamma * torch.cdist(a, b).pow(2))


def median_gamma(f: torch.Tensor, generator: torch.Generator) -> float:
    """The median heuristic: 1 / median squared distance between distinct samples."""
    idx = torch.randperm(len(f), generator=generator)[:MEDIAN_SAMPLES].to(f.device)
    d2 = torch.cdist(f[idx], f[idx]).pow(2)
    d2 = d2[~torch.eye(len(idx), dtype=torch.bool, device=f.device)]
    med = float(d2.median()) if len(d2) else 0.0
    return 1.0 / med if med > 0 else 1.0


class KernelSSADScore(Score):
    """Squared distance to the centre c in the RBF feature space, c in the span of the (Nystroem)
    features f(x) = k(x, landmarks) @ projection, on the encoder's features (``hybrid``) or the raw input."""

    BUFFERS = ("landmarks", "projection", "center", "gamma")

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        for name in self.BUFFERS:
            self.register_buffer(name, torch.zeros(0))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).flatten(1)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return rbf(self.features(x), self.landmarks, self.gamma) @ self.projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """||phi(x) - c||^2 = k(x, x) - 2 <phi(x), c> + ||c||^2 with k(x, x) = 1 (RBF)."""
        return 1.0 - 2.0 * self.feature_map(x) @ self.center + self.center.pow(2).sum()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self.BUFFERS:  # the fitted sizes are known only from the saved state
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def solve_ssad_dual(F: np.ndarray, y: np.ndarray, c: np.ndarray, labeled: np.ndarray, kappa: float) -> np.ndarray:
    """The SSAD dual with K = F F^T off the diagonal and K_ii = 1 (RBF), in the variables
    (alpha, w = F^T (y o alpha)); returns w = c."""
    n, r = F.shape
    P = sp.block_diag([sp.csc_matrix((n, n)), 2.0 * sp.eye(r)], format="csc")
    q = np.concatenate([-y, np.zeros(r)])
    rows = [sp.hstack([sp.csc_matrix(F.T * y), -sp.eye(r)]), sp.hstack([sp.csc_matrix(y[None]), sp.csc_matrix((1, r))])]
    lo, hi = [np.zeros(r), [1.0]], [np.zeros(r), [1.0]]
    if labeled.any():
        rows.append(sp.hstack([sp.csc_matrix(labeled[None].astype(float)), sp.csc_matrix((1, r))]))
        lo.append([kappa])
        hi.append([np.inf])
    rows.append(sp.hstack([sp.eye(n), sp.csc_matrix((n, r))]))
    lo.append(np.zeros(n))
    hi.append(c)
    solver = osqp.OSQP()
    solver.setup(P, q, sp.vstack(rows, format="csc"), np.concatenate(lo), np.concatenate(hi), verbose=False,
                 eps_abs=TOLERANCE, eps_rel=TOLERANCE, max_iter=20000)
    res = solver.solve()
    status = res.info.status
    if status not in ("solved", "solved inaccurate"):
        raise RuntimeError(f"SSAD: OSQP stopped with status {status!r}")
    if status != "solved":
        log.warning("SSAD: OSQP status %r after %d iterations", status, res.info.iter)
    return res.x[n:]


class SSAD(DeepDetector):
    """Semi-supervised SVDD with an RBF kernel (see the module docstring). The training
    settings (``epochs``, ``lr``, ...) and ``network`` are used only by the auto-encoder of the
    ``hybrid`` variant."""

    trains_on = "all"

    def __init__(self, kappa: float = 1.0, nu: float = 0.1, c_labeled: float = 1.0, hybrid: bool = False,
                 n_landmarks: int = 500, network=None, epochs: int = 30, batch_size: int = 128, lr: float = 1e-4,
                 optimizer: str = "adam", weight_decay: float = 1e-6, contamination: float = 0.1,
                 device: str = "auto", random_state: int = 0, progress: bool = False):
        self._keep_params(locals())

    def _check_params(self) -> None:
        for name in ("kappa", "c_labeled"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)} is not allowed; it must be > 0")
        if not 0 < self.nu <= 1:
            raise ConfigError(f"nu={self.nu} is not allowed; it must lie in (0, 1]")
        if self.n_landmarks < 0:
            raise ConfigError(f"n_landmarks={self.n_landmarks} is not allowed; it must be >= 0 (0 = exact kernel)")

    def _build_module(self, input_shape):
        return KernelSSADScore(build_encoder(self._spec(input_shape), input_shape) if self.hybrid else nn.Flatten())

    @torch.no_grad()
    def _features(self, module: KernelSSADScore, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
        module.eval()
        return torch.cat([module.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).double()

    def _train(self, runs) -> None:
        """A kernel machine, not trained by steps: the runs of a pack are solved one by one."""
        each_run(runs, lambda run: run.est._solve(run.module, run.x_unl, run.x_lab, run.y_lab))

    def _solve(self, module, x_unl, x_lab, y_lab) -> None:
        x = torch.cat([x_unl, x_lab])
        if self.hybrid:
            s = self._settings()
            state, self.pretraining_ = pretrained_encoder(self._spec(self.input_shape_), self.input_shape_, x, s,
                                                          int(self.random_state), self.progress)
            module.encoder.load_state_dict(state)
            # the feature map runs in eval mode: with the trained encoder's statistics on x
            recompute_bn_statistics(module.encoder, x, s.batch_size)
        f = self._features(module, x)
        gen = self._generator()
        gamma = median_gamma(f, gen)
        r = len(f) if self.n_landmarks == 0 else min(self.n_landmarks, len(f))
        landmarks = f[torch.randperm(len(f), generator=gen)[:r].to(f.device)]
        evals, evecs = torch.linalg.eigh(rbf(landmarks, landmarks, gamma))
        projection = evecs / evals.clamp_min(evals.max() * 1e-10).sqrt()
        feats = (rbf(f, landmarks, gamma) @ projection).cpu().numpy()

        y = np.concatenate([np.ones(len(x_unl)), 1.0 - 2.0 * y_lab.cpu().numpy()])
        c_unl = 1.0 / (self.nu * len(x_unl)) if len(x_unl) else 0.0
        c = np.concatenate([np.full(len(x_unl), c_unl), np.full(len(x_lab), self.c_labeled)])
        labeled = np.arange(len(x)) >= len(x_unl)
        center = solve_ssad_dual(feats, y, c, labeled, self.kappa)
        dtype = torch.get_default_dtype()
        module.landmarks = landmarks.to(dtype)
        module.projection = projection.to(dtype)
        module.center = torch.as_tensor(center, dtype=dtype, device=f.device)
        module.gamma = torch.tensor(gamma, dtype=dtype, device=f.device)
        self.gamma_ = gamma
