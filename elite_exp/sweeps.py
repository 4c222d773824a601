"""What the runner's sweeper (``hydra/sweeper=elite_exp``) adds to Hydra's basic one.

* :func:`check_jobs`: before any job of a multirun starts (and, for the Slurm launcher, only where
  ``sbatch`` is found), every job's config is composed and
  checked (:func:`elite_exp.runner.check_config`; the device by its name only, since a launcher
  may run the jobs elsewhere); the first bad one stops the sweep with one line naming the value
  and the job (exit status 2), so a mistake in the 300th job is not found hours in. A job whose
  run folder an earlier job has (the same run) is left out.
* :func:`count_outcomes` and :func:`finish`: after the jobs, one line counting finished, skipped
  and failed runs (runs not run because their folder holds another run's record count as
  failed); when any failed, one line naming their records and exit status 1. Each failure is
  recorded and the other jobs still ran.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn
from omegaconf import DictConfig, OmegaConf, open_dict

from elite_exp.errors import ConfigError

log = logging.getLogger("elite_exp")

# the last multirun's outcome in this process: (summary line, error line or None), for finish()
_outcome: list[tuple[str, str | None]] = []


PARALLEL_CHECK = 200  # jobs from which the check is spread over this machine's cores (a job costs ~0.07 s)


def check_job(config_loader, master_config: DictConfig, num: int, overrides: Sequence[str],
              total: int | None = None, packed: bool = False) -> tuple[Path | None, object]:
    """Compose the job numbered ``num`` (as the launcher numbers it) of the sweep's ``total`` and check it
    (ConfigError naming the job); returns its run folder (None where the check fails) and, for the packed launcher
    (``packed``), its grouping (``packing.job_grouping``; else None). The job's ``hydra.job.env_set`` counts as
    written (a value may name the job's own folder, set only when the job runs): jobs that set the same
    environment pack together, and each pack trains with its first job's."""
    from elite_exp.runner import check_config

    cfg = config_loader.load_sweep_config(master_config=master_config, sweep_overrides=list(overrides))
    with open_dict(cfg):  # as the launcher numbers the job, for ${hydra:job.num} in its settings
        cfg.hydra.job.num, cfg.hydra.job.id = num, str(num)
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(cfg)
    try:
        try:
            folder = Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)
        except Exception:  # noqa: BLE001 - a config the check below rejects, naming the bad value
            folder = None
        env = OmegaConf.to_container(cfg.hydra.job.env_set, resolve=False)
        with open_dict(cfg):
            del cfg["hydra"]
        try:
            _, estimator = check_config(cfg, overrides, on_this_machine=False)
        except ConfigError as err:
            raise ConfigError(f"{err} (job #{num}{f' of {total}' if total else ''}: {' '.join(overrides)})") from None
        if not packed:
            return folder, None
        from elite_exp.packing import job_grouping

        return folder, job_grouping(cfg, estimator, env)
    finally:
        hydra_config.cfg = previous


def _check_part(part: Sequence[tuple[int, Sequence[str]]], config_loader, master_config: DictConfig, total: int,
                packed: bool, state) -> list[tuple[Path | None, object] | ConfigError]:
    """:func:`check_job` for each (number, overrides) of ``part`` in a worker process given the sweep's Hydra
    state; a job's ConfigError is returned."""
    from hydra.core.singleton import Singleton
    from hydra.core.utils import setup_globals

    setup_globals()
    Singleton.set_state(state)
    out = []
    for num, overrides in part:
        try:
            out.append(check_job(config_loader, master_config, num, overrides, total, packed))
        except ConfigError as err:
            out.append(err)
    return out


