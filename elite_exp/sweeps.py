"""What the runner's sweeper (``hydra/sweeper=elite_exp``) adds to Hydra's basic one.

* :func:`check_jobs`: before any job of a multirun starts, every job's config is composed and
  checked (:func:`elite_exp.runner.check_config`; the device by its name only, since a launcher
  may run the jobs elsewhere); the first bad one stops the sweep with one line naming the value
  and the job (exit status 2), so a mistake in the 300th job is not found hours in.
* :func:`same_run_key`: jobs that differ only in settings their method does not read
  (``-m method=elite_svdd,deepsvdd eta_m=1,10``: Deep SVDD does not read eta_M) are one run; the
  sweep runs it once (the first such job) and says which jobs it left out.
* :func:`count_outcomes` and :func:`finish`: after the jobs, one line counting finished, skipped
  and failed runs (runs not run because their folder holds another run's record count as
  failed); when any failed, one line naming their records and exit status 1. Each failure is
  recorded and the other jobs still ran.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn
from omegaconf import DictConfig, OmegaConf, open_dict

from elite_exp.errors import ConfigError

# the last multirun's outcome in this process: (summary line, error line or None), for finish()
_outcome: list[tuple[str, str | None]] = []
# how many jobs the last multirun left out as repeats of another job's run (check_jobs), for count_outcomes()
_repeated: list[int] = []


def same_run_key(cfg: DictConfig) -> str:
    """The method's name and every setting of ``cfg`` that changes the result (``runner.result_settings``,
    resolved) and that the method reads (``registry.is_read_by_method``): jobs with equal keys compute
    the same run."""
    from elite_exp.methods.registry import is_read_by_method, method_name
    from elite_exp.records import flatten
    from elite_exp.runner import result_settings

    settings = flatten(result_settings(OmegaConf.to_container(cfg, resolve=True)))
    read = {k: v for k, v in settings.items() if is_read_by_method(k, cfg)}
    return json.dumps([method_name(cfg), read], sort_keys=True, default=str)


def check_jobs(config_loader, master_config: DictConfig, jobs: Sequence[Sequence[str]]) -> set[int]:
    """Compose each job (its override list) as the launcher will and check its settings; on the first
    ConfigError print ``error: ...`` naming the job (numbered as Hydra's launch lines) and exit with
    status 2. Returns the numbers of the jobs that repeat an earlier job's run (:func:`same_run_key`),
    each named in one line; none when a job's settings use its number (``${hydra:job.num}``), which
    leaving jobs out would change."""
    from elite_exp.methods.registry import base_name
    from elite_exp.runner import check_config

    _outcome.clear()
    _repeated.clear()
    numbered = any("hydra:job" in o for overrides in jobs for o in overrides)
    first_of: dict[str, int] = {}
    repeats: dict[int, tuple[int, str]] = {}
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    try:
        for num, overrides in enumerate(jobs):
            cfg = config_loader.load_sweep_config(master_config=master_config, sweep_overrides=list(overrides))
            with open_dict(cfg):  # as the launcher numbers the job, for ${hydra:job.num} in its settings
                cfg.hydra.job.num, cfg.hydra.job.id = num, str(num)
            hydra_config.set_config(cfg)
            with open_dict(cfg):
                del cfg["hydra"]
            try:
                check_config(cfg, overrides, on_this_machine=False)
            except ConfigError as err:
                print(f"error: {err} (job #{num} of {len(jobs)}: {' '.join(overrides)}); no job was started",
                      file=sys.stderr)
                sys.exit(2)
            if not numbered:
                first = first_of.setdefault(same_run_key(cfg), num)
                if first != num:
                    repeats[num] = (first, base_name(cfg))
    finally:
        hydra_config.cfg = previous
    for num, (first, method) in repeats.items():
        unread = sorted(set(jobs[num]) - set(jobs[first]))
        print(f"left out job #{num} ({' '.join(jobs[num])}): the same run as job #{first}; {method} does not "
              f"read {', '.join(o.split('=')[0] for o in unread)}")
    _repeated.append(len(repeats))
    return set(repeats)


def count_outcomes(returns: Sequence[Sequence[JobReturn]]) -> None:
    """Count the jobs' records (None: skipped, a finished record was there) for :func:`finish`."""
    records = [r.return_value for batch in returns for r in batch]
    failed = [rec for rec in records if rec is not None and rec["status"] != "ok"]
    done = sum(rec is not None and rec["status"] == "ok" for rec in records)
    left_out = f", {_repeated[0]} left out (the same run as another job)" if _repeated and _repeated[0] else ""
    summary = (f"sweep: {len(records)} run(s): {done} finished, {records.count(None)} skipped (finished before), "
               f"{len(failed)} failed or not run{left_out}")
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
