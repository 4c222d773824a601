"""Draw the paper's Figures 3-7 (PNG and PDF) from whatever runs exist.

``python -m elite_exp.figures <run folders or roots...> [--out DIR] [--only FIGS] [--eta-m VALUES]``
(``make figures``).
Figs. 3-6: test ROC AUC averaged over normal classes, error bars = std over seeds, one line per
method (Fig. 6: per data set); a missing cell is a gap in its line, never interpolated.
Fig. 7: (a) test AUC and (b) labeled loss over iterations, ELITE vs Deep SAD on FMNIST (runs with
``curves_every>0``, averaged over runs); (c) histogram of y_hat * |M| of true normals vs anomalies
(ELITE on MNIST, r_p 0.5, the data set's n_labels; first ``meta_iterations`` iterations).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from elite_exp.config import Config  # noqa: E402
from elite_exp.records import RECORD_FORMAT, atomic_write  # noqa: E402
from elite_exp.report import (  # noqa: E402
    DATA_LABELS,
    METHOD_ORDER,
    Figure,
    chosen,
    method_label,
    run_cli,
    select,
    summarise,
)
from elite_exp.run_figure import power_of_ten  # noqa: E402

log = logging.getLogger(__name__)

DATA_ORDER = ["mnist", "fmnist", "cifar10"]
# Fig. 7 (a, b): ELITE, Deep SAD trained as the paper's Fig. 7 trains it (ELITE's Eq. 4) and with its own loss
# (Eq. 3), as (method, the method whose colour it takes, line style): one colour for Deep SAD, dashed for Eq. 4
FIG7_LINES = (("elite_svdd", "elite_svdd", "-"), ("deepsad_every_batch_hinge", "deepsad_every_batch", "--"),
              ("deepsad_every_batch", "deepsad_every_batch", "-"))
FIG7_METHODS = tuple(method for method, _, _ in FIG7_LINES)


def _rank(name: str, order: list[str]) -> tuple[int, str]:
    return (order.index(name) if name in order else len(order), name)


# one colour per method of METHOD_ORDER (a test checks there are enough): tab20's dark shades first, then
# its light ones, then tab20b's
COLORS = [matplotlib.colormaps["tab20"](i) for i in [*range(0, 20, 2), *range(1, 20, 2)]] + ["black", "gold"] + [
    matplotlib.colormaps["tab20b"](i) for i in [*range(0, 20, 2), *range(1, 20, 2)]]
MARKERS = "os^vDPX*h<>p"


def _slot(name: str, order: list[str]) -> int:
    return order.index(name) if name in order else len(order) + zlib.crc32(name.encode())


def _color(name: str, order: list[str]) -> str:
    """The same colour for a method (or data set) in every panel and figure."""
    return COLORS[_slot(name, order) % len(COLORS)]


def _marker(name: str, order: list[str]) -> str:
    """A marker per method, so methods with equal values stay visible."""
    return MARKERS[_slot(name, order) % len(MARKERS)]


def _no_runs(ax: plt.Axes) -> None:
    ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes, color="0.4")


# no creation date in the files: the same runs draw byte-identical figures (a republished folder shows no change)
NO_DATE = {"png": {"Software": None}, "pdf": {"CreationDate": None}}


def _save(fig: plt.Figure, out: Path, name: str) -> list[Path]:
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for p in paths:
        atomic_write(p, lambda fh, kind=p.suffix[1:]: fig.savefig(fh, format=kind, dpi=150, bbox_inches="tight",
                                                                  metadata=NO_DATE[kind]))
    plt.close(fig)
    return paths


def draw_auc_figure(runs: pd.DataFrame, spec: Figure, out: Path) -> list[Path]:
    """One panel per data set: AUC vs ``spec.x``, one line per method (per data set for Fig. 6)."""
    _, avg = summarise(runs, spec)
    if avg.empty:
        log.info("%s: no finished run with %s, not drawn", spec.name, spec.fixed())
        return []
    datasets = sorted(set(avg["data"]), key=lambda d: _rank(d, DATA_ORDER))
    one_panel = spec.name == "fig6"
    panels = [None] if one_panel else datasets
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, data in zip(axes[0], panels):
        part = avg if data is None else avg[avg["data"] == data]
        # every x of the figure (label grids differ per data set): a missing cell is a gap in its line
        xs = np.sort((part if spec.x == "n_labels" else avg)[spec.x].unique())
        groups = sorted(part.groupby(["data", "method", "epochs", "n_train"]),
                        key=lambda g: (_rank(g[0][1], list(METHOD_ORDER)), g[0]))
        for (d, method, _epochs, _n_train), line in groups:
            # markers at the measured cells only; the line joins them (no marker: no run)
            line = line.set_index(spec.x).sort_index()
            label = method_label(method)
            color = _color(method, list(METHOD_ORDER))
            if one_panel:
                label = f"{DATA_LABELS.get(d, d)} {label}"
                color = _color(d, DATA_ORDER)
            dashed = method.startswith("labels") if not one_panel else not method.endswith("svdd")
            ax.errorbar(line.index, line["mean"], yerr=line["std"].fillna(0), label=label, color=color,
                        marker=_marker(method, list(METHOD_ORDER)), ms=4, capsize=2, ls="--" if dashed else "-")
        ax.set_xlabel(spec.x_label)
        ax.set_ylabel("ROC AUC")
        ax.set_title("all data sets" if data is None else DATA_LABELS.get(data, data))
        ax.grid(alpha=0.3)
        if spec.x == "eta_m":
            ax.set_xscale("log")
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if len(panels) == 1:  # beside the panel: below it, a wide legend would squeeze it into a strip
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), ncol=1 + len(labels) // 16,
                   frameon=False)
    else:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 5),
                   frameon=False)
    fig.suptitle(spec.title)
    fig.tight_layout()
    return _save(fig, out, spec.name)


def _read_run_csvs(runs: pd.DataFrame, name: str) -> pd.DataFrame:
    """The ``name`` CSV of every run that has one, with its run_dir and method."""
    frames = [pd.read_csv(Path(r.run_dir) / name).assign(run_dir=r.run_dir, method=r.method)
              for r in runs.itertuples() if (Path(r.run_dir) / name).exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# the settings Fig. 7's runs hold (its preset's): r_p 0.5, the data set's n_labels, eta_M 1
FIG7 = Figure("fig7", "Fig. 7: training mechanism of ELITE", "iteration", "iteration", r_p=0.5)


def fig7_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs Fig. 7 draws: those made for it, with curves (``curves_every`` > 0: a ``curves.csv``; every ELITE
    run writes ``meta_scores.csv``, so (c) would otherwise pool every class of the Fig. 3 runs), at :data:`FIG7`'s
    settings (r_p 0.5, the data set's n_labels), one run per method, class and seed as in the tables (the last
    finished, :func:`report.select`): (a, b) FMNIST's ELITE-SVDD and Deep SAD (:data:`FIG7_METHODS`), (c) MNIST's
    ELITE-SVDD."""
    with_curves = runs[runs["run_dir"].map(lambda d: (Path(d) / "curves.csv").exists()).astype(bool)]
    made = select(with_curves, FIG7)
    return (made[(made["data"] == "fmnist") & made["method"].isin(FIG7_METHODS)],
            made[(made["data"] == "mnist") & (made["method"] == "elite_svdd")])


