"""Gather run records into tidy tables: one row per run, and per figure of the paper a summary
per normal class and averaged over classes (mean +- std over seeds), as CSV and Markdown.

``python -m elite_exp.report <run folders or roots...> [--out DIR] [--only FIGS] [--eta-m VALUES]``
(``make report``).
Only runs whose record says ``ok`` enter a summary; failed runs are listed in ``failed.csv``.
A cell without runs stays missing (NaN, shown empty); nothing is filled in.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from elite_exp.config import Config, data_file, default_n_labels
from elite_exp.records import RECORD_FORMAT, RESULT_FILE, atomic_write_text, read_record, record_format, write_csv
from elite_exp.tracking import ARTIFACT_DIR

log = logging.getLogger(__name__)

RUN_COLUMNS = ["method", "data", "normal_class", "normal_class_name", "r_p", "n_labels", "n_labels_default", "r_l",
               "n_train", "eta_m", "seed", "epochs", "status", "test_auc", "train_auc", "test_aupr", "train_aupr",
               "train_seconds", "pack_size", "pretraining", "error", "reason", "record_format", "finished_at",
               "run_dir"]
# the summarised metrics (anomaly = positive class), their names in tables and their file suffix
METRICS = {"test_auc": ("Test ROC AUC", ""), "test_aupr": ("Test average precision (AUPR)", "_aupr")}
# a summary cell averages runs that agree on these (plus the figure's x axis)
SETTING = ["data", "method", "epochs", "n_train"]
# display names as in the paper's legends; ELITE's variants and the methods that name their score
# (labels_*, loe_*, soel_*) are spelled out by _stem_label
METHOD_LABELS = {"deepsvdd": "DeepSVDD", "deepsad": "DeepSAD", "deepsad_every_batch": "DeepSAD (labels in every batch)",
                 "deepsad_hinge": "DeepSAD (Eq. 4)",
                 "deepsad_every_batch_hinge": "DeepSAD (labels in every batch, Eq. 4)",
                 "ssad": "SSAD", "ssad_hybrid": "SSAD hybrid", "rsrae": "RSRAE", "ae": "AE",
                 "loe_hard_rot_alpha0": "Rotation prediction (unsupervised)",
                 "loe_hard_neutral_alpha0": "NeuTraL AD (unsupervised)"}
# the methods in legend order; each keeps its colour and marker in every figure
METHOD_ORDER = ("elite_svdd", "elite_ae", "deepsvdd", "deepsad", "deepsad_every_batch", "ssad", "ssad_hybrid", "rsrae",
                "ae", "labels_svdd", "labels_ae", "loe_hard_svdd", "loe_soft_svdd", "soel_svdd",
                "loe_hard_ae", "loe_soft_ae", "soel_ae", "elite_svdd_pretrain", "elite_svdd_labeled1",
                "elite_svdd_pretrain_labeled1", "elite_svdd_labeled1_inverse",
                "elite_svdd_pretrain_labeled1_inverse", "elite_svdd_paper", "elite_svdd_loe",
                "elite_svdd_loe_pretrain", "elite_rot", "labels_rot", "loe_hard_rot", "loe_soft_rot",
                "soel_rot", "loe_hard_rot_alpha0", "elite_neutral", "labels_neutral",
                "loe_hard_neutral", "loe_soft_neutral", "soel_neutral", "loe_hard_neutral_alpha0",
                "deepsad_every_batch_hinge")
# ELITE's base names (registry.base_name): score, update, then the options beyond the paper in their order
ELITE_NAME = re.compile(r"elite_(?P<score>[a-z]+?)(?:_(?P<update>paper|loe))?(?P<pretrain>_pretrain)?"
                        r"(?:_warmup(?P<warmup>\d+))?(?:_labeled(?P<labeled>[^_]+))?(?P<inverse>_inverse)?"
                        r"(?P<joint>_joint)?(?:_loeterm(?P<loeterm>[^_]+))?")
SCORED_NAME = re.compile(r"(?P<method>labels|loe_hard|loe_soft|soel)_(?P<score>[a-z]+)")
# a TeX formula in a figure's title ($\eta_M$), which a Markdown heading shows as the bare symbol (eta_M)
TEX = re.compile(r"[$]\\?([^$]*)[$]")
SCORED_LABELS = {"labels": "Labels only", "loe_hard": "LOE_H", "loe_soft": "LOE_S", "soel": "SOEL"}


def method_label(name: str) -> str:
    """The display name of a record's method: ``elite_svdd+elite.meta_grad=finite_diff`` ->
    ``ELITE_SVDD (elite.meta_grad=finite_diff)``; ELITE's LOE term, ``elite_svdd_loeterm4`` ->
    ``ELITE_SVDD + LOE term x4``; its supervised warm-up, ``elite_svdd_pretrain_warmup5`` ->
    ``ELITE_SVDD + pre-training + 5-epoch warm-up``; an assumed contamination set in the config,
    ``soel_svdd_alpha0.1`` -> ``SOEL (SVDD), alpha 0.1`` (see ``registry.method_name``)."""
    base, *changed = re.split(r"\+(?=[A-Za-z_][\w.]*=)", name)
    stem, alpha = re.fullmatch(r"(.*?)(?:_alpha(.+))?", base).groups()
    stem_label = _stem_label(stem)
    label = METHOD_LABELS.get(base) or (f"{stem_label}, alpha {alpha}" if alpha and stem_label else
                                        _stem_label(base) or base)
    return label + (f" ({', '.join(changed)})" if changed else "")


def _stem_label(stem: str) -> str | None:
    """The display name of a base name without ``_alpha``, None for an unknown one: ``elite_svdd_paper`` ->
    ``ELITE_SVDD (paper update)``, ``elite_svdd_pretrain_labeled2_inverse`` -> ``ELITE_SVDD + pre-training +
    inverse labeled term x2``, ``soel_neutral`` -> ``SOEL (NEUTRAL)``."""
    if stem in METHOD_LABELS:
        return METHOD_LABELS[stem]
    scored = SCORED_NAME.fullmatch(stem)
    if scored:
        return f"{SCORED_LABELS[scored['method']]} ({scored['score'].upper()})"
    elite = ELITE_NAME.fullmatch(stem)
    if not elite:
        return None
    update = {"paper": " (paper update)", "loe": " (LOE update)", None: ""}[elite["update"]]
    labeled = elite["labeled"]
    term = ("inverse labeled term" if elite["inverse"] else "labeled term") + ("" if labeled == "1" else f" x{labeled}")
    parts = [f"ELITE_{elite['score'].upper()}{update}",
             "pre-training" if elite["pretrain"] else None,
             f"{elite['warmup']}-epoch warm-up" if elite["warmup"] else None,
             term if labeled else None,
             "joint batch" if elite["joint"] else None,
             f"LOE term x{elite['loeterm']}" if elite["loeterm"] else None]
    return " + ".join(p for p in parts if p)


DATA_LABELS = {"mnist": "MNIST", "fmnist": "FMNIST", "cifar10": "CIFAR-10", "digits": "Digits",
               "breast_cancer": "Breast cancer"}


@dataclass(frozen=True)
class Figure:
    """A figure of the paper: its x axis and the settings its runs hold fixed.
    ``labels="data"`` fixes n_labels at the data set's default (its data file's: a record's
    ``n_labels_default``); ``eta_m``: the eta_M values it shows (None: every one, its x axis), a run at another
    than the paper's 1 as a row of its own (:func:`select`); ``methods``: the
    method-name prefixes it shows (``elite_``: every ELITE variant, ``elite_svdd+elite.meta_grad=finite_diff``
    too), None: every method."""

    name: str
    title: str
    x: str
    x_label: str
    r_p: float | None = None
    labels: str | None = "data"
    eta_m: tuple[float, ...] | None = (Config.eta_m,)
    methods: tuple[str, ...] | None = None

    def fixed(self) -> str:
        """The settings its runs hold fixed, as a log line says them."""
        parts = [f"r_p {self.r_p:g}" if self.r_p is not None else None,
                 f"eta_M {' / '.join(f'{e:g}' for e in self.eta_m)}" if self.eta_m is not None else None,
                 "the data set's default n_labels (n_labels_default)" if self.labels == "data" else None,
                 f"methods {', '.join(self.methods)}*" if self.methods else None]
        return ", ".join(p for p in parts if p)


FIGURES = (
    Figure("fig3", "Fig. 3: ROC AUC vs pollution ratio", "r_p", "pollution ratio $r_p$"),
    Figure("fig4", "Fig. 4: ROC AUC vs number of labels (r_p = 0.1)", "n_labels", "number of labeled examples",
           r_p=0.1, labels=None),
    Figure("fig5", "Fig. 5: ROC AUC vs number of labels (r_p = 0.5)", "n_labels", "number of labeled examples",
           r_p=0.5, labels=None),
    Figure("fig6", "Fig. 6: sensitivity of ELITE to $\\eta_M$ (r_p = 0.1)", "eta_m", "$\\eta_M$",
           r_p=0.1, eta_m=None, methods=("elite_",)),
)


def default_labels(data: str) -> float:
    """The data set's default n_labels (its conf/data file), NaN for an unknown data set: a record's
    ``n_labels_default`` where an older record does not hold it."""
    file = data_file(data)
    return np.nan if file.path is None else float(default_n_labels(file))


def record_files(paths: list[Path]) -> list[Path]:
    """Every result.json at or below the given run folders / roots, each once (as its absolute path, links kept:
    one file reached two ways counts once); MLflow's copies (under ``mlartifacts/``, see tracking.py) are not
    runs."""
    found: dict[Path, Path] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"no such run folder: {p}")
        for f in [p] if p.is_file() else p.rglob(RESULT_FILE):
            if ARTIFACT_DIR not in f.parts:
                found.setdefault(f.resolve(), Path(os.path.abspath(f)))
    return sorted(found.values())


def collect(paths: list[Path]) -> pd.DataFrame:
    """The tidy run table: one row per record found (ok and failed), columns ``RUN_COLUMNS``. Where a data set's
    runs spell one class two ways (its index and its name), its runs' ``normal_class`` is the class name. A data
    set whose records were made from different versions of its files (your own data changed under one path; the
    two CIFAR-10 layouts) is named in a warning."""
    rows = []
    fingerprints: dict[str, set[str]] = {}  # data set -> the data files its records were made from
    for f in record_files(paths):
        rec = read_record(f.parent)
        if rec is None:
            log.warning("unreadable record skipped: %s", f)
            continue
        made_from = (rec.get("identity") or {}).get("data_fingerprint")
        if made_from is not None and rec.get("status") == "ok":  # a failed run is in no table
            fingerprints.setdefault(str(rec.get("data")), set()).add(made_from)
        row = {k: rec.get(k) for k in RUN_COLUMNS}
        row["record_format"] = record_format(rec)
        row["run_dir"] = str(f.parent)
        rows.append(row)
    for data, made_from in sorted(fingerprints.items()):
        if len(made_from) > 1:
            log.warning("%s: its records were made from %d versions of its data files (identity.data_fingerprint: "
                        "%s) and its tables mix them; rerun the older runs on the present files, or report each "
                        "version from its own out_dir", data, len(made_from), ", ".join(sorted(made_from)))
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    # records made before n_labels_default was recorded: their data set's file says it (looked up once a data set)
    older = runs["n_labels_default"].isna()
    runs["n_labels_default"] = runs["n_labels_default"].astype(float).fillna(
        runs["data"].map({d: default_labels(str(d)) for d in runs.loc[older, "data"].unique()})).astype("Int64")
    # a class spelled two ways (normal_class=1 and =malignant are one class): its data set's runs by class name
    named = runs.dropna(subset=["normal_class_name"])
    spellings = named.groupby(["data", "normal_class_name"])["normal_class"].agg(lambda c: c.astype(str).nunique())
    mixed = (runs["data"].isin(spellings[spellings > 1].index.get_level_values("data"))
             & runs["normal_class_name"].notna())
    if mixed.any():
        runs["normal_class"] = runs["normal_class"].astype(object).where(~mixed, runs["normal_class_name"])
    if runs["normal_class"].map(type).nunique() > 1:  # own data named by index in some runs, by name in others
        runs["normal_class"] = runs["normal_class"].astype(str)
    for col in ("r_p", "eta_m", *METRICS, "train_auc", "train_aupr", "train_seconds"):
        runs[col] = pd.to_numeric(runs[col], errors="coerce")
    return runs.sort_values(["data", "method", "normal_class", "r_p", "n_labels", "eta_m", "seed"],
                            ignore_index=True)


def select(runs: pd.DataFrame, fig: Figure, warn: bool = True) -> pd.DataFrame:
    """The finished runs of the current record format that belong to ``fig`` (records of an older
    format are listed in runs.csv only: their numbers were computed differently). In a figure that holds eta_M
    fixed, an ELITE run at another eta_M than the paper's 1 (one of ``fig.eta_m``) is a method of its own:
    ``elite_svdd+eta_m=0.3`` (shown ``ELITE_SVDD (eta_m=0.3)``); the other methods do not read eta_M, and
    show their runs at the paper's 1."""
    keep = runs["status"].eq("ok") & runs["record_format"].eq(RECORD_FORMAT)
    if fig.r_p is not None:
        keep &= np.isclose(runs["r_p"], fig.r_p)
    if fig.labels == "data":
        keep &= runs["n_labels"].astype(float) == runs["n_labels_default"].astype(float)
    if fig.methods is not None:
        keep &= runs["method"].map(lambda m: str(m).startswith(fig.methods))
    if fig.eta_m is not None:  # last: the ELITE runs it leaves out would belong to the figure at a shown eta_M
        eta = runs["eta_m"].to_numpy(float)
        elite = runs["method"].astype(str).str.startswith("elite_").to_numpy()
        shown = np.isclose(eta[:, None], np.array(fig.eta_m)).any(axis=1)
        left_out = keep & elite & ~shown
        keep &= np.where(elite, shown, np.isclose(eta, Config.eta_m))
        if left_out.any() and warn:
            log.info("%s: %d ELITE run(s) at eta_M %s left out (--eta-m %s,... shows them as rows of their own)",
                     fig.name, int(left_out.sum()), " / ".join(f"{e:g}" for e in sorted(set(eta[left_out]))),
                     ",".join(f"{e:g}" for e in fig.eta_m))
    # runs whose settings differ only in what no figure shows (say a key the method ignores, or Fig. 7's
    # curves_every) would count twice: one stands for its (cell, class, seed), the same one in every figure and
    # on every machine: the last finished (a record's finished_at, not its file's time, which a copy or a
    # clone resets), records from before finished_at was recorded first, ties by folder
    sel = runs[keep].sort_values(["finished_at", "run_dir"], na_position="first", kind="stable")
    cell = [*SETTING, "r_p", "n_labels", "eta_m", "normal_class", "seed"]
    dup = sel.duplicated(cell, keep="last")
    if dup.any() and warn:
        log.warning("%s: %d run(s) superseded by a newer run of the same cell, class and seed: %s",
                    fig.name, int(dup.sum()), ", ".join(sel.loc[dup, "run_dir"]))
    sel = sel[~dup]
    if fig.eta_m is not None:
        other = ~np.isclose(sel["eta_m"].to_numpy(float), Config.eta_m)
        sel = sel.assign(method=[f"{m}+eta_m={e:g}" if o else m for m, e, o in zip(sel["method"], sel["eta_m"], other)])
    return sel


