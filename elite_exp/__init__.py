"""elite-exp: ELITE (robust deep anomaly detection with meta gradients) and its experiment runner."""

from elite_exp.methods import (
    LOE,
    RSRAE,
    SOEL,
    SSAD,
    AutoEncoder,
    DeepDetector,
    DeepSAD,
    DeepSVDD,
    EliteDetector,
    LabelsOnly,
    fit_packed,
)

__version__ = "0.1.0"
__all__ = ["LOE", "RSRAE", "SOEL", "SSAD", "AutoEncoder", "DeepDetector", "DeepSAD", "DeepSVDD", "EliteDetector",
           "LabelsOnly", "fit_packed", "__version__"]
