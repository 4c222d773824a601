"""Training cost of ELITE against its base detector, the training step against plain PyTorch,
inference throughput, and runs per hour of a sweep slice per launcher, in one invocation.

Every training measurement runs the real code path: ELITE through ``EliteDetector.fit`` and
the base detectors (Deep SVDD without pre-training: mean score loss; the plain auto-encoder:
mean reconstruction error) through the same ``run_training`` loop, on the same network, data
and batch size. A monitor times the iterations after the warm-up ones. Repeats are
interleaved (every variant once per round, in a rotated order), so machine noise hits all
variants alike; ratios are the medians of the per-round ratios.

The step comparison trains the project's encoder (channels-last, max-pool before LeakyReLU, on CPU the
fused BatchNorm and max-pool of ``networks.batch_norm`` for stages of at most 8 channels) and the same
network written as plain eager PyTorch (``networks.reference``: NCHW, LeakyReLU then ``nn.MaxPool2d``)
with Deep SVDD's loss and Adam, same weights and batches, interleaved, both with batch statistics and
no running statistics, as the training loop trains.

The sweep slice is 8 runs of the Fig. 3 protocol (MNIST when ``ELITE_DATA_DIR`` holds it, else
digits; ELITE-SVDD and Deep SVDD, classes 0 and 1, r_p 0.1 and 0.5, the runner's default training
unless ``--slice-epochs``), run by the runner as a user runs it, one thread per run, once per
launcher (``basic``: one after another; ``parallel``: one per core; ``packed``: compatible runs as packs,
``pack_size=auto``, one pack per core), timed on the wall clock. From it and the timed steps, the estimated
wall time of the paper's Fig. 3-6 (every run of the presets ``+experiment=fig3`` ... ``fig6`` on MNIST,
Fashion-MNIST and CIFAR-10 at the paper's scale) per launcher: ``paper_hours``.

The pack timing trains packs of K ELITE-SVDD runs (``--pack-sizes``) as one stacked model
(``methods.base.fit_packed``) and compares a run's share of a pack iteration with a run alone.

Setups: ``mnist`` (1x28x28, Deep SVDD's 8-4 LeNet, 20 labels), ``cifar`` (3x32x32, the
32-64-128 LeNet, 100 labels as in the paper) and ``official`` (the official ELITE code's MNIST
network: 1x32x32, 32-64-128 bias-free 5x5 convs, BatchNorm without affine, 128-d output; its
Deep SVDD variant took 0.47 s per iteration on a 2-core machine).

    python scripts/bench.py                        # CPU, all setups
    python scripts/bench.py --device cuda --repeats 5
    python scripts/bench.py --profile mnist        # where ELITE's step spends its time
    python scripts/bench.py --slice-epochs 3       # a shorter sweep slice (runs per hour of 3-epoch runs; no estimate)

MNIST-shaped setups use real MNIST when ``ELITE_DATA_DIR`` holds it, else random tensors of
the same shape (the cost does not depend on pixel values); CIFAR-shaped inputs are random.
The last output line is one JSON object with the medians and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from elite_exp.data.datasets import load_dataset
from elite_exp.errors import ConfigError
from elite_exp.methods.base import fit_packed, resolve_device
from elite_exp.methods.elite import EliteDetector
from elite_exp.methods.meta_gradient import META_GRADIENTS
from elite_exp.methods.training import StepInfo, TrainSettings, run_training, untracked_batch_norm
from elite_exp.networks import NetworkSpec
from elite_exp.networks.conv import ConvEncoder
from elite_exp.networks.reference import plain_conv_encoder
from elite_exp.scores import build_score, score_in_batches

OFFICIAL_S_PER_ITERATION = 0.47  # the official ELITE code, Deep SVDD variant, MNIST, batch 128, 2 CPU cores
EPOCH_SAMPLES = 5000  # the protocol's n_train: one epoch = 5000 // batch_size iterations
DEFAULT_META_GRAD = EliteDetector().meta_grad


@dataclass(frozen=True)
class Setup:
    name: str
    input_shape: tuple[int, int, int]
    spec: NetworkSpec
    n_labels: int
    scores: tuple[str, ...]
    real_mnist_size: int | None  # image size to load real MNIST at, None = random inputs


SETUPS = {
    "mnist": Setup("mnist", (1, 28, 28), NetworkSpec(kind="conv", channels=(8, 4), rep_dim=32), 20, ("svdd", "ae"),
                   28),
    "cifar": Setup("cifar", (3, 32, 32), NetworkSpec(kind="conv", channels=(32, 64, 128), rep_dim=128), 100,
                   ("svdd", "ae"), None),
    "official": Setup("official", (1, 32, 32), NetworkSpec(kind="conv", channels=(32, 64, 128), rep_dim=128), 20,
                      ("svdd",), 32),
}


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def now(device: torch.device) -> float:
    """Seconds on the chosen clock after the device finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return clock()


