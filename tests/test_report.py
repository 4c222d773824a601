"""Report tables and figures on synthetic run records (no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elite_exp.figures import draw_all, fig7_runs
from elite_exp.records import RECORD_FORMAT, write_csv, write_json
from elite_exp.report import FIGURES, chosen, collect, main, method_label, pivot, summarise, write_report

FIG = {f.name: f for f in FIGURES}


def fake_run(root, method="elite_svdd", data="mnist", normal_class=0, r_p=0.1, n_labels=20, eta_m=1.0, seed=0,
             auc=0.9, status="ok", epochs=5, record_format=RECORD_FORMAT, finished_at=None):
    """A run folder holding a record shaped like the runner's."""
    run_dir = root / data / method / f"class{normal_class}" / f"rp{r_p}_nl{n_labels}_eta{eta_m}_seed{seed}_x"
    rec = {"method": method, "data": data, "normal_class": normal_class, "r_p": r_p, "n_labels": n_labels,
           "n_train": 5000, "eta_m": eta_m, "seed": seed, "epochs": epochs, "status": status,
           "run_dir": str(run_dir), "config": {}, "identity": {"format": record_format}}
    if finished_at is not None:
        rec["finished_at"] = finished_at
    if status == "ok":
        rec.update(test_auc=auc, train_auc=auc - 0.1, train_seconds=1.0)
    else:
        rec.update(error="TrainingDiverged", reason="loss became nan in epoch 0")
    write_json(run_dir / "result.json", rec)
    return run_dir


def auc_of(method, normal_class, r_p, seed):
    return 0.5 + 0.1 * (method == "elite_svdd") + 0.02 * normal_class + 0.3 * r_p + 0.01 * seed


@pytest.fixture
def grid(tmp_path):
    """mnist: 2 methods x 2 classes x 3 r_p x 2 seeds, all ok."""
    for method in ("elite_svdd", "deepsad"):
        for c in (0, 1):
            for r_p in (0.1, 0.3, 0.5):
                for seed in (0, 1):
                    fake_run(tmp_path, method, normal_class=c, r_p=r_p, seed=seed, auc=auc_of(method, c, r_p, seed))
    return tmp_path


def test_collect_one_row_per_run(grid):
    runs = collect([grid])
    assert len(runs) == 24 and runs["status"].eq("ok").all()
    # a run folder given directly and again through its root counts once
    one = next(grid.rglob("result.json")).parent
    assert len(collect([grid, one])) == 24


@pytest.mark.parametrize("text", ['{"method": "elite_svdd", "r_p"', "[1, 2]", '"ok"', "null", "{}",
                                  '{"status": "ok", "test_auc": 0.9}'])
def test_an_unreadable_record_is_skipped_with_a_line(grid, text, caplog):
    """A damaged result.json (cut short, or JSON that is no object) is named and left out; the rest are read."""
    bad = grid / "mnist" / "elite_svdd" / "class9" / "damaged"
    bad.mkdir(parents=True)
    (bad / "result.json").write_text(text)
    with caplog.at_level("WARNING"):
        runs = collect([grid])
    assert len(runs) == 24 and f"unreadable record skipped: {bad / 'result.json'}" in caplog.text
    assert runs["seed"].dtype == "int64" and "older format" not in caplog.text  # not a record of another format
    from elite_exp.records import is_finished
    assert not is_finished(bad)  # and a sweep runs it again


def test_one_class_spelled_by_index_and_by_name_is_one_class(tmp_path):
    """normal_class=1 in one seed and =malignant in another are one class (the record's normal_class_name): the
    data set's rows then go by class name, one per class, with both seeds; a data set of one spelling keeps it."""
    for seed, spelling in ((0, 1), (1, "malignant"), (2, 0)):
        run = fake_run(tmp_path, data="breast_cancer", normal_class=spelling, seed=seed, n_labels=10,
                       auc=0.7 + 0.1 * seed)
        rec = pd.read_json(run / "result.json", typ="series").to_dict()
        write_json(run / "result.json", {**rec, "normal_class_name": "benign" if spelling == 0 else "malignant"})
    run = fake_run(tmp_path, normal_class=3)
    write_json(run / "result.json", {**pd.read_json(run / "result.json", typ="series").to_dict(),
                                     "normal_class_name": "3 - three"})
    per_class, avg = summarise(collect([tmp_path]), FIG["fig3"])
    cancer = per_class[per_class["data"] == "breast_cancer"].set_index("normal_class")
    assert set(cancer.index) == {"benign", "malignant"} and cancer.loc["malignant", "n_seeds"] == 2
    assert cancer.loc["malignant", "mean"] == pytest.approx(0.75)
    assert list(per_class[per_class["data"] == "mnist"]["normal_class"]) == ["3"]  # its index (as text beside names)
    assert len(cancer) == 2 and len(avg[avg["data"] == "breast_cancer"]) == 1