def draw_fig7(runs: pd.DataFrame, out: Path) -> list[Path]:
    """(a) test AUC and (b) labeled loss over iterations on FMNIST, one line per :data:`FIG7_LINES` entry with
    runs (Deep SAD with Eq. 4 dashed); (c) y_hat * |M| histogram on MNIST (:func:`fig7_runs`)."""
    fmnist, mnist = fig7_runs(runs)
    curves = _read_run_csvs(fmnist, "curves.csv")
    meta = _read_run_csvs(mnist, "meta_scores.csv")
    if curves.empty and meta.empty:
        log.info("fig7: no curves.csv (FMNIST) or meta_scores.csv (MNIST, r_p 0.5), not drawn")
        return []
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, column, ylabel, tag in ((axes[0], "test_auc", "test ROC AUC", "(a)"),
                                    (axes[1], "labeled_loss", "labeled loss", "(b)")):
        for method, colour_of, style in FIG7_LINES:
            part = curves[curves["method"] == method] if len(curves) else curves
            if part.empty or column not in part or part[column].isna().all():
                continue
            mean = part.groupby("iteration")[column].mean()
            ax.plot(mean.index, mean.values, style, label=f"{method_label(method)} (n={part['run_dir'].nunique()})",
                    color=_color(colour_of, list(METHOD_ORDER)),
                    marker="o" if len(mean) == 1 else None)  # a line of one point is drawn as its marker
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{tag} FMNIST: {ylabel}")
        ax.grid(alpha=0.3)
        if not ax.lines:
            _no_runs(ax)
    ax = axes[2]
    scale = ""
    if not meta.empty:
        values, scale = power_of_ten(meta["meta_score"].to_numpy())
        bins = np.linspace(values.min(), values.max(), 50)
        for flag, label in ((0, "normal"), (1, "anomaly")):
            ax.hist(values[meta["anomaly"].to_numpy() == flag], bins=bins, alpha=0.6, label=label)
        ax.axvline(0, color="k", lw=0.8)
        ax.legend()
    else:
        _no_runs(ax)
    ax.set_xlabel(r"$\hat{y} \cdot |M|$" + scale)
    ax.set_ylabel("training samples")
    ax.set_title(f"(c) MNIST, r_p 0.5 (n={meta['run_dir'].nunique() if len(meta) else 0})")
    fig.suptitle("Fig. 7: training mechanism of ELITE")
    fig.tight_layout()
    lines = max(axes[:2], key=lambda a: len(a.lines))  # one legend for (a) and (b), below them
    if lines.lines:
        fig.legend(*lines.get_legend_handles_labels(), loc="upper center", ncol=len(lines.lines),
                   bbox_to_anchor=(0.35, 0.0), frameon=False)
    return _save(fig, out, "fig7")


def draw_all(runs: pd.DataFrame, out: Path, only: list[str] | None = None,
             eta_m: Sequence[float] = (Config.eta_m,)) -> list[Path]:
    """Draw Figures 3-7 (or those named in ``only``; those that hold eta_M fixed at the values ``eta_m``,
    ``report.chosen``) from the finished runs of the current record format."""
    out.mkdir(parents=True, exist_ok=True)
    runs = runs[runs["record_format"].eq(RECORD_FORMAT)]
    written = [p for spec in chosen(only, eta_m) for p in draw_auc_figure(runs, spec, out)]
    return written + (draw_fig7(runs, out) if only is None or "fig7" in only else [])


def main(argv: list[str] | None = None) -> None:
    run_cli(argv, "python -m elite_exp.figures", __doc__.splitlines()[0], draw_all)


if __name__ == "__main__":
    main()
