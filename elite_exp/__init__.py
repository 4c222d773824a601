"""elite-exp: ELITE (robust deep anomaly detection with meta gradients) and its experiment runner."""

from elite_exp.methods import DeepDetector, EliteDetector

__version__ = "0.1.0"
__all__ = ["DeepDetector", "EliteDetector", "__version__"]
