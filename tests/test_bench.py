"""The bench and the GPU check keep working: a dry run of scripts/device_check.sh on the CPU (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_device_check_dry_run_on_cpu(tmp_path):
    """DEVICE=cpu: the CUDA tests skip, the bench runs every setup and the 8-run slice on digits (1 epoch)
    with the three launchers, packs of 1 and 2 runs; without MNIST there is no Fig. 3-6 estimate, and the
    script says so."""
    env = {k: v for k, v in os.environ.items() if k != "ELITE_DATA_DIR"}
    env.update(DEVICE="cpu", SLICE_EPOCHS="1", PY=sys.executable, OMP_NUM_THREADS="1",
               BENCH_ARGS="--repeats 1 --iterations 1 --warmup 1 --threads 1 --inference-samples 256",
               ELITE_DATA_DIR=str(tmp_path / "no_data"))
    proc = subprocess.run(["bash", str(REPO / "scripts" / "device_check.sh"), str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(Path(tmp_path / "out" / "bench.json").read_text())
    assert set(result["step_speedup_over_plain"]) == {"mnist", "cifar", "official"}
    assert all(v > 0 for v in result["step_speedup_over_plain"].values())
    assert result["sweep_slice"]["data"] == "digits"
    assert set(result["sweep_slice"]["launchers"]) == {"basic", "parallel", "packed"}
    assert set(result["packs"]) == {"mnist", "cifar", "official"}
    assert all(set(v) == {"1", "2"} and v["2"]["ms_per_pack_iteration"] > 0 for v in result["packs"].values())
    assert result["elite_svdd_over_deepsvdd"] > 0  # a ratio of times: its size is no test (1 iteration, busy cores)
    log = (tmp_path / "out" / "device_check.log").read_text()
    assert "skipped" in log and "(status 0)" in log
    # digits has no step cost in the bench: no estimate, said so (tests/test_paper_estimate.py tests the arithmetic)
    assert result["paper_estimate"] is None and "no estimate: the slice ran on digits, not MNIST" in log


@pytest.mark.parametrize("args,message", [
    (["--setups", "mnist,mnsit"], "--setups mnsit is not allowed; allowed: a comma list of mnist, cifar, official"),
    (["--pack-sizes", "0,x"], "--pack-sizes 0,x is not allowed; allowed: a comma list of pack sizes >= 1"),
])
def test_bad_bench_options_name_the_value(args, message):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), *args], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and message in proc.stderr.splitlines()[-1], proc.stderr
