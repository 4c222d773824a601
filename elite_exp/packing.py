"""The packed launcher (``hydra/launcher=packed``): a multirun's compatible jobs train together as packs.

Jobs are compatible when they run one method with the same hyper-parameters (all but the seed and, unless
training reads it, the contamination: ``DeepDetector._pack_settings``) on one data set with the same n_train
and number of labels, in one ``out_dir`` on one device: they differ in normal class, r_p and seed. Each pack
goes through three steps, each job of it inside Hydra's ``run_job`` (its folder, ``.hydra/`` files, log file
and callbacks, as with the basic launcher: a callback hears ``on_job_start`` and ``on_job_end`` once per job):
:func:`runner.prepare_job` (skip / conflict / failure handling, data, split, estimator),
:func:`runner.train_pack` (one stacked model, ``methods.base.fit_packed``) and
:func:`runner.finish_job` (evaluation and the record). A run whose fit fails is recorded failed; its pack's
other runs go on.

Pack size: ``auto`` is 1 on CPU (a stacked model is slower there than the same runs one after another:
README, Performance) and on CUDA as many runs as fit in ``memory_fraction`` of the GPU's free memory by
:func:`runs_that_fit` (at most :data:`MAX_PACK`). Packs run ``n_jobs`` at a time, one process each (``auto``:
one per CPU core, or per GPU with CUDA; with several GPUs each group of compatible jobs is cut into one part
per GPU, and the parts take the GPUs in turn).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, env_override, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext
from joblib import Parallel, cpu_count, delayed
from omegaconf import DictConfig, OmegaConf, open_dict

from elite_exp.errors import ConfigError
from elite_exp.runner import PendingRun, finish_job, n_labels_of, prepare_job, train_pack

log = logging.getLogger("elite_exp")

MAX_PACK = 128  # the largest auto pack
ACTIVATIONS_PER_INPUT = 64  # estimated training memory per input value of a batch (activations, tangents, grads)


def _setting(name: str, value, allowed: str):
    """``value`` as an int >= 1, or None for ``auto``; ConfigError naming it otherwise."""
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"hydra.launcher.{name}={value!r} is not allowed; allowed: {allowed}")
    return value


def check_settings(pack_size, n_jobs, memory_fraction) -> tuple[int | None, int | None]:
    """The launcher's (pack_size, n_jobs), None for ``auto``; ConfigError for a bad value."""
    size = _setting("pack_size", pack_size, "a number of runs >= 1, or auto")
    jobs = _setting("n_jobs", n_jobs, "a number of packs at once >= 1, or auto")
    number = isinstance(memory_fraction, int | float) and not isinstance(memory_fraction, bool)
    if not number or not 0 < memory_fraction <= 1:
        raise ConfigError(f"hydra.launcher.memory_fraction={memory_fraction!r} is not allowed; it must lie in (0, 1]")
    return size, jobs


def job_grouping(cfg: DictConfig, estimator, env: dict) -> tuple[str, bool, bool]:
    """A composed job's (pack key, trains on a GPU, ``device=auto``), from ``cfg`` without its ``hydra`` node, its
    checked estimator (``runner.check_config``) and ``env``, its ``hydra.job.env_set`` as written. The pack key
    is what the jobs of one pack share: the method and its pack settings, the data set and its options, n_train,
    the number of labels, out_dir, device, threads and environment."""
    key = json.dumps([type(estimator).__name__, estimator._pack_settings(),
                      OmegaConf.to_container(cfg.data, resolve=True), cfg.n_train, n_labels_of(cfg),
                      str(cfg.out_dir), cfg.device, cfg.threads, env], sort_keys=True, default=repr)
    return key, _on_gpu(cfg), cfg.device == "auto"


def _on_gpu(cfg: DictConfig) -> bool:
    return cfg.device != "cpu" and torch.cuda.is_available()


