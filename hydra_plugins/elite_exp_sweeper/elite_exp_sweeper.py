"""``hydra/sweeper=elite_exp`` (the runner's default): Hydra's basic sweeper, plus a check of every
job's settings before any job starts (a job that repeats an earlier job's run is left out) and a count
of the failed runs at the end.

Hydra imports every module here on each start, so this one stays thin: the work is in
``elite_exp.sweeps``, imported when a sweep runs.
"""

# no ``from __future__ import annotations``: Hydra loads this module without registering it in
# sys.modules, where a dataclass with string annotations would look itself up
from dataclasses import dataclass
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser


@dataclass
class EliteExpSweeperConf(BasicSweeperConf):  # the basic sweeper's options: params, max_batch_size
    _target_: str = "hydra_plugins.elite_exp_sweeper.elite_exp_sweeper.EliteExpSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="elite_exp", node=EliteExpSweeperConf,
                             provider="elite-exp")


class EliteExpSweeper(BasicSweeper):
    def sweep(self, arguments: list[str]) -> Any:
        from elite_exp.sweeps import check_jobs, count_outcomes, stop_if_submission_refused, submission_folder

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        self._batches = BasicSweeper.split_arguments(overrides, self.max_batch_size)  # drawn once (shuffle sweeps)
        self._repeats, grouping = check_jobs(self.hydra_context.config_loader, self.config,
                                             [job for batch in self._batches for job in batch])
        if hasattr(self.launcher, "checked_jobs"):  # the packed launcher groups the jobs the check composed
            self.launcher.checked_jobs = grouping
        self._given = 0  # jobs handed out so far, numbered as check_jobs numbers them
        self._launched = self._last_batch = 0  # jobs launched in the batches before the last one; in the last one
        submitted_to = submission_folder(self.config)
        try:
            returns = super().sweep(arguments)
        except Exception as err:  # a Slurm cluster that refuses the submission: one line (else raised again)
            stop_if_submission_refused(err, self._launched, *submitted_to)
            raise
        count_outcomes(returns)
        return returns

    def split_arguments(self, overrides, max_batch_size) -> list[list[list[str]]]:
        """The batches the check composed: the basic sweeper's split, made once, so that a ``shuffle(...)`` sweep
        launches its jobs in the order they were checked in."""
        return self._batches

    def get_job_batch(self):
        """The next batch without the jobs ``check_jobs`` found to repeat an earlier job's run."""
        batch = super().get_job_batch()
        first, self._given = self._given, self._given + len(batch)
        jobs = [job for num, job in enumerate(batch, first) if num not in self._repeats]
        self._launched, self._last_batch = self._launched + self._last_batch, len(jobs)
        return jobs

    def validate_batch_is_legal(self, batch) -> None:
        """Nothing left to do: ``check_jobs`` composed and checked every job before the first batch."""