def test_fig3_pivot_shapes_and_mean_std(grid):
    per_class, avg = summarise(collect([grid]), FIG["fig3"])
    assert len(per_class) == 2 * 2 * 3 and len(avg) == 2 * 3
    assert (per_class["n_seeds"] == 2).all() and (avg["n_classes"] == 2).all()
    cell = per_class.query("method == 'deepsad' and normal_class == 1 and r_p == 0.3").iloc[0]
    seeds = [auc_of("deepsad", 1, 0.3, s) for s in (0, 1)]
    assert cell["mean"] == pytest.approx(np.mean(seeds)) and cell["std"] == pytest.approx(np.std(seeds, ddof=1))
    # averaged: class mean per seed, then mean and std over seeds
    per_seed = [np.mean([auc_of("elite_svdd", c, 0.5, s) for c in (0, 1)]) for s in (0, 1)]
    cell = avg.query("method == 'elite_svdd' and r_p == 0.5").iloc[0]
    assert cell["mean"] == pytest.approx(np.mean(per_seed)) and cell["std"] == pytest.approx(np.std(per_seed, ddof=1))
    wide = pivot(avg, "r_p", ["data", "method"])
    assert wide.shape == (2, 2 + 3) and list(wide.columns[2:]) == ["r_p=0.1", "r_p=0.3", "r_p=0.5"]


def test_missing_cells_stay_missing(grid):
    for f in grid.glob("mnist/deepsad/class*/rp0.3_*/result.json"):
        f.unlink()
    for f in grid.glob("mnist/elite_svdd/class1/rp0.5_*_seed1_x/result.json"):
        f.unlink()
    per_class, avg = summarise(collect([grid]), FIG["fig3"])
    assert avg.query("method == 'deepsad' and r_p == 0.3").empty
    wide = pivot(avg, "r_p", ["data", "method"]).set_index("method")
    assert wide.loc["deepsad", "r_p=0.3"] == "" and wide.loc["deepsad", "r_p=0.1"] != ""
    # class 1 of seed 1 missing at r_p 0.5: seed 1 averages class 0 only, nothing is filled in
    cell = per_class.query("method == 'elite_svdd' and normal_class == 1 and r_p == 0.5").iloc[0]
    assert cell["n_seeds"] == 1 and np.isnan(cell["std"])
    cell = avg.query("method == 'elite_svdd' and r_p == 0.5").iloc[0]
    expected = [np.mean([auc_of("elite_svdd", c, 0.5, 0) for c in (0, 1)]), auc_of("elite_svdd", 0, 0.5, 1)]
    assert cell["mean"] == pytest.approx(np.mean(expected))


def test_failed_runs_listed_not_averaged(grid, tmp_path):
    fake_run(grid, "elite_svdd", normal_class=0, r_p=0.1, seed=7, status="failed")
    runs = collect([grid])
    _, avg = summarise(runs, FIG["fig3"])
    assert avg.query("method == 'elite_svdd' and r_p == 0.1").iloc[0]["n_seeds"] == 2
    out = tmp_path / "report"
    write_report(runs, out)
    failed = pd.read_csv(out / "failed.csv")
    assert len(failed) == 1 and failed.loc[0, "error"] == "TrainingDiverged"
    assert "## Failed runs" in (out / "report.md").read_text()