def runs_that_fit(run: PendingRun, memory_fraction: float, sharing: int) -> int:
    """The auto pack size for runs like ``run``: 1 on CPU; on CUDA the number of such runs whose estimated
    memory (three copies of the training data, and :data:`ACTIVATIONS_PER_INPUT` values per input value of a
    batch) fits in ``memory_fraction`` of the device's free memory (memory this process's allocator holds
    unused counts as free) shared by ``sharing`` processes, between 1 and :data:`MAX_PACK`. An estimate: a pack
    that fails as a whole is trained again run by run (``runner.train_pack``)."""
    device = torch.device(run.estimator.device if run.estimator.device != "auto" else "cuda")
    if device.type != "cuda":
        return 1
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info(device)
    free /= max(sharing, 1)
    sample = run.X[0].numel() * run.X.element_size()
    per_run = 3 * run.X.numel() * run.X.element_size() + ACTIVATIONS_PER_INPUT * run.estimator.batch_size * sample
    return max(1, min(MAX_PACK, int(memory_fraction * free // per_run)))


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """Group the jobs into packs and run them (``n_jobs`` at once); returns their JobReturns in job order."""
    setup_globals()
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    pack_size, n_jobs = check_settings(launcher.pack_size, launcher.n_jobs, launcher.memory_fraction)  # (checked)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[tuple[int, list[str]]]] = {}
    on_gpu, spread = False, True  # spread: every job has device=auto (packs may go to any GPU)
    composed = 0  # jobs the sweeper's check did not group
    for num, overrides in enumerate(job_overrides, initial_job_idx):
        checked = launcher.checked_jobs.get(num)
        if checked and checked[0] == tuple(overrides):
            key, gpu, auto = checked[1]
        else:
            key, gpu, auto = _grouping(launcher.hydra_context, config, num, list(overrides))
            composed += 1
        on_gpu |= gpu
        spread &= auto
        # auto on CPU: every job a pack of one
        groups.setdefault(f"{num}" if pack_size is None and not gpu else key, []).append((num, list(overrides)))
    # a unit of work: a pack of pack_size jobs, or (auto on CUDA) a group, packed as its runs' memory allows,
    # cut into one part per GPU
    gpus = (torch.cuda.device_count() if spread else 1) if on_gpu else 0
    parts = max(gpus, 1)
    units = [jobs[i:i + size] for jobs in groups.values()
             for size in [pack_size or -(-len(jobs) // parts)] for i in range(0, len(jobs), size)]
    if n_jobs is None:
        n_jobs = gpus if on_gpu else cpu_count()  # joblib's: the cores this process may use
    n_jobs = min(n_jobs, len(units)) or 1
    note = f" ({composed} job(s) composed here to group them: not checked by the runner's sweeper)" if composed else ""
    log.info("Packed launcher: %d job(s) in %d unit(s) of work (pack_size=%s), %d at once; sweep output dir: %s%s",
             len(job_overrides), len(units), pack_size or "auto", n_jobs, config.hydra.sweep.dir, note)
    for num, overrides in enumerate(job_overrides, initial_job_idx):
        log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
    # processes on one GPU at a time (at most: loky hands the units out as workers free up)
    sharing = -(-n_jobs // gpus) if gpus else 1
    args = (pack_size, launcher.memory_fraction, sharing, launcher.hydra_context, config)
    if n_jobs == 1:
        done = [run_unit(unit, u, *args) for u, unit in enumerate(units)]
    else:  # one process per unit at a time, given the sweep's Hydra state (as Hydra's joblib launcher does)
        state = Singleton.get_state()
        done = Parallel(n_jobs=n_jobs, backend="loky")(delayed(run_unit)(unit, u, *args, state)
                                                       for u, unit in enumerate(units))
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    returns = dict(pair for unit in done for pair in unit)
    return [returns[num] for num in range(initial_job_idx, initial_job_idx + len(job_overrides))]


def _grouping(hydra_context, config: DictConfig, num: int, overrides: list[str]) -> tuple[str, bool, bool]:
    """:func:`job_grouping` of a job that the runner's sweeper did not check (another sweeper): composed here. A
    job the check refuses is a pack of its own: its preparation records the error, as the basic launcher's job."""
    from elite_exp.sweeps import check_job

    try:
        return check_job(hydra_context.config_loader, config, num, overrides, packed=True)[1]
    except ConfigError:
        return f"{num}", False, True


def _job_config(hydra_context, config: DictConfig, num: int, overrides: list[str], unit: int) -> DictConfig:
    """A job's composed config, numbered as the basic launcher numbers it; with ``device=auto`` and several
    GPUs, every job of a unit on the unit's GPU."""
    cfg = hydra_context.config_loader.load_sweep_config(config, overrides)
    with open_dict(cfg):
        cfg.hydra.job.id, cfg.hydra.job.num = num, num
        if cfg.device == "auto" and torch.cuda.device_count() > 1:
            cfg.device = f"cuda:{unit % torch.cuda.device_count()}"
    HydraConfig.instance().set_config(cfg)
    return cfg


class _JobPhase:
    """The sweep's Hydra callbacks as one phase of a packed job sees them. A job enters Hydra's ``run_job`` twice
    (prepared, then finished after its pack trained), but each callback hears of it as of a basic launcher's job:
    ``on_job_start`` once, where it is prepared, and ``on_job_end`` once, where it ends (after its record is
    written; in the preparation for a job that does not train: skipped, not run, failed), with the basic
    launcher's return value (the record, or None for a skipped job). The jobs of a pack overlap: each starts
    as it is prepared, and they all end after the pack trained."""

    def __init__(self, callbacks, preparing: bool):
        self.callbacks, self.preparing = callbacks, preparing

    def on_job_start(self, **kwargs) -> None:
        if self.preparing:
            self.callbacks.on_job_start(**kwargs)

    def on_job_end(self, *, job_return: JobReturn, **kwargs) -> None:
        trains = (self.preparing and job_return.status == JobStatus.COMPLETED
                  and isinstance(job_return.return_value, PendingRun))
        if not trains:
            self.callbacks.on_job_end(job_return=job_return, **kwargs)


def _in_job(hydra_context, cfg: DictConfig, task, preparing: bool) -> JobReturn:
    context = HydraContext(config_loader=hydra_context.config_loader,
                           callbacks=_JobPhase(hydra_context.callbacks, preparing))
    return run_job(hydra_context=context, task_function=task, config=cfg, job_dir_key="hydra.sweep.dir",
                   job_subdir_key="hydra.sweep.subdir")


def _prepare(cfg: DictConfig, envs: dict[int, dict[str, str]]) -> PendingRun | dict | None:
    """The job prepared (``runner.prepare_job``: what the basic launcher's job returns, or the run to train); its
    ``hydra.job.env_set``, resolved as in its job, goes to ``envs`` under the job's number."""
    hc = HydraConfig.get()
    envs[hc.job.num] = {k: str(v) for k, v in hc.job.env_set.items()}
    return prepare_job(cfg, Path(hc.runtime.output_dir), multirun=True)


def run_unit(jobs: list[tuple[int, list[str]]], unit: int, pack_size: int | None, memory_fraction: float,
             sharing: int, hydra_context, config: DictConfig, singleton_state=None) -> list[tuple[int, JobReturn]]:
    """Prepare, train (as packs, with the ``hydra.job.env_set`` of the pack's first job, as resolved in its job, in
    the environment) and finish the jobs of one unit of work; returns (job number, JobReturn)s. ``pack_size``
    None: packs as large as the first prepared run's memory allows (:func:`runs_that_fit`). ``singleton_state``:
    Hydra's state, for a worker process."""
    if singleton_state is not None:
        setup_globals()
        Singleton.set_state(singleton_state)
    returns: dict[int, JobReturn] = {}
    pending: list[tuple[int, DictConfig, PendingRun]] = []
    size = pack_size
    envs: dict[int, dict[str, str]] = {}
    for num, overrides in jobs:
        cfg = _job_config(hydra_context, config, num, overrides, unit)
        ret = _in_job(hydra_context, cfg, lambda job_cfg: _prepare(job_cfg, envs), preparing=True)
        prepared = ret.return_value if ret.status == JobStatus.COMPLETED else None
        if isinstance(prepared, PendingRun):
            pending.append((num, cfg, prepared))
            size = size or runs_that_fit(prepared, memory_fraction, sharing)
            if len(pending) >= size:
                returns.update(_train_and_finish(pending, envs[pending[0][0]], hydra_context, config))
                pending = []
        else:  # skipped, not run, failed while preparing (its record is written)
            returns[num] = ret
    if pending:
        returns.update(_train_and_finish(pending, envs[pending[0][0]], hydra_context, config))
    return list(returns.items())


def _train_and_finish(pending: list[tuple[int, DictConfig, PendingRun]], env: dict, hydra_context,
                      config: DictConfig) -> dict[int, JobReturn]:
    """Train the prepared runs, as one pack per shape of their training data, then finish each in its job. While
    they train, what they log goes to the sweep's log (Hydra's logging outside a job)."""
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    shapes: dict[tuple, list[PendingRun]] = {}
    for _, _, run in pending:
        shapes.setdefault((tuple(run.X.shape), int((run.y >= 0).sum())), []).append(run)
    with env_override(env):
        for runs in shapes.values():
            train_pack(runs)
    returns = {}
    for num, cfg, run in pending:
        HydraConfig.instance().set_config(cfg)
        returns[num] = _in_job(hydra_context, cfg, lambda _cfg, run=run: finish_job(run), preparing=False)
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return returns