class IterationTimer:
    """A training monitor: seconds per iteration over the iterations after ``warmup``."""

    def __init__(self, warmup: int, total: int, device: torch.device):
        self.warmup, self.total, self.device = warmup, total, device
        self.start = 0.0
        self.seconds = float("nan")

    def __call__(self, info: StepInfo) -> None:
        if info.iteration == self.warmup:
            self.start = now(self.device)
        elif info.iteration == self.total:
            self.seconds = (now(self.device) - self.start) / (self.total - self.warmup)


def mnist_available() -> bool:
    """MNIST is in ``$ELITE_DATA_DIR`` (the bench never downloads)."""
    return bool(os.environ.get("ELITE_DATA_DIR")) and Path(os.environ["ELITE_DATA_DIR"], "MNIST").is_dir()


def load_inputs(setup: Setup, n_unlabeled: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """(unlabeled x, labeled x, labeled is-anomaly, data description); labeled: half class 0, half other."""
    half = setup.n_labels // 2
    if setup.real_mnist_size is not None and mnist_available():
        ds = load_dataset("mnist", download=False, image_size=setup.real_mnist_size)
        rest = np.arange(n_unlabeled, len(ds.y_train))
        lab = np.concatenate([rest[ds.y_train[rest] == 0][:half], rest[ds.y_train[rest] != 0][:half]])
        return (ds.x_train[:n_unlabeled], ds.x_train[lab], torch.from_numpy(ds.y_train[lab] != 0),
                f"MNIST ({os.environ['ELITE_DATA_DIR']})")
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_unlabeled + 2 * half, *setup.input_shape, generator=g)
    why = (f" (no MNIST folder in ELITE_DATA_DIR={os.environ['ELITE_DATA_DIR']})"
           if setup.real_mnist_size is not None and os.environ.get("ELITE_DATA_DIR") else "")
    return x[:n_unlabeled], x[n_unlabeled:], torch.arange(2 * half) >= half, "random tensors" + why