def test_figures_select_their_runs(tmp_path):
    fake_run(tmp_path, n_labels=20, r_p=0.1)
    fake_run(tmp_path, n_labels=60, r_p=0.1)  # Fig. 4 only: not the data set's n_labels
    fake_run(tmp_path, n_labels=60, r_p=0.5)  # Fig. 5 only
    fake_run(tmp_path, eta_m=50.0)  # Fig. 6 only
    fake_run(tmp_path, "deepsad", eta_m=50.0)  # no figure: eta_M is ELITE's
    fake_run(tmp_path, "elite_svdd+elite.meta_grad=finite_diff", eta_m=50.0)  # Fig. 6: every ELITE variant
    fake_run(tmp_path, "elite_svdd", data="cifar10", n_labels=100, r_p=0.1)  # CIFAR-10's n_labels is 100
    runs = collect([tmp_path])
    sizes = {name: len(summarise(runs, fig)[0]) for name, fig in FIG.items()}
    assert sizes == {"fig3": 2, "fig4": 3, "fig5": 1, "fig6": 4}


def test_cli_writes_tables_and_rejects_missing_folder(grid, tmp_path, capsys):
    out = tmp_path / "out"
    main([str(grid), "--out", str(out)])
    for name in ("runs.csv", "failed.csv", "fig3.csv", "fig3_per_class.csv", "fig3.md", "report.md"):
        assert (out / name).stat().st_size > 0
    listed = pd.read_csv(out / "runs.csv")
    assert len(listed) == 24
    # run folders relative to the report: the two move together (a clone of a repository that holds both)
    import shutil

    moved = tmp_path / "elsewhere"
    shutil.copytree(grid / "mnist", moved / "mnist")
    shutil.copytree(out, moved / "out")
    for run_dir in listed["run_dir"]:
        assert not Path(run_dir).is_absolute() and (moved / "out" / run_dir / "result.json").is_file()
    assert listed["n_labels_default"].dtype == "int64"  # a count: 20, not 20.0
    # records reached through a link are named through it (the link moves with the report, its target need not)
    (tmp_path / "linked").symlink_to(moved / "mnist", target_is_directory=True)
    main([str(tmp_path / "linked"), "--out", str(tmp_path / "out2")])
    assert {Path(d).parts[:2] for d in pd.read_csv(tmp_path / "out2" / "runs.csv")["run_dir"]} == {("..", "linked")}
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "nowhere")])
    assert exc.value.code == 2 and "no such run folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "empty")])
    assert exc.value.code == 2 and f"no run record (result.json) under {tmp_path / 'empty'}" in capsys.readouterr().err


def test_figure_files_written(grid, tmp_path):
    run = fake_run(grid, "elite_svdd", data="fmnist", r_p=0.5)
    write_csv(run / "curves.csv", pd.DataFrame({"iteration": [10, 20], "epoch": [0, 0], "train_loss": [1.0, 0.5],
                                                "labeled_loss": [0.9, 0.7], "test_auc": [0.6, 0.7]}))
    run = fake_run(grid, "elite_svdd", data="mnist", r_p=0.5, seed=5)
    write_csv(run / "meta_scores.csv", pd.DataFrame({"sample": range(4), "anomaly": [0, 0, 1, 1],
                                                     "meta_score": [0.5, 0.2, -0.4, -0.1],
                                                     "flagged_fraction": [0, 0, 1, 1], "count": [3] * 4}))
    write_csv(run / "curves.csv", pd.DataFrame({"iteration": [10], "test_auc": [0.6]}))  # made for Fig. 7
    out = tmp_path / "figs"
    written = draw_all(collect([grid]), out)
    names = sorted(p.name for p in written)
    assert names == sorted(f"{f}.{ext}" for f in ("fig3", "fig4", "fig5", "fig6", "fig7") for ext in ("png", "pdf"))
    assert all(p.stat().st_size > 1000 for p in written)