def other_labels_hint(runs: pd.DataFrame, fig: Figure) -> str:
    """For a figure that keeps the data set's default n_labels: how many finished runs it left out for their
    other n_labels, and how to make theirs the default (else "")."""
    if fig.labels != "data":
        return ""
    ok = runs[runs["status"].eq("ok") & runs["record_format"].eq(RECORD_FORMAT)]
    other = ok[ok["n_labels"].astype(float) != ok["n_labels_default"].astype(float)]
    if other.empty:
        return ""
    given = ", ".join(sorted({f"{d}: n_labels {int(n)}" for d, n in zip(other["data"], other["n_labels"])}))
    return (f" ({len(other)} finished run(s) have other n_labels than their data set's default: {given}; a data "
            f"file of your own that sets n_labels makes it the default, README: Your own data)")


def summarise(runs: pd.DataFrame, fig: Figure, metric: str = "test_auc",
              warn: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per class, averaged) long tables of ``metric`` for ``fig``.

    Per class: mean and std over seeds of each (setting, class, x) cell. Averaged: for each seed
    the mean over its classes, then mean and std of those over the seeds that cover the same classes
    as the cell's most complete seed (the lowest such seed on a tie): a seed run on fewer or other
    classes is left out of the average, not mixed in (``n_partial_seeds`` counts those; the per-class
    table keeps them); ``n_classes`` says how many classes a cell covers (a missing class is not filled in)."""
    sel = select(runs, fig, warn)
    keys = [*SETTING, fig.x]
    per_class = (sel.groupby([*keys, "normal_class"])[metric]
                 .agg(mean="mean", std="std", n_seeds="count").reset_index())
    per_seed = (sel.groupby([*keys, "seed"])
                .agg(value=(metric, "mean"), n_classes=("normal_class", "nunique"),
                     classes=("normal_class", lambda c: tuple(sorted(set(c)))))
                .reset_index())
    most = (per_seed.sort_values(["n_classes", "seed"], ascending=[False, True])
            .drop_duplicates(keys)[[*keys, "classes"]].rename(columns={"classes": "cell_classes"}))
    per_seed = per_seed.merge(most, on=keys)
    complete = per_seed["classes"] == per_seed["cell_classes"]
    averaged = (per_seed[complete].groupby(keys)
                .agg(mean=("value", "mean"), std=("value", "std"), n_seeds=("value", "count"),
                     n_classes=("n_classes", "max"))
                .reset_index())
    partial = per_seed[~complete].groupby(keys).size().rename("n_partial_seeds").reset_index()
    averaged = averaged.merge(partial, on=keys, how="left").fillna({"n_partial_seeds": 0})
    averaged = averaged.astype({"n_partial_seeds": int})
    averaged.attrs["notes"] = _caveats(most, averaged)
    if warn:
        for note in averaged.attrs["notes"]:
            log.warning("%s: %s", fig.name, note)
    return per_class, averaged


def _caveats(most: pd.DataFrame, averaged: pd.DataFrame) -> list[str]:
    """What a reader of the class averages must know: seeds left out (``n_partial_seeds``) and, per data set, rows
    whose averages cover different classes (``most``: each cell's classes, ``cell_classes``)."""
    notes = []
    partial = averaged["n_partial_seeds"]
    if partial.any():
        notes.append(f"{int(partial.sum())} seed(s) of {int((partial > 0).sum())} cell(s) left out of the class "
                     f"averages: they cover other classes than the cell's most complete seed (the lowest seed of those "
                     f"covering the most classes; n_partial_seeds; the per-class table keeps them)")
    x = next(c for c in most.columns if c not in (*SETTING, "cell_classes"))
    for data, cells in most.groupby("data", sort=True):
        several = cells.groupby("method")["cell_classes"].transform("nunique") > 1  # a method's cells differ
        named = cells["method"].where(~several, cells["method"] + f" at {x} " + cells[x].map("{:g}".format))
        sets = named.groupby(cells["cell_classes"]).agg(lambda m: ", ".join(sorted(set(m))))
        if len(sets) > 1:
            shown = "; ".join(f"{methods}: class{'es' if len(c) > 1 else ''} {', '.join(map(str, c))}"
                              for c, methods in sets.items())
            notes.append(f"{data}: the class averages cover different classes ({shown}); compare rows over the "
                         f"same classes, or the per-class table")
    return notes


def pivot(summary: pd.DataFrame, x: str, rows: list[str], classes: bool = False) -> pd.DataFrame:
    """Wide table for reading: rows x values of ``x``, cells "mean +- std" (empty where missing).
    ``classes``: the summary is averaged over classes; a column ``n_classes`` gives the most classes
    a row's cells cover, and a cell that covers fewer says how many ("(3 cls)")."""
    most = summary.groupby(rows)["n_classes"].transform("max") if classes else None

    def text(r):
        if pd.isna(r["mean"]):
            return ""
        fewer = classes and r["n_classes"] < most[r.name]
        return (f"{r['mean']:.3f}" + ("" if pd.isna(r["std"]) else f" ± {r['std']:.3f}")
                + (f" ({int(r['n_classes'])} cls)" if fewer else ""))

    summary = summary.assign(cell=summary.apply(text, axis=1))
    index = [*rows, "n_classes"] if classes else rows
    if classes:
        summary = summary.assign(n_classes=most)
    wide = summary.pivot_table(index=index, columns=x, values="cell", aggfunc="first")
    wide.columns = [f"{x}={c:g}" for c in wide.columns]
    return wide.fillna("").reset_index()


def old_format_note(runs: pd.DataFrame) -> str | None:
    """A warning when some records are of an older format (and so left out of every summary)."""
    old = runs["record_format"].ne(RECORD_FORMAT)
    if not old.any():
        return None
    return (f"{int(old.sum())} record(s) of an older format (scored with BatchNorm running averages instead of "
            f"statistics recomputed on the training data) are left out of every summary; runs.csv lists them")


def chosen(names: list[str] | None, eta_m: Sequence[float] = (Config.eta_m,)) -> tuple[Figure, ...]:
    """The figures named in ``names`` (all when None), those that hold eta_M fixed showing the runs at the
    values ``eta_m`` (> 0; default the paper's 1). An unknown name or a bad eta_M is a ValueError naming what is
    allowed."""
    bad = [e for e in eta_m if not 0 < e < np.inf]
    if bad or not eta_m:
        raise ValueError(f"eta_M {f'{bad[0]:g}' if bad else 'none'} is not allowed; allowed: one or more finite "
                         f"numbers > 0")
    known = {f.name: f for f in FIGURES}
    unknown = [n for n in names or () if n not in known and n != "fig7"]
    if unknown:
        raise ValueError(f"unknown figure {unknown[0]!r}; allowed: {', '.join([*known, 'fig7'])}")
    return tuple(f if f.eta_m is None else replace(f, eta_m=tuple(eta_m))
                 for f in FIGURES if names is None or f.name in names)


def relative_to(path: Path, folder: Path) -> str:
    """``path`` as seen from ``folder`` (``../records/...``), so that a report and its records can move together
    (a clone of a repository that holds both); the absolute path where there is no relative one (another drive)."""
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(folder))).as_posix()
    except ValueError:
        return Path(os.path.abspath(path)).as_posix()


