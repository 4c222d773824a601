"""The training losses the methods share (scores: higher = more anomalous).

ELITE's hinge loss (Eq. 4 of the paper) and validation loss (Eq. 6), used by ELITE and the
labels-only ablation; Deep SAD's loss (Ruff et al., ICLR 2020; Eq. 3 of the ELITE paper); and the
anomaly loss L_a = 1 / (L_n + eps) with LOE's per-sample losses (Qiu et al., ICML 2022), used by
LOE, SOEL and ELITE's ``update='loe'``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-6  # Deep SAD's eps in 1 / (d + eps) (its reference implementation), also LOE's L_a
SOFT_WEIGHT = 0.5  # LOE_S: weight of L_a (and of L_n) on a latent anomaly


def hinge_loss(scores: torch.Tensor, is_anomaly: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 4 per sample, (B,) -> (B,): Omega(x) for normal samples, max(C - Omega(x), 0) for anomalies."""
    return torch.where(is_anomaly, F.relu(margin - scores), scores)


def validation_loss(scores: torch.Tensor, is_anomaly: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 6 with class balance, (B,) -> (): 0.5 * mean over labeled normals + 0.5 * mean over labeled
    anomalies (equal to the plain mean for the protocol's balanced labeled set)."""
    per_sample = hinge_loss(scores, is_anomaly, margin)
    n_anom = is_anomaly.sum()
    n_norm = is_anomaly.numel() - n_anom
    w = torch.where(is_anomaly, 0.5 / n_anom.clamp_min(1), 0.5 / n_norm.clamp_min(1))
    return (w * per_sample).sum()


def deep_sad_loss(d: torch.Tensor, target: torch.Tensor, eta: float) -> torch.Tensor:
    """Deep SAD's mini-batch loss, (B,) -> (): with squared distance d, d for unlabeled samples
    (``target`` 0), eta * d for labeled normals (+1), eta / (d + eps) for labeled anomalies (-1; the
    reference implementation's semi_targets)."""
    return torch.where(target == 0, d, eta * (d + EPS).pow(target)).mean()


def deep_sad_hinge_loss(scores: torch.Tensor, target: torch.Tensor, eta: float,
                        margin: float | torch.Tensor) -> torch.Tensor:
    """Deep SAD's mini-batch loss with ELITE's Eq. 4 as its labeled terms (the paper's Fig. 7, Sec. 5.5.1),
    (B,) -> (): the score for unlabeled samples (``target`` 0), eta * the score for labeled normals (+1),
    eta * max(C - score, 0) for labeled anomalies (-1), C = ``margin`` (a number or a 0-d tensor)."""
    labeled = eta * hinge_loss(scores, target < 0, margin)
    return torch.where(target == 0, scores, labeled).mean()


def anomaly_loss(l_n: torch.Tensor) -> torch.Tensor:
    """L_a = 1 / (L_n + eps) per sample, (B,) -> (B,)."""
    return 1.0 / (l_n + EPS)


def supervised_loss(l_n: torch.Tensor, is_anomaly: torch.Tensor) -> torch.Tensor:
    """SOEL's loss of labeled samples, (B,) -> (): the mean of L_n over labeled normals and of
    L_a = 1 / (L_n + eps) over labeled anomalies, as one mean (Deep SAD's labeled terms with eta = 1 when
    L_n is the squared distance, as SOEL's is; ELITE's score is the distance unless ``squared``)."""
    return torch.where(is_anomaly, anomaly_loss(l_n), l_n).mean()


def loe_losses(l_n: torch.Tensor, l_a: torch.Tensor, flags: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-sample LOE loss, (B,): L_n for normals; for latent anomalies (``flags``) L_a (``hard``)
    or 0.5 L_n + 0.5 L_a (``soft``)."""
    w = 1.0 if mode == "hard" else SOFT_WEIGHT
    return torch.where(flags, w * l_a + (1.0 - w) * l_n, l_n)