def test_fig7_draws_the_runs_made_for_it(tmp_path):
    """Every ELITE run writes meta_scores.csv; (c) takes only the runs with curves (Fig. 7's), not a Fig. 3 sweep's
    other classes and seeds."""
    for cls in (0, 1):
        run = fake_run(tmp_path, "elite_svdd", data="mnist", r_p=0.5, normal_class=cls)
        write_csv(run / "meta_scores.csv", pd.DataFrame({"sample": [0], "anomaly": [0], "meta_score": [0.1]}))
        if cls == 0:
            write_csv(run / "curves.csv", pd.DataFrame({"iteration": [10], "test_auc": [0.6]}))
    fmnist, mnist = fig7_runs(collect([tmp_path]))
    assert fmnist.empty and mnist["normal_class"].tolist() == [0]


def test_fig7_draws_one_run_per_class_and_seed_at_its_settings(tmp_path):
    """(a, b) take Fig. 7's runs only (r_p 0.5, the data set's n_labels), one per method, class and seed: the last
    finished, as the tables; not another cell's run with curves, nor a rerun beside the run it repeats."""
    def curve_run(root, finished_at="2026-12-01T00:00:00+00:00", **kw):
        run = fake_run(root, "deepsad_every_batch_hinge", data="fmnist", finished_at=finished_at, **kw)
        write_csv(run / "curves.csv", pd.DataFrame({"iteration": [10], "test_auc": [0.6]}))
        return run

    made = [curve_run(tmp_path, r_p=0.5, seed=s) for s in (0, 1)]
    curve_run(tmp_path, r_p=0.1, normal_class=1)  # another cell
    curve_run(tmp_path, r_p=0.5, n_labels=60)  # other labels
    rerun = curve_run(tmp_path / "again", r_p=0.5, seed=0, finished_at="2026-12-02T00:00:00+00:00")
    fmnist, _ = fig7_runs(collect([tmp_path]))
    assert sorted(map(str, fmnist["run_dir"])) == sorted(map(str, [made[1], rerun]))


def test_fig7_draws_a_curve_of_one_point_as_its_marker(tmp_path, monkeypatch):
    """A run whose curves.csv holds one row (training shorter than 2 x curves_every) is seen in (a), not an empty
    axis: a line of one point has no length."""
    import matplotlib.axes

    drawn = []
    plot = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda ax, *a, **kw: drawn.append(kw) or plot(ax, *a, **kw))
    for method, points in (("elite_svdd", [10]), ("deepsad_every_batch", [10, 20])):
        run = fake_run(tmp_path, method, data="fmnist", r_p=0.5)
        write_csv(run / "curves.csv", pd.DataFrame({"iteration": points, "test_auc": [0.6] * len(points)}))
    draw_all(collect([tmp_path]), tmp_path / "figs")
    assert [kw.get("marker") for kw in drawn if "label" in kw] == ["o", None]


def test_no_runs_no_figures(tmp_path):
    (tmp_path / "empty").mkdir()
    assert draw_all(collect([tmp_path / "empty"]), tmp_path / "figs") == []


def test_a_newer_run_of_the_same_cell_supersedes_the_older(tmp_path):
    import os

    old = fake_run(tmp_path, auc=0.7, finished_at="2026-11-30T10:00:00+00:00")
    new = fake_run(tmp_path / "again", auc=0.9, finished_at="2026-12-01T09:00:00+00:00")  # same cell, class, seed
    os.utime(new / "result.json", (1, 1))  # a copy or a clone sets file times: they decide nothing
    per_class, averaged = summarise(collect([tmp_path]), FIG["fig3"])
    assert len(per_class) == 1 and per_class["n_seeds"].iloc[0] == 1
    assert averaged["mean"].iloc[0] == pytest.approx(0.9)
    assert old.exists() and new.exists()
    assert "finished_at" in pd.read_csv(write_report(collect([tmp_path]), tmp_path / "r")[0]).columns


def test_duplicates_without_a_finish_time_are_decided_by_folder_the_same_in_every_figure(tmp_path):
    import os
    import shutil

    runs = [fake_run(tmp_path / root, auc=auc, r_p=0.5) for root, auc in (("b", 0.6), ("a", 0.8))]
    timed = fake_run(tmp_path / "c", auc=0.7, r_p=0.5, finished_at="2026-01-01T00:00:00+00:00")  # after no time
    for i, run in enumerate([timed, *runs]):  # the file times say the opposite of what decides
        os.utime(run / "result.json", (i, i))
    picks = {fig: summarise(collect([tmp_path]), FIG[fig])[1]["mean"].tolist() for fig in ("fig3", "fig5")}
    assert picks == {"fig3": [pytest.approx(0.7)], "fig5": [pytest.approx(0.7)]}
    shutil.rmtree(tmp_path / "c")  # without it: of the two untimed records, the one in the later folder ("b")
    assert summarise(collect([tmp_path]), FIG["fig3"])[1]["mean"].tolist() == [pytest.approx(0.6)]


