"""The per-run figure ``scores.png``: how one run's scores separate normals from anomalies.

Panels: (a) histograms of the test scores of normals and anomalies (densities, shared bins)
with the ``predict`` threshold; (b) the test ROC curve with its AUC; (c, ELITE only) the
histogram of each training sample's mean y_hat * |M| (``meta_scores.csv``) for true normals
and anomalies, Fig. 7 (c) of the paper for this run. Drawn with matplotlib's object API (no
pyplot, no global state); 0.15-0.3 s per figure on one CPU core.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from elite_exp.records import atomic_write

COLORS = {"normal": "tab:blue", "anomaly": "tab:red"}


def power_of_ten(values: np.ndarray) -> tuple[np.ndarray, str]:
    """``values`` over the power of ten of their largest magnitude, and the axis-label suffix that says it
    (``" (x 1e-05)"``; empty when it is 1): meta-gradients are about 1e-6 and their ticks unreadable as they are."""
    top = float(np.nanmax(np.abs(values))) if len(values) else 0.0
    exponent = int(np.floor(np.log10(top))) if top > 0 and np.isfinite(top) else 0
    return (values / 10.0 ** exponent, f" (x 1e{exponent:+03d})") if exponent else (values, "")


def _histograms(ax, values: np.ndarray, anomaly: np.ndarray) -> None:
    """Density histograms of ``values`` for anomaly == 0 and == 1 on shared bins."""
    bins = np.histogram_bin_edges(values, bins=40)
    for name, mask in (("normal", anomaly == 0), ("anomaly", anomaly == 1)):
        if mask.any():
            ax.hist(values[mask], bins=bins, density=True, alpha=0.5, color=COLORS[name],
                    label=f"{name} ({mask.sum()})")


def save_run_figure(path: Path, test_anomaly: np.ndarray, test_scores: np.ndarray, threshold: float,
                    meta_scores: pd.DataFrame | None = None) -> None:
    """Write the figure to ``path`` (PNG).

    ``test_anomaly``: (n_test,) 0/1, 1 = anomaly; ``test_scores``: (n_test,) the detector's
    ``decision_function`` (higher = more anomalous); ``threshold``: its ``threshold_`` (``predict``
    flags scores above it); ``meta_scores``: ELITE's per-sample table with columns ``anomaly``
    and ``meta_score`` (y_hat * |M|), or None / empty for the two-panel figure. Both test
    classes must be present (the ROC curve needs them); otherwise raises ValueError.
    """
    test_anomaly = np.asarray(test_anomaly)
    test_scores = np.asarray(test_scores, dtype=float)
    with_meta = meta_scores is not None and len(meta_scores) > 0
    fig = Figure(figsize=(4.2 * (2 + with_meta), 3.4), layout="constrained")
    axes = fig.subplots(1, 2 + with_meta)

    _histograms(axes[0], test_scores, test_anomaly)
    axes[0].axvline(threshold, color="black", linestyle="--", label="threshold")
    axes[0].set(xlabel="test score (higher = more anomalous)", ylabel="density", title="(a) test scores")
    axes[0].legend(fontsize="small")

    fpr, tpr, _ = roc_curve(test_anomaly, test_scores)
    axes[1].plot(fpr, tpr, color="black")
    axes[1].plot([0, 1], [0, 1], color="grey", linestyle=":")
    axes[1].set(xlabel="false positive rate", ylabel="true positive rate",
                title=f"(b) test ROC, AUC {roc_auc_score(test_anomaly, test_scores):.3f}")

    if with_meta:
        meta, scale = power_of_ten(meta_scores["meta_score"].to_numpy())
        _histograms(axes[2], meta, meta_scores["anomaly"].to_numpy())
        axes[2].axvline(0.0, color="black", linestyle=":")
        axes[2].set(xlabel=f"mean y_hat * |M|{scale} (> 0: taken as normal)", ylabel="density",
                    title="(c) ELITE on the training set")
        axes[2].legend(fontsize="small")
    atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=90))
