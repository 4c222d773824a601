"""On a CUDA device (skipped without one; ``scripts/device_check.sh`` runs them, and the CUDA cases of
test_networks.py, on a GPU): a fit on the GPU learns what the same fit on the CPU learns."""

import pytest
import torch
from sklearn.metrics import roc_auc_score

from elite_exp import EliteDetector
from elite_exp.methods import DeepSAD, DeepSVDD
from tests.conftest import semi_supervised

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
KW = {"network": {"kind": "conv", "channels": [8, 4], "rep_dim": 16}, "epochs": 20, "batch_size": 32, "lr": 1e-3,
      "random_state": 0}


@pytest.mark.parametrize("make", [lambda d: EliteDetector(meta_grad="forward_ad", device=d, **KW),
                                  lambda d: EliteDetector(meta_grad="finite_diff", device=d, **KW),
                                  lambda d: DeepSVDD(pretrain=False, device=d, **KW),
                                  lambda d: DeepSAD(pretrain=False, labeled_every_batch=True, device=d, **KW)],
                         ids=["elite_forward_ad", "elite_finite_diff", "deepsvdd", "deepsad"])
def test_fit_on_cuda_matches_cpu(digits, make):
    """digits as 1x8x8 images, class 0 normal: GPU and CPU fits reach the same test AUC (within 0.02)."""
    X, y, _ = semi_supervised(digits, 0, 0.1, 120, 10)
    X = X.reshape(-1, 1, 8, 8)
    x_test = digits.x_test.reshape(-1, 1, 8, 8)
    auc = {d: roc_auc_score(digits.y_test != 0, make(d).fit(X, y).decision_function(x_test)) for d in ("cpu", "cuda")}
    assert auc["cuda"] > 0.8 and abs(auc["cuda"] - auc["cpu"]) < 0.02, auc