def test_older_record_formats_stay_out_of_every_summary_and_are_named(tmp_path):
    fake_run(tmp_path, normal_class=0, auc=0.9)
    fake_run(tmp_path, normal_class=1, auc=0.1, record_format=1)
    runs = collect([tmp_path])
    assert sorted(runs["record_format"]) == [1, RECORD_FORMAT]
    _, averaged = summarise(runs, FIGURES[0])
    assert averaged["mean"].tolist() == [0.9] and averaged["n_classes"].tolist() == [1]
    write_report(runs, tmp_path / "report")
    assert "1 record(s) of an older format" in (tmp_path / "report" / "report.md").read_text()


def test_only_writes_the_named_figures_and_rejects_unknown_ones(grid, tmp_path, capsys):
    main([str(grid), "--out", str(tmp_path / "r"), "--only", "fig3"])
    assert (tmp_path / "r" / "fig3.md").exists() and not (tmp_path / "r" / "fig4.md").exists()
    with pytest.raises(SystemExit):
        main([str(grid), "--out", str(tmp_path / "r"), "--only", "fig9"])
    assert "unknown figure 'fig9'; allowed: fig3, fig4, fig5, fig6, fig7" in capsys.readouterr().err


def test_runs_at_another_eta_m_are_rows_of_their_own_when_asked(grid, tmp_path, capsys, caplog):
    for c in (0, 1):  # the same cells as the grid's ELITE runs, at eta_M 0.3 (and one at 10, not asked for)
        for r_p in (0.1, 0.5):
            fake_run(grid, "elite_svdd", normal_class=c, r_p=r_p, eta_m=0.3, auc=0.6 + 0.1 * c)
    fake_run(grid, "elite_svdd", r_p=0.3, eta_m=10.0)
    # a baseline does not read eta_M: a run of it recorded at 0.3 is no variant of it
    fake_run(grid, "deepsad", r_p=0.3, eta_m=0.3, auc=0.1)
    runs = collect([grid])
    with caplog.at_level("INFO", logger="elite_exp.report"):
        _, paper = summarise(runs, FIG["fig3"])  # the paper's eta_M only: the grid as it was
    assert "fig3: 5 ELITE run(s) at eta_M 0.3 / 10 left out (--eta-m 1,... shows them" in caplog.text
    assert set(paper["method"]) == {"elite_svdd", "deepsad"} and (paper["n_classes"] == 2).all()
    [fig3, fig6] = chosen(["fig3", "fig6"], (1, 0.3))
    assert fig6.eta_m is None and fig3.fixed().startswith("eta_M 1 / 0.3")
    per_class, both = summarise(runs, fig3)
    assert set(both["method"]) == {"elite_svdd", "elite_svdd+eta_m=0.3", "deepsad"}
    other = both[both["method"] == "elite_svdd+eta_m=0.3"].set_index("r_p")
    assert list(other.index) == [0.1, 0.5] and other.loc[0.5, "mean"] == pytest.approx(0.65)
    for method in ("elite_svdd", "deepsad"):
        assert both[both["method"] == method].reset_index(drop=True).equals(
            paper[paper["method"] == method].reset_index(drop=True))
    # ELITE at eta_M 0.3 alone: its runs at 1 are left out, the baselines keep theirs
    _, alone = summarise(runs, chosen(["fig3"], (0.3,))[0])
    assert set(alone["method"]) == {"elite_svdd+eta_m=0.3", "deepsad"}
    assert method_label("elite_svdd+eta_m=0.3") == "ELITE_SVDD (eta_m=0.3)"
    # and where eta_M is the x axis the runs stay one method
    _, sens = summarise(runs, fig6)
    assert set(sens["method"]) == {"elite_svdd"} and sorted(sens["eta_m"]) == [0.3, 1.0]
    main([str(grid), "--out", str(tmp_path / "r"), "--only", "fig3", "--eta-m", "1,0.3"])
    assert "ELITE_SVDD (eta_m=0.3)" not in (tmp_path / "r" / "fig3.md").read_text()  # tables keep record names
    assert "elite_svdd+eta_m=0.3" in (tmp_path / "r" / "fig3.md").read_text()
    drawn = draw_all(runs, tmp_path / "f", ["fig3"], eta_m=(1, 0.3))
    assert [p.name for p in drawn] == ["fig3.png", "fig3.pdf"] and drawn[0].stat().st_size > 0
    for bad, message in (("1,0", "eta_M 0 is not allowed; allowed: one or more finite numbers > 0"),
                         ("inf", "eta_M inf is not allowed"),
                         ("1,x", "'1,x' is not a comma-separated list of numbers")):
        with pytest.raises(SystemExit):
            main([str(grid), "--out", str(tmp_path / "r"), "--eta-m", bad])
        assert message in capsys.readouterr().err


