"""What the runner's sweeper (``hydra/sweeper=elite_exp``) adds to Hydra's basic one.

* :func:`check_jobs`: before any job of a multirun starts, every job's config is composed and
  checked (:func:`elite_exp.runner.check_config`); the first bad one stops the sweep with one line
  naming the value and the job (exit status 2), so a mistake in the 300th job is not found hours in.
* :func:`report_outcome`: after the jobs, one line counting finished, skipped and failed runs; when
  any failed, the failed ones' records and exit status 1 (each failure is recorded and the other
  jobs still ran).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn
from omegaconf import DictConfig, open_dict

from elite_exp.errors import ConfigError

log = logging.getLogger("elite_exp")


def check_jobs(config_loader, master_config: DictConfig, batch: Sequence[Sequence[str]]) -> None:
    """Compose each job of ``batch`` (its override lists) as the launcher will and check its
    settings; on the first ConfigError print ``error: ...`` naming the job and exit with status 2."""
    from elite_exp.runner import check_config

    for num, overrides in enumerate(batch):
        cfg = config_loader.load_sweep_config(master_config=master_config, sweep_overrides=list(overrides))
        previous = HydraConfig.instance().cfg
        HydraConfig.instance().set_config(cfg)  # ${hydra:...} and the job number read the job's own
        try:
            with open_dict(cfg):
                del cfg["hydra"]
            check_config(cfg, overrides)
        except ConfigError as err:
            print(f"error: {err} (job #{num} of {len(batch)}: {' '.join(overrides)}); no job was started",
                  file=sys.stderr)
            sys.exit(2)
        finally:
            if previous is not None:
                HydraConfig.instance().set_config(previous)


def report_outcome(returns: Sequence[Sequence[JobReturn]]) -> None:
    """Log how many runs finished, were skipped (a finished record) and failed; exit with status 1
    naming the failed runs' records when any failed."""
    records = [r.return_value for batch in returns for r in batch]
    failed = [rec for rec in records if rec is not None and rec["status"] != "ok"]
    done = sum(rec is not None and rec["status"] == "ok" for rec in records)
    log.info("sweep: %d run(s): %d finished, %d skipped (finished before), %d failed",
             len(records), done, records.count(None), len(failed))
    if failed:
        shown = "; ".join(f"{rec['run_dir']}: {rec['error']}: {rec['reason']}" for rec in failed[:3])
        more = f"; ... ({len(failed) - 3} more)" if len(failed) > 3 else ""
        print(f"error: {len(failed)} of {len(records)} run(s) failed, each recorded in its result.json: "
              f"{shown}{more}", file=sys.stderr)
        sys.exit(1)