def check_jobs(config_loader, master_config: DictConfig, jobs: Sequence[Sequence[str]]
               ) -> tuple[set[int], dict[int, tuple[tuple[str, ...], object]]]:
    """Compose each job (its override list) as the launcher will and check its settings; on the first
    ConfigError print ``error: ...`` naming the job (numbered as Hydra's launch lines) and exit with
    status 2. A sweep of :data:`PARALLEL_CHECK` jobs or more is composed on all of this machine's cores
    (Hydra composes a job in about 0.07 s: 20 minutes for the 18,180 runs of Fig. 3-6 on one core).

    Returns (the indices in ``jobs`` of the jobs whose run folder an earlier job already has: the same run,
    they differ only in settings their method does not read, e.g. ``elite.*`` for a baseline, each said in one
    log line; the sweeper leaves them out, so two processes never write one folder; and, for the packed
    launcher, each launched job's number, as the launcher numbers it, mapped to its overrides and grouping, so
    that the launcher need not compose the jobs again)."""
    from joblib import Parallel, cpu_count, delayed

    _outcome.clear()
    launcher = str(OmegaConf.select(master_config, "hydra.launcher._target_", default=""))
    if "SlurmLauncher" in launcher and shutil.which("sbatch") is None:
        _refuse("hydra/launcher=slurm needs a Slurm cluster (sbatch is not on this machine's PATH); run the sweep "
                "on a Slurm login node, or here with hydra/launcher=parallel")
    if "JoblibLauncher" in launcher and OmegaConf.select(master_config, "hydra.launcher.n_jobs") == 0:
        _refuse("hydra.launcher.n_jobs=0 is not allowed; give the number of runs at once (>= 1, or -1: one per core)")
    packed = "PackedLauncher" in launcher
    if packed:
        from elite_exp.packing import check_settings

        settings = OmegaConf.select(master_config, "hydra.launcher")
        try:
            check_settings(settings.pack_size, settings.n_jobs, settings.memory_fraction)
        except ConfigError as err:
            _refuse(str(err))
    numbered = list(enumerate(jobs))
    checked: list = [None] * len(jobs)  # a first pass on all cores; else each job is composed in order below
    cores = cpu_count()
    if len(jobs) >= PARALLEL_CHECK and cores > 1:
        from hydra.core.singleton import Singleton

        state = Singleton.get_state()
        parts = Parallel(n_jobs=cores, backend="loky")(
            delayed(_check_part)(numbered[i::cores], config_loader, master_config, len(jobs), packed, state)
            for i in range(cores))
        for i, part in enumerate(parts):
            checked[i::cores] = part
    folders: dict[Path, int] = {}
    repeats: set[int] = set()
    grouping: dict[int, tuple[tuple[str, ...], object]] = {}
    for index, overrides in numbered:
        num = index - len(repeats)  # the launcher's number: repeats are not launched
        result = checked[index]
        if result is None or num != index:  # composed in order here, or numbered otherwise than by the first pass
            try:
                result = check_job(config_loader, master_config, num, overrides, len(jobs), packed)
            except ConfigError as err:
                result = err
        if isinstance(result, ConfigError):
            _refuse(str(result))
        folder, group = result
        if folder in folders:
            log.info("job #%d (%s) is job #%d's run (its method does not read what they differ in): left out",
                     index, " ".join(overrides), folders[folder])
            repeats.add(index)
        else:
            if folder is not None:
                folders[folder] = index
            if packed:
                grouping[num] = (tuple(overrides), group)
    return repeats, grouping


def _refuse(message: str) -> None:
    """Stop the multirun before any job: one ``error:`` line, exit status 2."""
    print(f"error: {message}; no job was started", file=sys.stderr)
    sys.exit(2)


def count_outcomes(returns: Sequence[Sequence[JobReturn]]) -> None:
    """Count the jobs' records (None: skipped, a finished record was there) for :func:`finish`."""
    records = [r.return_value for batch in returns for r in batch]
    failed = [rec for rec in records if rec is not None and rec["status"] != "ok"]
    done = sum(rec is not None and rec["status"] == "ok" for rec in records)
    summary = (f"sweep: {len(records)} run(s): {done} finished, {records.count(None)} skipped (finished before), "
               f"{len(failed)} failed or not run")
    error = None
    if failed:
        shown = "; ".join(f"{rec['run_dir']}: {rec['error']}: {' '.join(str(rec['reason']).split())}"
                          for rec in failed[:3])
        more = f"; ... ({len(failed) - 3} more)" if len(failed) > 3 else ""
        error = f"error: {len(failed)} of {len(records)} run(s) failed or were not run: {shown}{more}"
    _outcome[:] = [(summary, error)]


def finish() -> None:
    """After Hydra returned (its end-of-multirun callbacks ran): print the last multirun's count and
    exit with status 1 when any of its runs failed; nothing after a single run."""
    if not _outcome:
        return
    summary, error = _outcome.pop()
    print(summary)
    if error:
        print(error, file=sys.stderr)
        sys.exit(1)