def write_report(runs: pd.DataFrame, out: Path, only: list[str] | None = None,
                 eta_m: Sequence[float] = (Config.eta_m,)) -> list[Path]:
    """Write runs.csv and failed.csv (their ``run_dir`` relative to ``out``: :func:`relative_to`), and per figure
    (all, or those named in ``only``; the figures that hold eta_M fixed at the values ``eta_m``, :func:`chosen`)
    <fig>.csv and <fig>_per_class.csv (ROC AUC), <fig>_aupr.csv and <fig>_aupr_per_class.csv (average precision)
    and <fig>.md with both."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "runs.csv", out / "failed.csv"]
    listed = runs.assign(run_dir=runs["run_dir"].map(lambda d: relative_to(Path(d), out)))
    write_csv(written[0], listed)
    is_failed = runs["status"].ne("ok")
    failed = runs[is_failed]
    write_csv(written[1], listed[is_failed])
    index = ["# Results", "", f"{len(runs)} runs, {runs['status'].eq('ok').sum()} ok, {len(failed)} failed.", ""]
    note = old_format_note(runs)
    if note:
        log.warning(note)
        index += [f"**Note:** {note}.", ""]
    if only is not None and "fig7" in only:
        log.info("fig7 has no table (curves and a histogram): python -m elite_exp.figures draws it")
    for fig in chosen(only, eta_m):
        text = ["## " + TEX.sub(r"\1", fig.title), ""]
        for metric, (label, suffix) in METRICS.items():
            per_class, averaged = summarise(runs, fig, metric, warn=metric == next(iter(METRICS)))
            if averaged["mean"].isna().all():
                continue
            files = [out / f"{fig.name}{suffix}.csv", out / f"{fig.name}{suffix}_per_class.csv"]
            write_csv(files[0], averaged)
            write_csv(files[1], per_class)
            written += files
            text += [f"{label}, averaged over normal classes (mean ± std over seeds):", "",
                     pivot(averaged, fig.x, SETTING, classes=True).to_markdown(index=False), "",
                     *(line for note in averaged.attrs["notes"] for line in (f"**Note:** {note}.", "")),
                     f"{label} per normal class:", "",
                     pivot(per_class, fig.x, [*SETTING, "normal_class"]).to_markdown(index=False), ""]
        if len(text) == 2:
            log.info("%s: no finished run with %s, not written%s", fig.name, fig.fixed(), other_labels_hint(runs, fig))
            continue
        atomic_write_text(out / f"{fig.name}.md", "\n".join(text))
        index += text
        written.append(out / f"{fig.name}.md")
    if len(failed):
        index += ["## Failed runs", "", failed[["data", "method", "normal_class", "r_p", "n_labels", "eta_m", "seed",
                                               "error", "reason"]].to_markdown(index=False), ""]
    atomic_write_text(out / "report.md", "\n".join(index))
    written.append(out / "report.md")
    return written


def _numbers(text: str) -> tuple[float, ...]:
    """``--eta-m``'s comma-separated numbers; anything else is argparse's one-line error."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def run_cli(argv: list[str] | None, prog: str, description: str,
            write: Callable[..., list[Path]]) -> None:
    """The command line of ``elite_exp.report`` and ``elite_exp.figures``: run folders in, files out."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders or roots searched for result.json")
    parser.add_argument("--out", type=Path, default=Path("outputs/report"),
                        help="output folder (default: outputs/report under the current folder)")
    parser.add_argument("--only", type=lambda v: v.split(","), default=None, metavar="FIGS",
                        help="comma-separated figures to write (fig3,...,fig7; default: all)")
    parser.add_argument("--eta-m", type=_numbers, default=(Config.eta_m,), metavar="VALUES",
                        help="comma-separated eta_M values Fig. 3-5 show (default: 1, the paper's); a run at "
                             "another is a row of its own, named with its eta_M")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        chosen(args.only, args.eta_m)
        runs = collect(args.runs)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    if runs.empty:
        parser.error(f"no run record (result.json) under {', '.join(map(str, args.runs))}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # before any file is written
        parser.error(f"--out {args.out} cannot be made: {err.strerror or err}")
    for path in write(runs, args.out, args.only, eta_m=args.eta_m):
        log.info("wrote %s", path)


def main(argv: list[str] | None = None) -> None:
    run_cli(argv, "python -m elite_exp.report", __doc__.splitlines()[0], write_report)


if __name__ == "__main__":
    main()
