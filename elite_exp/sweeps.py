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
import subprocess
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


JOBS_PER_CHECKER = 100  # a sweep's check runs on up to one core per this many jobs (a job costs ~0.07 s)


def check_job(config_loader, master_config: DictConfig, num: int, overrides: Sequence[str],
              packed: bool = False) -> tuple[Path | None, object, bool, str]:
    """Compose the job numbered ``num`` (as the launcher numbers it) and check it (ConfigError); returns its run
    folder (None when it cannot be resolved), for the packed launcher (``packed``) its grouping
    (``packing.job_grouping``; else None), whether its config names the job's number (an interpolation of
    ``hydra.job.num`` / ``hydra.job.id`` anywhere in it: else the result holds under any number), and the hash
    of the settings that change its result (``runner.config_hash``). The job's
    ``hydra.job.env_set`` counts as written (a value may name the job's own folder, set only when the job runs):
    jobs that set the same environment pack together, and each pack trains with its first job's."""
    from elite_exp.runner import check_config, config_hash

    cfg = config_loader.load_sweep_config(master_config=master_config, sweep_overrides=list(overrides))
    written = OmegaConf.to_yaml(cfg)  # interpolations as written
    numbered = "job.num" in written or "job.id" in written
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
        _, estimator = check_config(cfg, overrides, on_this_machine=False)
        if not packed:
            return folder, None, numbered, config_hash(cfg)
        from elite_exp.packing import job_grouping

        return folder, job_grouping(cfg, estimator, env), numbered, config_hash(cfg)
    finally:
        hydra_config.cfg = previous


def _check_part(part: Sequence[tuple[int, Sequence[str]]], config_loader, master_config: DictConfig,
                packed: bool, state=None) -> list[tuple[Path | None, object, bool, str] | Exception]:
    """:func:`check_job` for each (number, overrides) of ``part``; a job's error is returned, not raised.
    ``state``: the sweep's Hydra state, for a worker process."""
    if state is not None:
        from hydra.core.singleton import Singleton
        from hydra.core.utils import setup_globals

        setup_globals()
        Singleton.set_state(state)
    out: list = []
    for num, overrides in part:
        try:
            out.append(check_job(config_loader, master_config, num, overrides, packed))
        except Exception as err:  # noqa: BLE001 - raised in the jobs' order by check_jobs
            out.append(err)
    return out


def _check_on_cores(jobs: Sequence[tuple[int, Sequence[str]]], workers: int, config_loader, master_config: DictConfig,
                    packed: bool) -> list:
    """:func:`_check_part` of ``jobs`` spread over ``workers`` processes, results in the order of ``jobs``."""
    from hydra.core.singleton import Singleton
    from joblib import Parallel, delayed

    state = Singleton.get_state()
    parts = Parallel(n_jobs=workers, backend="loky")(
        delayed(_check_part)(jobs[i::workers], config_loader, master_config, packed, state)
        for i in range(workers))
    out: list = [None] * len(jobs)
    for i, part in enumerate(parts):
        out[i::workers] = part
    return out


class _Numbering:
    """Jobs numbered as the launcher numbers them: a job whose run folder an earlier job has is left out (the
    sweeper does not launch it) and takes no number. ``count`` is the number the next launched job gets."""

    def __init__(self):
        self.count = 0
        self.first: dict[Path, int] = {}  # folder -> number of the job that has it
        self.left_out: dict[int, int] = {}  # index of a left-out job -> number of the job it repeats
        self.index_of: dict[int, int] = {}  # number of a launched job -> its index

    def add(self, index: int, folder: Path | None) -> int | None:
        """The number of the job at ``index`` with run folder ``folder`` (None: left out)."""
        if folder is not None and folder in self.first:
            self.left_out[index] = self.first[folder]
            return None
        num, self.count = self.count, self.count + 1
        self.index_of[num] = index
        if folder is not None:
            self.first[folder] = num
        return num