def test_cells_over_fewer_classes_stay_in_their_row_and_say_so(tmp_path):
    for cls in (0, 1):
        fake_run(tmp_path, method="deepsad", normal_class=cls, r_p=0.1, auc=0.8 + 0.1 * cls)
    fake_run(tmp_path, method="deepsad", normal_class=0, r_p=0.3, auc=0.7)
    _, averaged = summarise(collect([tmp_path]), FIGURES[0])
    wide = pivot(averaged, "r_p", ["data", "method"], classes=True)
    assert len(wide) == 1 and wide["n_classes"].tolist() == [2]
    assert wide["r_p=0.1"].tolist() == ["0.850"] and wide["r_p=0.3"].tolist() == ["0.700 (1 cls)"]


def test_seeds_on_fewer_classes_stay_out_of_the_class_average(tmp_path):
    """Seed 0 on classes 0-2, seeds 1 and 2 on class 0 only (e.g. a Fig. 7 run): the cell's mean is seed 0's
    mean over its 3 classes, not a mix of a 3-class and two 1-class means; the per-class table keeps all."""
    for cls in (0, 1, 2):
        fake_run(tmp_path, normal_class=cls, r_p=0.5, seed=0, auc=0.7 + 0.1 * cls)
    for seed in (1, 2):
        fake_run(tmp_path, normal_class=0, r_p=0.5, seed=seed, auc=0.99)
    per_class, averaged = summarise(collect([tmp_path]), FIGURES[0])
    row = averaged.iloc[0]
    assert np.isclose(row["mean"], 0.8) and row["n_seeds"] == 1 and row["n_classes"] == 3
    assert row["n_partial_seeds"] == 2
    assert per_class.set_index("normal_class").loc[0, "n_seeds"] == 3
    # once seed 1 covers the same classes it counts
    for cls in (1, 2):
        fake_run(tmp_path, normal_class=cls, r_p=0.5, seed=1, auc=0.7 + 0.1 * cls)
    _, averaged = summarise(collect([tmp_path]), FIGURES[0])
    row = averaged.iloc[0]
    assert row["n_seeds"] == 2 and row["n_partial_seeds"] == 1
    assert np.isclose(row["mean"], np.mean([0.8, np.mean([0.99, 0.8, 0.9])]))



def test_seeds_on_as_many_other_classes_leave_the_lowest_seed(tmp_path):
    """Seed 1 on class 0, seed 0 on class 1: equally complete, so the lower seed (0) makes the cell and seed 1
    is left out, whichever was written first."""
    fake_run(tmp_path, normal_class=0, r_p=0.5, seed=1, auc=0.9)
    fake_run(tmp_path, normal_class=1, r_p=0.5, seed=0, auc=0.6)
    row = summarise(collect([tmp_path]), FIGURES[0])[1].iloc[0]
    assert np.isclose(row["mean"], 0.6) and row["n_seeds"] == 1 and row["n_partial_seeds"] == 1

