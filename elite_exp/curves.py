"""Per-iteration training records for Figure 7: test AUC, losses, ELITE's y_hat * |M|, and the labels
a method infers for its unlabeled samples (ELITE, LOE, SOEL: ``extra['anomaly_hat']``).

A :class:`TrainingRecorder` is the ``monitor`` a run passes to ``fit``. It knows which
unlabeled samples are truly anomalous (for reporting only; the method never sees this).
Batch indices beyond the unlabeled samples (the labeled ones, which unsupervised methods train
on as unlabeled, come after them) have no hidden truth and are not counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from elite_exp.methods.training import StepInfo


class TrainingRecorder:
    def __init__(self, estimator, x_test: torch.Tensor, test_anomaly: np.ndarray, unlabeled_anomaly: np.ndarray,
                 every: int = 0, meta_iterations: int = 500):
        self.estimator = estimator
        self.x_test = x_test
        self.test_anomaly = test_anomaly
        self.every = every
        self.meta_iterations = meta_iterations
        self.truth = torch.as_tensor(unlabeled_anomaly, dtype=torch.bool)
        self.reset()

    def reset(self) -> None:
        """Forget every step seen (a run trained again from its start)."""
        n = len(self.truth)
        self._meta_sum = torch.zeros(n, dtype=torch.float64)
        self._meta_count = torch.zeros(n, dtype=torch.int64)
        self._flag_sum = torch.zeros(n, dtype=torch.float64)
        self._has_meta = False
        self.rows: list[dict] = []

    def __call__(self, info: StepInfo) -> None:
        m = info.extra.get("meta_gradient")
        flags = info.extra.get("anomaly_hat")
        record_labels = flags is not None and info.iteration <= self.meta_iterations
        record_row = self.every and info.iteration % self.every == 0
        if not (record_labels or record_row):
            return  # nothing to copy off the device on this step
        idx = info.index.cpu()
        if record_labels:
            known = idx < len(self.truth)
            self._meta_count.index_add_(0, idx[known], torch.ones_like(idx[known]))
            self._flag_sum.index_add_(0, idx[known], flags.double().cpu()[known])
            if m is not None:
                # y_hat * |M| = -sign(M) * |M| = -M: positive for samples ELITE takes as normal
                self._meta_sum.index_add_(0, idx[known], (-m).double().cpu()[known])
                self._has_meta = True
        if record_row:
            row = {"iteration": info.iteration, "epoch": info.epoch, "train_loss": info.loss}
            if "val_loss" in info.extra:
                row["labeled_loss"] = float(info.extra["val_loss"])
            if m is not None:
                truth = self.truth[idx]
                neg_m = (-m).cpu()
                row["meta_normal_mean"] = float(neg_m[~truth].mean()) if (~truth).any() else np.nan
                row["meta_anomaly_mean"] = float(neg_m[truth].mean()) if truth.any() else np.nan
            scores = self.estimator.score_while_fitting(self.x_test)
            row["test_auc"] = float(roc_auc_score(self.test_anomaly, scores))
            self.rows.append(row)

    def curves(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def meta_scores(self) -> pd.DataFrame:
        """Per training sample: mean y_hat * |M| over the first ``meta_iterations`` iterations
        (ELITE; empty for methods without meta-gradients)."""
        seen = (self._meta_count > 0) & self._has_meta
        idx = torch.nonzero(seen).squeeze(1)
        return pd.DataFrame({"sample": idx.numpy(), "anomaly": self.truth[idx].numpy().astype(int),
                             "meta_score": (self._meta_sum[idx] / self._meta_count[idx]).numpy(),
                             "flagged_fraction": (self._flag_sum[idx] / self._meta_count[idx]).numpy(),
                             "count": self._meta_count[idx].numpy()})

    def inference_quality(self) -> dict:
        """How well the inferred labels (ELITE, LOE, SOEL) match the hidden truth over the recorded
        iterations; ``meta_auc`` for ELITE only."""
        seen = self._meta_count > 0
        if not seen.any():
            return {}
        flagged = self._flag_sum[seen] / self._meta_count[seen]
        truth = self.truth[seen]
        out = {"flagged_rate_normals": float(flagged[~truth].mean()) if (~truth).any() else None,
               "flagged_rate_anomalies": float(flagged[truth].mean()) if truth.any() else None}
        if self._has_meta and truth.any() and (~truth).any():
            meta = self._meta_sum[seen] / self._meta_count[seen]
            out["meta_auc"] = float(roc_auc_score(truth.numpy(), -meta.numpy()))
        return out
