"""The bench's estimate of the paper's Fig. 3-6 wall time: the presets' runs and the costing arithmetic."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import yaml

from elite_exp.data.protocol import labels_from_ratio
from tests.conftest import REPO


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", REPO / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["bench"]


def preset(name: str) -> dict:
    return yaml.safe_load((REPO / "conf" / name).read_text())


def test_paper_jobs_are_the_presets_runs_each_once(bench):
    """Every run of +experiment=fig3..fig6 on each data set, 10 classes x 3 seeds x the figure's own axis; the
    runs of Fig. 4 / 5 at the default number of labels and of Fig. 6 at eta_M 1 are Fig. 3's, listed there only."""
    jobs = bench.paper_jobs()
    assert set(jobs) == {(f, d) for f in ("fig3", "fig4", "fig5", "fig6") for d in ("mnist", "fmnist", "cifar10")}
    seen = set()
    for (fig, data), (runs, epochs, batch_size) in jobs.items():
        assert (epochs, batch_size) == (30, 128)
        assert {r["normal_class"] for r in runs} == set(range(10)) and {r["seed"] for r in runs} == {0, 1, 2}
        methods = preset(f"experiment/{fig}.yaml")["hydra"]["sweeper"]["params"]["method"].split(",")
        assert sorted({r["method"] for r in runs}) == sorted(methods)
        default_labels = preset(f"data/{data}.yaml")["n_labels"]
        if fig == "fig3":
            assert {r["r_p"] for r in runs} == {0.1, 0.2, 0.3, 0.4, 0.5}
            assert {(r["n_labels"], r["eta_m"]) for r in runs} == {(default_labels, 1.0)}
            assert len(runs) == 30 * 5 * len(methods)
        elif fig in ("fig4", "fig5"):
            assert {r["r_p"] for r in runs} == {0.1 if fig == "fig4" else 0.5}
            grid = preset(f"data/{data}.yaml")["data"]["r_l_grid"].split(",")
            labels = {labels_from_ratio(float(r_l), 5000) for r_l in grid}
            assert default_labels in labels and len(labels) == 9
            assert {r["n_labels"] for r in runs} == labels - {default_labels}
            assert len(runs) == 30 * 8 * len(methods)
        else:
            assert {r["eta_m"] for r in runs} == {10.0, 25.0, 50.0, 75.0, 100.0} and len(runs) == 30 * 5
        keys = {(data, *sorted(r.items())) for r in runs}
        assert len(keys) == len(runs) and not keys & seen
        seen |= keys
    assert len(seen) == 3 * (2550 + 2 * 1680 + 150)


def test_step_of_every_preset_method(bench):
    """The step each method of the presets trains with: ELITE's, the auto-encoder's, Deep SVDD's, or none."""
    expected = {"elite_svdd": "elite_svdd", "elite_ae": "elite_ae", "deepsvdd": "deepsvdd", "deepsad": "deepsvdd",
                "deepsad_every_batch": "deepsvdd", "ssad": None, "ssad_hybrid": None, "rsrae": "ae", "ae": "ae",
                "labels_svdd": "deepsvdd", "labels_ae": "ae", "loe_hard_svdd": "deepsvdd",
                "loe_soft_svdd": "deepsvdd", "soel_svdd": "deepsvdd", "loe_hard_ae": "ae", "loe_soft_ae": "ae",
                "soel_ae": "ae"}
    names = {m for f in ("fig3", "fig4", "fig5", "fig6")
             for m in preset(f"experiment/{f}.yaml")["hydra"]["sweeper"]["params"]["method"].split(",")}
    assert names == set(expected)
    assert {m: bench.step_of(m) for m in names} == expected


def costs(bench) -> dict[str, float]:
    """Seconds per epoch: Deep SVDD 1, AE 2, ELITE-SVDD 3, ELITE-AE 5 on MNIST; ten times that on CIFAR-10."""
    meta = bench.DEFAULT_META_GRAD
    return {f"{setup}/{step}": scale * cost for setup, scale in (("mnist", 1.0), ("cifar", 10.0))
            for step, cost in (("deepsvdd", 1.0), ("ae", 2.0), (f"elite_svdd/{meta}", 3.0), (f"elite_ae/{meta}", 5.0))}