def test_averages_over_other_classes_or_without_some_seeds_are_said(tmp_path, caplog):
    """Deep SAD and ELITE on classes 0 and 1 (seed 1) and class 0 (seed 0), LOE on class 0 only: the rows average
    over different classes and seed 0 of the first two is left out; the log and fig3.md say both."""
    for method in ("deepsad", "elite_svdd"):
        fake_run(tmp_path, method, normal_class=0, seed=0)
        for cls in (0, 1):
            fake_run(tmp_path, method, normal_class=cls, seed=1)
    fake_run(tmp_path, "loe_hard_svdd", normal_class=0, seed=0)
    runs = collect([tmp_path])
    with caplog.at_level("WARNING"):
        _, averaged = summarise(runs, FIGURES[0])
    said = [
        "fig3: 2 seed(s) of 2 cell(s) left out of the class averages: they cover other classes than the cell's most "
        "complete seed (the lowest seed of those covering the most classes; n_partial_seeds; the per-class table "
        "keeps them)",
        "fig3: mnist: the class averages cover different classes (loe_hard_svdd: class 0; deepsad, elite_svdd: "
        "classes 0, 1); compare rows over the same classes, or the per-class table"]
    assert [r.getMessage() for r in caplog.records] == said
    write_report(runs, tmp_path / "out", only=["fig3"])
    text = (tmp_path / "out" / "fig3.md").read_text()
    assert all(f"**Note:** {line.removeprefix('fig3: ')}." in text for line in said)
    # the same classes in every row and every seed: nothing to say
    caplog.clear()
    fake_run(tmp_path, "loe_hard_svdd", normal_class=1, seed=0)
    for method in ("deepsad", "elite_svdd"):
        fake_run(tmp_path, method, normal_class=1, seed=0)
    fake_run(tmp_path, "loe_hard_svdd", normal_class=0, seed=1)
    fake_run(tmp_path, "loe_hard_svdd", normal_class=1, seed=1)
    with caplog.at_level("WARNING"):
        _, averaged = summarise(collect([tmp_path]), FIGURES[0])
    assert caplog.records == [] and averaged.attrs["notes"] == []


def test_every_named_method_has_its_own_colour():
    from elite_exp.figures import _color
    from elite_exp.report import METHOD_ORDER

    order = list(METHOD_ORDER)
    assert len({_color(name, order) for name in order}) == len(order)


def test_a_method_with_changed_settings_is_labelled_by_its_base_and_the_settings():
    from elite_exp.report import method_label

    assert method_label("elite_svdd") == "ELITE_SVDD"
    assert method_label("deepsad+baseline.eta=2+train.lr=0.001") == "DeepSAD (baseline.eta=2, train.lr=0.001)"
    assert method_label("my_method") == "my_method"
    assert method_label("ssad+baseline.c_labeled=1e16+train.lr=1e-05") == \
        "SSAD (baseline.c_labeled=1e16, train.lr=1e-05)"
    # an assumed contamination given in the config: the method's label and the value
    assert method_label("soel_svdd_alpha0.1") == "SOEL (SVDD), alpha 0.1"
    assert method_label("elite_svdd_pretrain_warmup5") == "ELITE_SVDD + pre-training + 5-epoch warm-up"
    # every ELITE variant and every scored method, not only those measured so far
    assert method_label("elite_svdd_pretrain_labeled2") == "ELITE_SVDD + pre-training + labeled term x2"
    assert method_label("elite_ae_paper") == "ELITE_AE (paper update)"
    assert method_label("elite_svdd_loe_pretrain_labeled1_inverse_loeterm4_alpha0.2") == \
        "ELITE_SVDD (LOE update) + pre-training + inverse labeled term + LOE term x4, alpha 0.2"
    assert method_label("soel_neutral") == "SOEL (NEUTRAL)" and method_label("labels_rot") == "Labels only (ROT)"
    assert method_label("loe_soft_ae_alpha0.2+train.lr=0.001") == "LOE_S (AE), alpha 0.2 (train.lr=0.001)"
    assert method_label("loe_hard_rot_alpha0") == "Rotation prediction (unsupervised)"
    assert method_label("my_method_alpha1") == "my_method_alpha1"
    # ELITE's LOE term, its weight, and a configured alpha
    assert method_label("elite_svdd_loeterm4") == "ELITE_SVDD + LOE term x4"
    assert method_label("elite_svdd_pretrain_loeterm0.5_alpha0.1") == \
        "ELITE_SVDD + pre-training + LOE term x0.5, alpha 0.1"
    assert method_label("my_method_loeterm1") == "my_method_loeterm1"
    assert method_label("elite_svdd_pretrain_joint_loeterm1_alpha0.2") == \
        "ELITE_SVDD + pre-training + joint batch + LOE term x1, alpha 0.2"


