"""hydra/launcher=slurm on a real single-node Slurm cluster (scripts/slurm_local.sh), digits sweep."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from elite_exp.report import collect
from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "slurm_local.sh"


def alive(pid: int) -> bool:
    """A running (not zombie) process."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_slurm_launcher_runs_a_4_job_sweep_on_a_local_cluster(tmp_path):
    if os.geteuid() != 0 or not (shutil.which("slurmctld") or shutil.which("apt-get")):
        pytest.skip("a local Slurm needs root and Slurm installed or apt-get to install it")
    env = {**os.environ, "SLURM_LOCAL_DIR": str(tmp_path / "slurm"), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    started = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=900)
    assert started.returncode == 0, started.stderr[-3000:]
    pids = [int((tmp_path / "slurm" / f"{name}.pid").read_text()) for name in ("slurmctld", "slurmd")]
    try:
        env["SLURM_CONF"] = str(tmp_path / "slurm" / "slurm.conf")
        out = tmp_path / "runs"
        done = subprocess.run(
            [sys.executable, "-m", "elite_exp", "-m", "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=null",
             "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10",
             "data=digits", "train.epochs=1", "progress=false", "device=cpu", "method=elite_svdd,deepsvdd",
             "normal_class=0,1", f"out_dir={out}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        runs = collect([out])
        assert len(runs) == 4 and runs["status"].eq("ok").all()
        assert sorted(zip(runs["method"], runs["normal_class"])) == [
            ("deepsvdd", 0), ("deepsvdd", 1), ("elite_svdd", 0), ("elite_svdd", 1)]
        # one Slurm array job ran them: submitit's folder is named by the Slurm job id
        logs = sorted(p.name for p in out.glob(".submitit/*_*/*_log.out"))
        assert len(logs) == 4 and len({name.split("_")[0] for name in logs}) == 1, logs
    finally:
        stopped = subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
    assert not any(alive(pid) for pid in pids)  # the daemons it started are gone