def test_paper_hours_costs_each_run_by_its_step_and_samples_and_scales_by_the_slice(bench):
    """Steps timed with batches of 100 (ELITE's with the setup's 20 / 100 labels), runs with batches of 50 and
    10 epochs. An MNIST epoch (per run): ELITE-SVDD with 20 labels 3 * (70/50) / (120/100) = 3.5; Deep SVDD 1;
    Deep SAD with the labels in every batch 1 * 70/50 = 1.4; labels-only AE 2 * 20/50 = 0.8; SOEL-AE 2 * 1.4 = 2.8;
    SSAD 0; two pre-trainings (Deep SVDD and Deep SAD share seed 0's, hybrid SSAD has seed 1's) 2 * 2: 13.5, so
    135 s. CIFAR-10 ELITE-AE with 100 labels: 50 * (150/50) / (200/100) = 75 an epoch, 750 s. The slice (4
    ELITE-SVDD, 4 Deep SVDD with their own pre-training, 10 epochs: 10 * (4 * 3.5 + 4 * 3) = 260 s) took 520 s
    with one launcher and 260 s with the other."""
    split = {"normal_class": 0, "r_p": 0.1, "eta_m": 1.0, "n_labels": 20}
    mnist = [{**split, "seed": seed, "method": m} for m, seed in (
        ("elite_svdd", 0), ("deepsvdd", 0), ("deepsad_every_batch", 0), ("labels_ae", 0), ("soel_ae", 0),
        ("ssad", 0), ("ssad_hybrid", 1))]
    # with 40 labels (another split): ELITE-SVDD 3 * (90/50) / 1.2 = 4.5, labels-only AE 2 * 40/50 = 1.6, Deep SAD
    # (its labels among the batches) 1 and its own pre-training 2: 9.1 an epoch, 91 s
    mnist += [{**split, "n_labels": 40, "seed": 0, "method": m} for m in ("elite_svdd", "labels_ae", "deepsad")]
    cifar = [{**split, "seed": 0, "n_labels": 100, "method": "elite_ae"}]
    jobs = {("fig3", "mnist"): (mnist, 10, 50), ("fig3", "fmnist"): ([], 10, 50), ("fig3", "cifar10"): (cifar, 10, 50)}
    jobs.update({(f, d): ([], 30, 128) for f in ("fig4", "fig5", "fig6") for d in ("mnist", "fmnist", "cifar10")})
    slice_ = {"data": "mnist", "epochs": None, "launchers": {"basic": {"wall_s": 520.0}, "parallel": {"wall_s": 260.0}}}
    est = bench.paper_hours(slice_, costs(bench), 100, jobs)
    assert est["runs"] == {"fig3": 11, "fig4": 0, "fig5": 0, "fig6": 0, "total": 11}
    assert est["hours"]["basic"]["fig3"] == pytest.approx(2 * (135 + 91 + 750) / 3600)
    assert est["hours"]["parallel"]["total"] == pytest.approx((135 + 91 + 750) / 3600)
    assert est["hours"]["basic"]["fig6"] == 0


def test_no_estimate_without_a_full_mnist_slice_and_both_setups_timed(bench):
    """The reason names what is missing: the slice, MNIST, the runs' epochs (a shorter slice would scale each run's
    fixed costs by the epochs), a setup's timed step."""
    slice_ = {"data": "mnist", "epochs": None, "launchers": {"basic": {"wall_s": 1.0}}}
    assert bench.no_estimate_reason(slice_, costs(bench), 30) is None
    assert bench.no_estimate_reason({**slice_, "epochs": 30}, costs(bench), 30) is None
    assert "--no-slice" in bench.no_estimate_reason(None, costs(bench), 30)
    assert "digits, not MNIST" in bench.no_estimate_reason({**slice_, "data": "digits"}, costs(bench), 30)
    short = bench.no_estimate_reason({**slice_, "epochs": 3}, costs(bench), 30)
    assert "3-epoch runs, the paper's runs have 30" in short
    partial = {k: v for k, v in costs(bench).items() if not k.startswith("cifar/elite_ae")}
    assert f"cifar/elite_ae/{bench.DEFAULT_META_GRAD}" in bench.no_estimate_reason(slice_, partial, 30)