def test_classes_named_by_index_in_some_runs_and_by_name_in_others_are_reported(tmp_path):
    fake_run(tmp_path, data="folder", normal_class="good", auc=0.8)
    fake_run(tmp_path, data="folder", normal_class=1, auc=0.7)
    runs = collect([tmp_path])
    assert sorted(runs["normal_class"]) == ["1", "good"]
    assert write_report(runs, tmp_path / "out", ["fig3"]) and draw_all(runs, tmp_path / "fig", ["fig3"])


def test_a_figure_left_empty_by_other_n_labels_says_how_to_make_them_the_default(tmp_path, caplog):
    import logging

    fake_run(tmp_path, n_labels=10, data="mnist")
    runs = collect([tmp_path])
    runs["n_labels_default"] = 20.0
    with caplog.at_level(logging.INFO, logger="elite_exp.report"):
        write_report(runs, tmp_path / "r", ["fig3"])
    assert ("fig3: no finished run with eta_M 1, the data set's default n_labels (n_labels_default), not written "
            "(1 finished run(s) have other n_labels than their data set's default: mnist: n_labels 10; a data file of "
            "your own that sets n_labels makes it the default, README: Your own data)") in caplog.text


def test_superseded_runs_are_named_once_per_figure(tmp_path, caplog):
    fake_run(tmp_path, auc=0.7)
    fake_run(tmp_path / "again", auc=0.9)
    write_report(collect([tmp_path]), tmp_path / "r", ["fig3"])
    assert caplog.text.count("run(s) superseded by") == 1


def test_records_made_from_other_versions_of_the_data_files_are_named(tmp_path, caplog):
    from elite_exp.records import read_record

    for i, method in enumerate(("elite_svdd", "soel_svdd", "labels_svdd")):
        run_dir = fake_run(tmp_path, method=method, data="folder")
        rec = read_record(run_dir)
        rec["identity"]["data_fingerprint"] = "5b75ab" if i < 2 else "44a3cd"  # files changed before the third
        write_json(run_dir / "result.json", rec)
    fake_run(tmp_path, data="mnist")  # a benchmark data set: no fingerprint
    collect([tmp_path])
    assert caplog.text.count("versions of its data files") == 1
    assert "folder: its records were made from 2 versions of its data files (identity.data_fingerprint: " \
           "44a3cd, 5b75ab)" in caplog.text
    caplog.clear()
    collect([tmp_path / "folder" / "elite_svdd", tmp_path / "folder" / "soel_svdd"])  # one version: nothing said
    assert "versions of its data files" not in caplog.text


def test_an_output_folder_that_cannot_be_made_is_one_error_line(grid, tmp_path, capsys):
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(SystemExit) as exc:
        main([str(grid), "--out", str(tmp_path / "file" / "report")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"--out {tmp_path / 'file' / 'report'} cannot be made: Not a directory" in err
    assert "Traceback" not in err


def test_meta_gradient_axes_are_labelled_with_their_power_of_ten():
    from elite_exp.run_figure import power_of_ten

    values, suffix = power_of_ten(np.array([3e-6, -5e-5]))
    assert suffix == " (x 1e-05)" and np.allclose(values, [0.3, -5.0])
    assert power_of_ten(np.array([0.5, 2.0]))[1] == "" and power_of_ten(np.array([]))[1] == ""


def test_the_same_runs_draw_byte_identical_figures(grid, tmp_path):
    import time

    first = draw_all(collect([grid]), tmp_path / "a")
    time.sleep(1.1)  # a creation date would differ now
    second = draw_all(collect([grid]), tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second] and any(p.suffix == ".pdf" for p in first)
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second))
