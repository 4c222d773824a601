"""The bench's estimate of the paper's Fig. 3-6 wall time: the presets' jobs and the costing arithmetic."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import yaml

from tests.conftest import REPO


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", REPO / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["bench"]


def preset_methods(fig: str) -> list[str]:
    return yaml.safe_load((REPO / "conf" / "experiment" / f"{fig}.yaml").read_text())[
        "hydra"]["sweeper"]["params"]["method"].split(",")


def test_paper_jobs_are_the_presets_sweeps(bench):
    """Every job of +experiment=fig3..fig6 on each data set: 10 classes x 3 seeds x the figure's own axis."""
    jobs = bench.paper_jobs()
    assert set(jobs) == {(f, d) for f in ("fig3", "fig4", "fig5", "fig6") for d in ("mnist", "fmnist", "cifar10")}
    for (fig, _), (js, epochs) in jobs.items():
        assert epochs == 30
        assert {j["normal_class"] for j in js} == {str(k) for k in range(10)}
        assert {j["seed"] for j in js} == {"0", "1", "2"}
        methods = preset_methods(fig)
        assert sorted({j["method"] for j in js}) == sorted(methods)
        if fig == "fig3":
            assert {j["r_p"] for j in js} == {"0.1", "0.2", "0.3", "0.4", "0.5"}
            assert len(js) == 30 * 5 * len(methods)
        elif fig in ("fig4", "fig5"):
            assert {j["r_p"] for j in js} == {"0.1" if fig == "fig4" else "0.5"}
            assert len(js) == 30 * 9 * len(methods)  # 9 label ratios on each data set (20-100 / 100-500 labels)
        else:
            assert {j["eta_m"] for j in js} == {"1", "10", "25", "50", "75", "100"} and len(js) == 30 * 6


def test_paper_hours_costs_each_run_by_its_step_and_scales_by_the_slice(bench):
    """MNIST steps cost 1 s an epoch, CIFAR-10 steps 2; the slice (4 ELITE + 4 Deep SVDD runs, each with its own
    pre-training, at the runner's epochs, here 10: 120 s of training) took 240 s with one launcher, so its
    estimate is twice the serial training time, and 120 s with the other."""
    meta = bench.DEFAULT_META_GRAD
    costs = {f"{setup}/{step}": cost for setup, cost in (("mnist", 1.0), ("cifar", 2.0))
             for step in ("deepsvdd", "ae", f"elite_svdd/{meta}", f"elite_ae/{meta}")}
    split = {"normal_class": "0", "r_p": "0.1", "seed": "0"}
    fig3 = [{**split, "method": m} for m in ("elite_svdd", "deepsvdd", "deepsad", "ssad_hybrid", "ssad", "loe_hard_ae")]
    # ELITE 10 + Deep SVDD 10 + Deep SAD 10 + LOE-AE 10 + one shared pre-training 10; SSAD costs nothing
    jobs = {("fig3", "mnist"): (fig3, 10), ("fig3", "fmnist"): (fig3[:1], 10),
            ("fig3", "cifar10"): ([{**split, "method": "elite_ae"}], 10)}
    jobs.update({(f, d): ([], 30) for f in ("fig4", "fig5", "fig6") for d in ("mnist", "fmnist", "cifar10")})
    slice_ = {"data": "mnist", "epochs": None, "launchers": {"basic": {"wall_s": 240.0}, "parallel": {"wall_s": 120.0}}}
    est = bench.paper_hours(slice_, costs, jobs)
    assert est["runs"] == {"fig3": 8, "fig4": 0, "fig5": 0, "fig6": 0, "total": 8}
    serial = (50 + 10) + 10 * 2.0  # MNIST, FMNIST (as MNIST), CIFAR-10
    assert est["hours"]["basic"]["fig3"] == pytest.approx(2 * serial / 3600)
    assert est["hours"]["parallel"]["total"] == pytest.approx(serial / 3600)
    assert est["hours"]["basic"]["fig6"] == 0
    # the slice's epochs scale its serial time: 3-epoch runs taking 72 s run at the speed of 10-epoch ones taking 240
    short = bench.paper_hours({**slice_, "epochs": 3, "launchers": {"basic": {"wall_s": 72.0}}}, costs, jobs)
    assert short["hours"]["basic"]["fig3"] == pytest.approx(2 * serial / 3600)


def test_paper_hours_needs_an_mnist_slice_and_both_setups(bench):
    costs = {"mnist/deepsvdd": 1.0}
    slice_ = {"data": "mnist", "epochs": None, "launchers": {"basic": {"wall_s": 1.0}}}
    assert bench.paper_hours(slice_, costs, {}) is None
    assert bench.paper_hours({**slice_, "data": "digits"}, costs, {}) is None
