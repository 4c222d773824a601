"""Methods: ELITE and the baselines, as scikit-learn style estimators sharing one training loop."""

from elite_exp.methods.base import DeepDetector
from elite_exp.methods.elite import EliteDetector

__all__ = ["DeepDetector", "EliteDetector"]
