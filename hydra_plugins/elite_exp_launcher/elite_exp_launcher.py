"""``hydra/launcher=packed``: a multirun's compatible jobs train together as packs (one stacked model per
pack; ``elite_exp.packing``), each job's folder and record written as the basic launcher writes them.

Hydra imports every module here on each start, so this one stays thin: the work is in ``elite_exp.packing``,
imported when a sweep launches.
"""

# no ``from __future__ import annotations``: Hydra loads this module without registering it in
# sys.modules, where a dataclass with string annotations would look itself up
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.launcher import Launcher


@dataclass
class PackedLauncherConf:
    _target_: str = "hydra_plugins.elite_exp_launcher.elite_exp_launcher.PackedLauncher"
    pack_size: Any = "auto"  # runs per pack: a number >= 1, or auto (1 on CPU; on CUDA from memory_fraction)
    n_jobs: Any = "auto"  # packs trained at once, one process each: a number >= 1, or auto (CPU cores / GPUs)
    memory_fraction: float = 0.5  # auto pack size on CUDA: the share of the GPU's free memory a pack may take


ConfigStore.instance().store(group="hydra/launcher", name="packed", node=PackedLauncherConf, provider="elite-exp")


class PackedLauncher(Launcher):
    def __init__(self, pack_size: Any = "auto", n_jobs: Any = "auto", memory_fraction: float = 0.5) -> None:
        self.pack_size, self.n_jobs, self.memory_fraction = pack_size, n_jobs, memory_fraction
        self.config = self.hydra_context = self.task_function = None
        # job number -> (overrides, grouping), from the runner's sweeper's check (``elite_exp.sweeps.check_jobs``)
        self.checked_jobs: dict = {}

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides, initial_job_idx: int):
        from elite_exp.packing import launch

        return launch(self, job_overrides, initial_job_idx)
