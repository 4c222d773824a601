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


def check_jobs(config_loader, master_config: DictConfig, jobs: Sequence[Sequence[str]]) -> set[int]:
    """Compose each job (its override list) as the launcher will and check its settings; on the first
    ConfigError print ``error: ...`` naming the job (numbered as Hydra's launch lines) and exit with
    status 2. Returns the numbers of the jobs whose run folder an earlier job already has (the same run:
    they differ only in settings their method does not read, e.g. ``elite.*`` for a baseline), each said in
    one log line: the sweeper leaves them out, so two processes never write one folder."""
    from elite_exp.runner import check_config

    _outcome.clear()
    launcher = str(OmegaConf.select(master_config, "hydra.launcher._target_", default=""))
    if "SlurmLauncher" in launcher and shutil.which("sbatch") is None:
        _refuse("hydra/launcher=slurm needs a Slurm cluster (sbatch is not on this machine's PATH); run the sweep "
                "on a Slurm login node, or here with hydra/launcher=parallel")
    if "JoblibLauncher" in launcher and OmegaConf.select(master_config, "hydra.launcher.n_jobs") == 0:
        _refuse("hydra.launcher.n_jobs=0 is not allowed; give the number of runs at once (>= 1, or -1: one per core)")
    if "PackedLauncher" in launcher:
        from elite_exp.packing import check_settings

        settings = OmegaConf.select(master_config, "hydra.launcher")
        try:
            check_settings(settings.pack_size, settings.n_jobs, settings.memory_fraction)
        except ConfigError as err:
            _refuse(str(err))
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    folders: dict[Path, int] = {}
    repeats: set[int] = set()
    try:
        for num, overrides in enumerate(jobs):
            cfg = config_loader.load_sweep_config(master_config=master_config, sweep_overrides=list(overrides))
            with open_dict(cfg):  # as the launcher numbers the job, for ${hydra:job.num} in its settings
                cfg.hydra.job.num, cfg.hydra.job.id = num, str(num)
            hydra_config.set_config(cfg)
            try:
                folder = Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)
            except Exception:  # noqa: BLE001 - a config the check below rejects, naming the bad value
                folder = None
            with open_dict(cfg):
                del cfg["hydra"]
            try:
                check_config(cfg, overrides, on_this_machine=False)
            except ConfigError as err:
                _refuse(f"{err} (job #{num} of {len(jobs)}: {' '.join(overrides)})")
            if folder in folders:
                log.info("job #%d (%s) is job #%d's run (its method does not read what they differ in): left out",
                         num, " ".join(overrides), folders[folder])
                repeats.add(num)
            elif folder is not None:
                folders[folder] = num
    finally:
        hydra_config.cfg = previous
    return repeats


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