def _differing(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """The keys whose ``key=value`` overrides differ between the override lists ``a`` and ``b`` (a key in one list
    only counts), in ``b``'s order then ``a``'s."""
    def settings(overrides):
        return dict((*o.lstrip("+~").split("=", 1), None)[:2] for o in overrides)

    x, y = settings(a), settings(b)
    return [k for k in dict.fromkeys([*y, *x]) if x.get(k, object) != y.get(k, object)]


def launcher_target(master_config: DictConfig) -> str:
    """The multirun's launcher class (``hydra.launcher._target_``; empty when none is set)."""
    return str(OmegaConf.select(master_config, "hydra.launcher._target_", default=""))


def check_jobs(config_loader, master_config: DictConfig, jobs: Sequence[Sequence[str]]
               ) -> tuple[set[int], dict[int, tuple[tuple[str, ...], object]]]:
    """Compose each job (its override list) as the launcher will, numbered as it numbers them, and check its
    settings; on the first ConfigError print ``error: ...`` naming the job (by its place among all the sweep's
    jobs: ``job #i of n``) and exit with status 2. Hydra composes a job in about 0.07 s of CPU (20 minutes for
    the 18,180 runs of Fig. 3-6 on one core), so a sweep of ``2 * JOBS_PER_CHECKER`` jobs or more is checked
    on several cores.

    Returns (the indices in ``jobs`` of the jobs whose run folder an earlier job already has: the same run,
    they differ only in settings their method does not read, e.g. ``elite.*`` for a baseline, each said in one
    log line; the sweeper leaves them out, so two processes never write one folder; and, for the packed
    launcher, each launched job's number mapped to its overrides and grouping, so that the launcher need not
    compose the jobs again)."""
    from joblib import cpu_count

    _outcome.clear()
    launcher = launcher_target(master_config)
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
    args = (config_loader, master_config, packed)
    workers = min(cpu_count(), len(jobs) // JOBS_PER_CHECKER)
    # a large sweep: every job checked on several cores, numbered by its index; a job after a left-out one gets
    # another number, and is checked again below, in order, if its config names its number
    results = dict(enumerate(_check_on_cores(list(enumerate(jobs)), workers, *args))) if workers > 1 else {}
    numbering = _Numbering()
    grouping: dict[int, tuple[tuple[str, ...], object]] = {}
    hashes: dict[int, str] = {}  # index of a launched job -> config_hash
    for index, overrides in enumerate(jobs):
        result = results.get(index)
        if result is None or (numbering.count != index and (isinstance(result, Exception) or result[2])):
            result = _check_part([(numbering.count, overrides)], *args)[0]
        if isinstance(result, ConfigError):
            _refuse(f"{result} (job #{index} of {len(jobs)}: {' '.join(overrides)})")
        if isinstance(result, Exception):
            raise result
        num = numbering.add(index, result[0])
        if num is None:
            earlier = numbering.index_of[numbering.left_out[index]]
            differ = _differing(jobs[earlier], overrides)
            if hashes[earlier] != result[3]:  # a folder of the user's that does not name what the jobs differ in
                _refuse(f"jobs #{earlier} and #{index} of {len(jobs)} would write one run folder, {result[0]}, with "
                        f"other settings (they differ in {', '.join(differ) or 'their presets'}); give "
                        "hydra.sweep.subdir a form that tells them apart (e.g. ${hydra.job.num}), or leave it at its "
                        "default")
            verb = "does" if len(differ) == 1 else "do"
            log.info("job %s is job #%d's run (%s): left out", " ".join(overrides), numbering.left_out[index],
                     f"they differ only in {', '.join(differ)}, which {verb} not change its result" if differ
                     else "the same settings")
        else:
            hashes[index] = result[3]
            if packed:
                grouping[num] = (tuple(overrides), result[1])
    return set(numbering.left_out), grouping


def submission_folder(master_config: DictConfig) -> tuple[Path | None, set[Path]]:
    """For the Slurm launcher: the folder submitit writes a submission's files into (``hydra.launcher.submitit_folder``
    up to its first job-id tag, as submitit cuts it) and the entries it holds before the sweep; else (None, set())."""
    if "SlurmLauncher" not in launcher_target(master_config):
        return None, set()
    from submitit.core.utils import JobPaths

    folder = JobPaths.get_first_id_independent_folder(OmegaConf.select(master_config, "hydra.launcher.submitit_folder"))
    return folder, set(folder.iterdir()) if folder.is_dir() else set()


def stop_if_submission_refused(err: Exception, launched: int, folder: Path | None, before: set[Path]) -> None:
    """When ``err`` is a job submission the Slurm cluster refused (submitit's ``FailedJobError`` raised for a failed
    ``sbatch`` call: no controller reached, ``SLURM_CONF`` unset, a partition that does not exist, ...), stop with
    one ``error:`` line holding sbatch's last message, exit status 2; ``launched``: the jobs of earlier batches,
    which were submitted. When none was, the submission files it left in ``folder`` (:func:`submission_folder`; not
    in ``before``) are removed, and the folder if it is then empty. Anything else, a job that failed on the
    cluster included, returns (the caller raises it)."""
    try:
        from submitit.core.utils import FailedJobError
    except ImportError:  # no submitit: no Slurm launcher
        return
    if not (isinstance(err, FailedJobError) and isinstance(err.__cause__, subprocess.CalledProcessError)):
        return
    said = [line.strip() for line in str(err).splitlines() if line.strip()]
    if launched == 0 and folder is not None:
        try:
            for path in set(folder.iterdir()) - before:
                if path.is_file() and (path.suffix == ".pkl" or path.name.startswith(".submission_file_")):
                    path.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()
        except OSError:  # left as it is: the error below matters more
            pass
    before_it = ("no job was submitted" if launched == 0
                 else f"the {launched} job(s) of the batches before it were submitted")
    print(f"error: sbatch refused the submission ({said[-1] if said else 'no message'}); {before_it}. Check that "
          "this machine reaches the Slurm cluster (sinfo, SLURM_CONF) and the launcher's settings (hydra.launcher.*), "
          "or run the sweep here with hydra/launcher=parallel", file=sys.stderr)
    sys.exit(2)


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
