"""Shared fixtures: small real data (scikit-learn digits, MNIST when ELITE_DATA_DIR has it)."""

from __future__ import annotations

import os
from pathlib import Path

# The test networks are tiny: one thread per process is fastest, and the suite runs one
# process per core (pytest-xdist). Set before torch loads; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from elite_exp.data import load_dataset, make_split

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _one_thread_and_the_same_random_state():
    """One thread, and every test starts from the same global random state, whichever tests ran before it in its
    worker (pytest-xdist deals tests out in a varying order): a network built without a seed gets the same weights."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def mnist():
    root = os.environ.get("ELITE_DATA_DIR")
    if not root or not (Path(root) / "MNIST" / "raw").is_dir():
        pytest.skip("MNIST not found: set ELITE_DATA_DIR to a folder holding MNIST/raw")
    return load_dataset("mnist", root, download=False)


def semi_supervised(ds, normal_class, r_p, n_train, n_labels, seed=0):
    """(X, y, split) for fit(): unlabeled samples first (y=-1), then the labeled ones (0/1)."""
    split = make_split(ds.y_train, normal_class, r_p, n_train, n_labels, seed, ds.name)
    X = torch.cat([ds.x_train[split.unlabeled], ds.x_train[split.labeled]])
    y = np.concatenate([np.full(len(split.unlabeled), -1), split.labeled_anomaly])
    return X, y, split
