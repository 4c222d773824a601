"""``hydra/sweeper=elite_exp`` (the runner's default): Hydra's basic sweeper, plus a check of every
job's settings before any job starts and a closing line that counts the failed runs.

Hydra imports every module here on each start, so this one stays thin: the work is in
``elite_exp.sweeps``, imported when a sweep runs.
"""

# no ``from __future__ import annotations``: Hydra loads this module without registering it in
# sys.modules, where a dataclass with string annotations would look itself up
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore


@dataclass
class EliteExpSweeperConf:
    _target_: str = "hydra_plugins.elite_exp_sweeper.elite_exp_sweeper.EliteExpSweeper"
    max_batch_size: Optional[int] = None  # noqa: UP045 (OmegaConf's types)  jobs handed to the launcher at once
    params: Optional[dict[str, str]] = None  # noqa: UP045  the swept keys and their values (as the basic sweeper's)


ConfigStore.instance().store(group="hydra/sweeper", name="elite_exp", node=EliteExpSweeperConf,
                             provider="elite-exp")


class EliteExpSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from elite_exp.sweeps import check_jobs

        check_jobs(self.hydra_context.config_loader, self.config, batch)

    def sweep(self, arguments: list[str]) -> Any:
        from elite_exp.sweeps import report_outcome

        returns = super().sweep(arguments)
        report_outcome(returns)
        return returns