def time_base(setup: Setup, score: str, x: torch.Tensor, s: TrainSettings, warmup: int,
              device: torch.device) -> tuple[float, torch.nn.Module]:
    """The base detector's step: mean score of the batch (Deep SVDD without pre-training / the AE)."""
    torch.manual_seed(0)
    module = build_score(score, setup.spec, setup.input_shape).to(device)
    x = x.to(device)
    module.prepare(x, batch_size=s.batch_size)
    timer = IterationTimer(warmup, len(x) // s.batch_size, device)
    run_training(module, len(x), lambda net, idx, d: (net(d["x"][idx]).mean(), {}), s,
                 torch.Generator().manual_seed(0), {"x": x}, monitors=timer)
    return timer.seconds, module


def time_elite(setup: Setup, score: str, meta_grad: str, x: torch.Tensor, x_lab: torch.Tensor,
               lab_anomaly: torch.Tensor, s: TrainSettings, warmup: int, device: torch.device) -> float:
    est = EliteDetector(score=score, meta_grad=meta_grad, network=setup.spec, epochs=s.epochs,
                        batch_size=s.batch_size, lr=s.lr, device=str(device), random_state=0)
    y = np.concatenate([np.full(len(x), -1), lab_anomaly.numpy().astype(np.int64)])
    timer = IterationTimer(warmup, len(x) // s.batch_size, device)
    est.fit(torch.cat([x, x_lab]), y, monitor=timer)
    return timer.seconds


def time_inference(module: torch.nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> float:
    """Samples per second of eval-mode scoring in large no-grad batches."""
    x = x.to(device)
    score_in_batches(module, x[:batch_size], batch_size)
    start = now(device)
    score_in_batches(module, x, batch_size)
    return len(x) / (now(device) - start)


def time_steps(setup: Setup, x: torch.Tensor, batch_size: int, iterations: int, repeats: int,
               device: torch.device) -> dict[str, float]:
    """ms per training step of the plain and the project's encoder (Deep SVDD loss, Adam), interleaved
    rounds of ``iterations`` steps; ``speedup`` = median over rounds of plain / project."""
    spec = setup.spec
    batches = x.to(device)[:batch_size * iterations].split(batch_size)
    steppers = {}
    for name, build in (("plain", plain_conv_encoder), ("project", ConvEncoder)):
        torch.manual_seed(0)
        enc = build(setup.input_shape, tuple(spec.channels), spec.rep_dim).to(device)
        opt = torch.optim.Adam(enc.parameters(), lr=1e-4, weight_decay=1e-6)

        def step(enc=enc, opt=opt):
            with untracked_batch_norm([enc]):  # as methods.training trains: batch statistics only
                for b in batches:
                    loss = enc(b).pow(2).sum(1).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
        step()  # warm-up
        steppers[name] = step
    ms: dict[str, list[float]] = {name: [] for name in steppers}
    for r in range(repeats):
        for name in (list(steppers) if r % 2 else list(steppers)[::-1]):
            start = now(device)
            steppers[name]()
            ms[name].append((now(device) - start) / len(batches) * 1000)
    return {"plain_ms": statistics.median(ms["plain"]), "project_ms": statistics.median(ms["project"]),
            "speedup": statistics.median(a / b for a, b in zip(ms["plain"], ms["project"]))}


def time_packs(setup: Setup, x: torch.Tensor, x_lab: torch.Tensor, lab_anomaly: torch.Tensor, s: TrainSettings,
               warmup: int, device: torch.device, sizes: list[int]) -> dict[int, float]:
    """Seconds per training iteration of a pack of K ELITE-SVDD runs (``fit_packed``: K seeds on the same data, the
    default meta-gradient) for each K in ``sizes``: a pack's iteration trains K runs one step each."""
    y = np.concatenate([np.full(len(x), -1), lab_anomaly.numpy().astype(np.int64)])
    X = torch.cat([x, x_lab])
    seconds = {}
    for k in sizes:
        ests = [EliteDetector(network=setup.spec, epochs=s.epochs, batch_size=s.batch_size, lr=s.lr,
                              device=str(device), random_state=seed) for seed in range(k)]
        timer = IterationTimer(warmup, len(x) // s.batch_size, device)
        fit_packed(ests, [X] * k, [y] * k, [timer] + [None] * (k - 1))
        seconds[k] = timer.seconds
    return seconds


SLICE_LAUNCHERS = ("basic", "parallel", "packed")
SLICE_RUNS = 8  # data x elite_svdd, deepsvdd x classes 0, 1 x r_p 0.1, 0.5
# the paper's figures the estimate covers (the presets ``+experiment=figN``, at the paper's scale), on each data
# set, and the bench setup whose timed steps stand for that data set's network
PAPER_FIGURES = ("fig3", "fig4", "fig5", "fig6")
PAPER_DATA = {"mnist": "mnist", "fmnist": "mnist", "cifar10": "cifar"}
# the methods that start from an auto-encoder trained on the run's unlabeled samples; the runner trains it once per
# split and seed and shares it between them (README, Outputs)
PRETRAINING = ("deepsvdd", "deepsad", "deepsad_every_batch", "ssad_hybrid")
TIMED_STEPS = ("deepsvdd", "ae", "elite_svdd", "elite_ae")  # the steps the estimate costs runs by (step_of)


def slice_failure(launcher: str, out: Path, proc: subprocess.CompletedProcess, ok: int) -> str:
    """One message naming what failed: each failed run's error from its record, else the log's tail."""
    errors = []
    for path in out.rglob("result.json"):
        rec = json.loads(path.read_text())
        if rec.get("status") != "ok":
            errors.append(f"  {path.parent.relative_to(out)}: {rec.get('error') or rec.get('reason')}")
    detail = "\n".join(errors) or (proc.stdout + proc.stderr)[-2000:]
    return f"sweep slice with hydra/launcher={launcher}: {ok} of {SLICE_RUNS} runs ok\n{detail}"


def time_slice(epochs: int | None, device: str) -> dict:
    """Runs per hour of the sweep slice under each launcher (wall clock, fresh output folders)."""
    data = "mnist" if mnist_available() else "digits"
    args = ["-m", f"data={data}", "method=elite_svdd,deepsvdd", "normal_class=0,1", "r_p=0.1,0.5", "seed=0",
            "threads=1", "progress=false", "plots=false", f"device={device}"]
    if epochs is not None:
        args.append(f"train.epochs={epochs}")
    cores = len(os.sched_getaffinity(0))
    result = {"data": data, "runs": SLICE_RUNS, "epochs": epochs, "parallel_jobs": cores, "launchers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for launcher in SLICE_LAUNCHERS:
            extra = [f"hydra/launcher={launcher}"]
            if launcher in ("parallel", "packed"):  # packed: pack_size auto (1 on CPU; on CUDA as memory allows)
                extra.append(f"hydra.launcher.n_jobs={cores}")
            out = Path(tmp, launcher)
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "elite_exp", *args, *extra, f"out_dir={out}"],
                                  capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            seconds = time.perf_counter() - start
            ok = sum(json.loads(p.read_text()).get("status") == "ok" for p in out.rglob("result.json"))
            if proc.returncode != 0 or ok != SLICE_RUNS:
                raise SystemExit(slice_failure(launcher, out, proc, ok))
            per_hour = SLICE_RUNS * 3600 / seconds
            result["launchers"][launcher] = {"wall_s": seconds, "runs_per_hour": per_hour}
            print(f"slice {launcher:8s} {seconds:7.1f} s  {per_hour:7.1f} runs/hour ({SLICE_RUNS} {data} runs, "
                  f"{epochs or 'default'} epochs)", flush=True)
    return result


def paper_jobs() -> dict[tuple[str, str], tuple[list[dict], int, int]]:
    """The runs of the Fig. 3-6 presets per (figure, data set): each job of ``+experiment=figN data=<data set>``
    as the project's sweeper (Hydra's basic sweeper) expands it, as ``{method, normal_class, seed, r_p, n_labels,
    eta_m}`` (its overrides over the composed defaults; a label ratio r_l as its number of labels), and the
    runs' ``train.epochs`` and ``train.batch_size``. A run is listed once, under the first figure that holds
    it: the runner skips a run whose record exists, and Fig. 4 / 5 at the default number of labels and Fig. 6
    at eta_M 1 repeat Fig. 3 runs."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from elite_exp.config import CONF_DIR, register
    from elite_exp.data.protocol import labels_from_ratio
    from elite_exp.runner import _register_resolvers

    register()
    _register_resolvers()
    jobs, seen = {}, set()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for fig in PAPER_FIGURES:
            for data in PAPER_DATA:
                cfg = compose("config", overrides=[f"+experiment={fig}", f"data={data}"], return_hydra_config=True)
                params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True)
                overrides = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
                runs = []
                for job in BasicSweeper.split_arguments(overrides, None)[0]:
                    o = dict(x.split("=", 1) for x in job)
                    run = {"method": o["method"], "normal_class": int(o["normal_class"]), "seed": int(o["seed"]),
                           "r_p": float(o.get("r_p", cfg.r_p)), "eta_m": float(o.get("eta_m", cfg.eta_m)),
                           "n_labels": labels_from_ratio(float(o["r_l"]), cfg.n_train) if "r_l" in o
                           else int(cfg.n_labels)}
                    key = (data, *sorted(run.items()))
                    if key not in seen:
                        seen.add(key)
                        runs.append(run)
                jobs[(fig, data)] = (runs, int(cfg.train.epochs), int(cfg.train.batch_size))
    return jobs


def step_of(method: str) -> str | None:
    """The bench's timed step that a run of ``method`` (a record's base name) trains with each epoch: ELITE's
    (``elite_svdd`` / ``elite_ae``), the auto-encoder's (``ae``: every method on the AE score), Deep SVDD's
    (``deepsvdd``: every other method on the svdd score); None for kernel SSAD (no network; its solve is not
    timed)."""
    if method.startswith("elite_"):
        return method
    if method == "ssad" or method == "ssad_hybrid":
        return None
    return "ae" if method in ("ae", "rsrae") or method.endswith("_ae") else "deepsvdd"


def samples_per_step(method: str, batch_size: int, n_labels: int) -> int:
    """Samples a training step of ``method`` processes: the labeled set alone (labels-only), a batch and the
    whole labeled set (ELITE's validation set, SOEL's and Deep SAD's labels in every batch), else a batch."""
    if method.startswith("labels_"):
        return n_labels
    if method.startswith(("elite_", "soel_")) or method == "deepsad_every_batch":
        return batch_size + n_labels
    return batch_size


def cost_key(setup: str, step: str) -> str:
    """The ``s_per_epoch`` key of a timed step of ``setup`` (ELITE's with the default meta-gradient)."""
    return f"{setup}/{step}" + (f"/{DEFAULT_META_GRAD}" if step.startswith("elite_") else "")


def serial_seconds(runs: list[dict], epochs: int, batch_size: int, s_per_epoch: dict[str, float], setup: str,
                   timed_batch: int) -> float:
    """Training seconds of ``runs`` one after another at the bench's per-epoch costs of ``setup`` (timed with
    batches of ``timed_batch`` samples; ELITE's also with the setup's labeled set): per run ``epochs`` epochs of
    its step (:func:`step_of`), a step's cost taken as proportional to the samples it processes
    (:func:`samples_per_step`; an epoch is n_train / ``batch_size`` steps), plus one auto-encoder pre-training of
    ``epochs`` epochs per split and seed that a :data:`PRETRAINING` method runs (shared by the others of that split
    and seed)."""
    def cost(step, run):  # an epoch: n_train / batch steps, so per epoch the samples per step per batch sample count
        timed = samples_per_step(step, timed_batch, SETUPS[setup].n_labels) / timed_batch
        runs_share = samples_per_step(run["method"], batch_size, run["n_labels"]) / batch_size
        return s_per_epoch[cost_key(setup, step)] * runs_share / timed

    total = sum(epochs * cost(step, run) for run in runs if (step := step_of(run["method"])) is not None)
    splits = {tuple(sorted((k, v) for k, v in run.items() if k != "method"))
              for run in runs if run["method"] in PRETRAINING}
    return total + len(splits) * epochs * s_per_epoch[cost_key(setup, "ae")]


def no_estimate_reason(sweep_slice: dict | None, s_per_epoch: dict[str, float], epochs: int | None) -> str | None:
    """Why :func:`paper_hours` cannot estimate from this bench run (None: it can): it needs the slice, on MNIST,
    at the runs' own ``epochs`` (a shorter slice would scale each run's fixed costs, start-up, data and
    evaluation, with the epochs), and the mnist and cifar setups timed with the default meta-gradient."""
    if sweep_slice is None:
        return "the slice did not run (--no-slice)"
    if sweep_slice["data"] != "mnist":
        return "the slice ran on digits, not MNIST (copy MNIST into ELITE_DATA_DIR)"
    if sweep_slice["epochs"] not in (None, epochs):
        return (f"the slice ran {sweep_slice['epochs']}-epoch runs, the paper's runs have {epochs} "
                f"(drop --slice-epochs)")
    keys = [cost_key(setup, step) for setup in ("mnist", "cifar") for step in TIMED_STEPS]
    missing = [key for key in keys if key not in s_per_epoch]
    if missing:
        return (f"no timed step for {', '.join(missing)} (it needs --setups mnist,cifar and --meta-grads with "
                f"{DEFAULT_META_GRAD})")
    return None


def paper_hours(sweep_slice: dict, s_per_epoch: dict[str, float], timed_batch: int,
                jobs: dict[tuple[str, str], tuple[list[dict], int, int]]) -> dict:
    """Estimated wall hours of the paper's Fig. 3-6 (``jobs``: :func:`paper_jobs`) per launcher and figure, and
    the number of runs, for a bench run that :func:`no_estimate_reason` lets through. Each run's training is
    costed by the bench's per-epoch times on the device, steps of ``timed_batch`` samples
    (:func:`serial_seconds`; Fashion-MNIST as MNIST, CIFAR-10 by the cifar setup); the slice, timed with each
    launcher at the runs' epochs, converts that serial training time into the launcher's wall time (its ratio
    of wall time to the slice's own serial training time takes in parallel jobs, packs, data loading and
    evaluation). Approximate: the slice's 8 runs pack less than a full sweep would (packs of 4 at most), a
    step's cost is not exactly proportional to its samples, kernel SSAD's solves are left out; and the slice
    must run on idle cores (its parallel jobs compete with anything else running)."""
    _, epochs, batch_size = jobs[("fig3", "mnist")]
    slice_runs = [{"method": m, "normal_class": c, "r_p": r, "seed": 0, "n_labels": SETUPS["mnist"].n_labels}
                  for m in ("elite_svdd", "deepsvdd") for c in (0, 1) for r in (0.1, 0.5)]
    slice_serial = serial_seconds(slice_runs, epochs, batch_size, s_per_epoch, "mnist", timed_batch)
    serial = {fig: sum(serial_seconds(runs, e, b, s_per_epoch, PAPER_DATA[data], timed_batch)
                       for (f, data), (runs, e, b) in jobs.items() if f == fig) for fig in PAPER_FIGURES}
    hours = {}
    for launcher, v in sweep_slice["launchers"].items():
        scale = v["wall_s"] / slice_serial
        hours[launcher] = {fig: scale * sec / 3600 for fig, sec in serial.items()}
        hours[launcher]["total"] = sum(hours[launcher].values())
    runs = {fig: sum(len(r) for (f, _), (r, _, _) in jobs.items() if f == fig) for fig in PAPER_FIGURES}
    return {"hours": hours, "runs": {**runs, "total": sum(runs.values())}}


def variants(setup: Setup, meta_grads: list[str]) -> list[tuple[str, str]]:
    """(score, meta_grad or 'base') pairs; the official net also runs the double backward (its own algorithm)."""
    extra = ["double_backward"] if setup.name == "official" and "double_backward" not in meta_grads else []
    return [(score, mg) for score in setup.scores for mg in ["base", *meta_grads, *extra]]


def base_name(score: str) -> str:
    return "deepsvdd" if score == "svdd" else "ae"


def run(args) -> dict:
    device = torch.device(args.device)
    s = TrainSettings(epochs=1, batch_size=args.batch_size)
    n_unlabeled = (args.warmup + args.iterations) * args.batch_size
    data = {name: load_inputs(SETUPS[name], n_unlabeled, seed=0) for name in args.setups}
    times: dict[tuple[str, str, str], list[float]] = {}
    inference: dict[tuple[str, str], list[float]] = {}
    for r in range(args.repeats):
        for name in args.setups:
            setup = SETUPS[name]
            x, x_lab, lab_anomaly, _ = data[name]
            todo = variants(setup, args.meta_grads)
            todo = todo[r % len(todo):] + todo[:r % len(todo)]  # rotate the order every round
            for score, mg in todo:
                if mg == "base":
                    sec, module = time_base(setup, score, x, s, args.warmup, device)
                    x_inf = x.repeat((args.inference_samples + len(x) - 1) // len(x), 1, 1, 1)[:args.inference_samples]
                    inference.setdefault((name, score), []).append(
                        time_inference(module, x_inf, args.inference_batch, device))
                else:
                    sec = time_elite(setup, score, mg, x, x_lab, lab_anomaly, s, args.warmup, device)
                times.setdefault((name, score, mg), []).append(sec)
                print(f"round {r + 1}/{args.repeats} {name:8s} {score:4s} {mg:15s} {sec * 1000:8.1f} ms/iteration",
                      flush=True)

    steps = {name: time_steps(SETUPS[name], data[name][0], args.batch_size, args.iterations, args.repeats, device)
             for name in args.setups}
    for name, st in steps.items():
        print(f"step {name:8s} plain {st['plain_ms']:7.1f} ms  project {st['project_ms']:7.1f} ms  "
              f"x{st['speedup']:.2f}", flush=True)
    packs = {}
    for name in args.setups if args.pack_sizes else ():
        x, x_lab, lab_anomaly, _ = data[name]
        alone = statistics.median(times[(name, "svdd", DEFAULT_META_GRAD)])
        per_pack = time_packs(SETUPS[name], x, x_lab, lab_anomaly, s, args.warmup, device, args.pack_sizes)
        packs[name] = {str(k): {"ms_per_pack_iteration": 1000 * sec, "ms_per_run_iteration": 1000 * sec / k,
                                "speedup_over_alone": alone * k / sec} for k, sec in per_pack.items()}
        for k, v in packs[name].items():
            print(f"pack {name:8s} elite_svdd x{k:>3s}: {v['ms_per_pack_iteration']:8.1f} ms/iteration, "
                  f"{v['ms_per_run_iteration']:7.1f} ms per run, x{v['speedup_over_alone']:.2f} over runs alone",
                  flush=True)
    sweep_slice = time_slice(args.slice_epochs, args.device) if args.slice else None

    iters_per_epoch = EPOCH_SAMPLES // args.batch_size
    rows = []
    ratios = {}
    for (name, score, mg), secs in times.items():
        base = times[(name, score, "base")]
        ratio = statistics.median(e / b for e, b in zip(secs, base))
        ratios[f"{name}/{score}/{mg}"] = ratio
        sec = statistics.median(secs)
        rows.append({"setup": name, "method": base_name(score) if mg == "base" else f"elite_{score}",
                     "meta_grad": "" if mg == "base" else mg, "ms/iteration": 1000 * sec,
                     "iterations/s": 1 / sec, f"s/epoch ({iters_per_epoch} it)": sec * iters_per_epoch,
                     "x base": ratio})
    table = pd.DataFrame(rows)
    inf = pd.DataFrame([{"setup": n, "score": sc, "samples/s": statistics.median(v)}
                        for (n, sc), v in inference.items()])
    print()
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.clock} clock, batch {args.batch_size}, "
          f"{args.iterations} timed iterations after {args.warmup} warm-up, {args.repeats} interleaved rounds")
    for name in args.setups:
        spec = SETUPS[name].spec
        print(f"  {name}: {SETUPS[name].input_shape}, conv {'-'.join(map(str, spec.channels))} -> {spec.rep_dim}, "
              f"{SETUPS[name].n_labels} labels, "
              f"data: {data[name][3]}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"\ninference (eval mode, batches of {args.inference_batch}, {args.inference_samples} samples)")
    print(inf.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

    result = {"device": str(device), "threads": torch.get_num_threads(), "clock": args.clock,
              "batch_size": args.batch_size,
              "repeats": args.repeats, "iterations": args.iterations, "default_meta_grad": DEFAULT_META_GRAD,
              "data": {name: data[name][3] for name in args.setups},
              "s_per_epoch": {f"{r['setup']}/{r['method']}" + (f"/{r['meta_grad']}" if r["meta_grad"] else ""):
                              r[f"s/epoch ({iters_per_epoch} it)"] for r in rows},
              "inference_samples_per_s": {f"{n}/{sc}": statistics.median(v) for (n, sc), v in inference.items()},
              "ratios": ratios,
              "step_speedup_over_plain": {name: st["speedup"] for name, st in steps.items()},
              "step_ms": steps, "packs": packs, "sweep_slice": sweep_slice}
    jobs = paper_jobs() if sweep_slice is not None else None  # composes every preset: only with a slice
    result["paper_estimate_missing"] = reason = no_estimate_reason(sweep_slice, result["s_per_epoch"],
                                                                   jobs and jobs[("fig3", "mnist")][1])
    result["paper_estimate"] = estimate = None if reason else paper_hours(sweep_slice, result["s_per_epoch"],
                                                                           args.batch_size, jobs)
    if estimate is None:
        print(f"\nno estimate of the paper's Fig. 3-6: {reason}")
    else:
        print(f"\nthe paper's Fig. 3-6 at the paper's scale ({estimate['runs']['total']} runs), estimated wall hours "
              f"(approximate: README, Performance)")
        print(pd.DataFrame(estimate["hours"]).T.to_string(float_format=lambda v: f"{v:.1f}"))
    main = "mnist" if "mnist" in args.setups else args.setups[0]
    for key, score in (("elite_svdd_over_deepsvdd", "svdd"), ("elite_ae_over_ae", "ae")):
        if (main, score, DEFAULT_META_GRAD) in times:
            result[key] = ratios[f"{main}/{score}/{DEFAULT_META_GRAD}"]
    if "official" in args.setups:
        official = {mg: statistics.median(secs) for (n, _, mg), secs in times.items() if n == "official"}
        result["official_net"] = {mg: {"s_per_iteration": sec, "iterations_per_s": 1 / sec,
                                       "speedup_vs_official_code": OFFICIAL_S_PER_ITERATION / sec}
                                  for mg, sec in official.items()}
    return result


def profile(args) -> None:
    """torch.profiler view of the training iterations: the time per iteration of each region
    (``train.step`` = the method's forward work incl. ELITE's meta-gradients, ``train.update`` =
    backward + optimiser, ``elite.*`` = the meta-gradient parts) and the top operators."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    device = torch.device(args.device)
    setup = SETUPS[args.profile]
    s = TrainSettings(epochs=1, batch_size=args.batch_size)
    n_iter = args.warmup + args.iterations
    x, x_lab, lab_anomaly, _ = load_inputs(setup, n_iter * args.batch_size, seed=0)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])

    def fit(score, mg):
        if mg == "base":
            time_base(setup, score, x, s, args.warmup, device)
        else:
            time_elite(setup, score, mg, x, x_lab, lab_anomaly, s, args.warmup, device)

    todo = [(score, mg) for score in setup.scores for mg in ["base", *args.meta_grads]]
    for score, mg in todo:  # warm-up: first calls load kernels and forward-AD formulas
        fit(score, mg)
    rows = []
    for score, mg in todo:
        with torch_profile(activities=activities) as prof:
            fit(score, mg)
        events = prof.key_averages()
        row = {"score": score, "meta_grad": mg}
        row.update({e.key: e.cpu_time_total / 1000 / n_iter for e in events
                    if e.key.startswith(("train.", "elite."))})
        rows.append(row)
        print(f"\n== {setup.name} {score} {mg}: top operators over {n_iter} iterations and the fit around them ==")
        print(events.table(sort_by="self_cpu_time_total", row_limit=args.profile_rows))
    print(f"\n{setup.name}: CPU ms per iteration by region")
    print(pd.DataFrame(rows).fillna(0).to_string(index=False, float_format=lambda v: f"{v:.1f}"))


def check(p: argparse.ArgumentParser, args) -> None:
    """One error line (argparse's ``p.error``) for the first bad option, naming it and what is allowed."""
    bad_setups = [x for x in args.setups if x not in SETUPS]
    if bad_setups or not args.setups:
        p.error(f"--setups {','.join(bad_setups) or repr('')} is not allowed; allowed: a comma list of "
                f"{', '.join(SETUPS)}")
    bad_grads = [x for x in args.meta_grads if x not in META_GRADIENTS]
    if bad_grads:
        p.error(f"--meta-grads {','.join(bad_grads)} is not allowed; allowed: {', '.join(META_GRADIENTS)}")
    for name in ("repeats", "iterations", "warmup", "batch_size", "inference_samples", "inference_batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} {getattr(args, name)} is not allowed; it must be >= 1")
    given = args.pack_sizes
    try:
        args.pack_sizes = [int(k) for k in given.split(",") if k]
    except ValueError:
        args.pack_sizes = [0]
    if any(k < 1 for k in args.pack_sizes):
        p.error(f"--pack-sizes {given} is not allowed; allowed: a comma list of pack sizes >= 1 (empty: no pack "
                "timing)")
    if args.slice_epochs is not None and args.slice_epochs < 1:
        p.error(f"--slice-epochs {args.slice_epochs} is not allowed; it must be >= 1")
    if args.threads < 0:
        p.error(f"--threads {args.threads} is not allowed; it must be >= 1, or 0 for torch's default")
    try:
        args.device = str(resolve_device(args.device))
    except ConfigError as err:
        p.error(f"--device: {err}")
    if args.clock == "cpu" and (args.device != "cpu" or args.threads != 1):
        p.error("--clock cpu measures this process's CPU work: use it with --device cpu and --threads 1 "
                "(with more threads it adds up every thread's time)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--setups", default="mnist,cifar,official", help="comma list of: " + ", ".join(SETUPS))
    p.add_argument("--meta-grads", default="forward_ad,finite_diff",
                   help="ELITE variants: " + ", ".join(META_GRADIENTS))
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    p.add_argument("--iterations", type=int, default=4, help="timed iterations per measurement")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations before them")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--inference-samples", type=int, default=4096)
    p.add_argument("--inference-batch", type=int, default=2048)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                   help="wall time, or this process's CPU time (CPU device, with --threads 1: robust to other "
                        "processes sharing the cores)")
    p.add_argument("--pack-sizes", default="1,8", help="comma list of pack sizes K to time ELITE-SVDD packs of "
                   "(ms per iteration, speed-up over K runs alone; empty: none)")
    p.add_argument("--slice", action=argparse.BooleanOptionalAction, default=True,
                   help="time the 8-run sweep slice per launcher, and from it and the setups' steps estimate the "
                        "wall time of the paper's Fig. 3-6 (--no-slice: skip both)")
    p.add_argument("--slice-epochs", type=int, default=None, help="epochs of the slice's runs (default: the runner's; "
                   "with fewer, no Fig. 3-6 estimate)")
    p.add_argument("--profile", choices=sorted(SETUPS), help="print torch.profiler tables for this setup instead")
    p.add_argument("--profile-rows", type=int, default=20)
    args = p.parse_args()
    args.setups = [x for x in args.setups.split(",") if x]
    args.meta_grads = [x for x in args.meta_grads.split(",") if x]
    check(p, args)
    global clock
    clock = CLOCKS[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.profile:
        profile(args)
        return
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
