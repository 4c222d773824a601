"""Methods: ELITE and the baselines, as scikit-learn style estimators sharing one training loop."""

from elite_exp.methods.autoencoder import AutoEncoder
from elite_exp.methods.base import DeepDetector, fit_packed
from elite_exp.methods.deep_sad import DeepSAD
from elite_exp.methods.deep_svdd import DeepSVDD
from elite_exp.methods.elite import EliteDetector
from elite_exp.methods.labels_only import LabelsOnly
from elite_exp.methods.loe import LOE, SOEL
from elite_exp.methods.rsrae import RSRAE
from elite_exp.methods.ssad import SSAD

__all__ = ["LOE", "RSRAE", "SOEL", "SSAD", "AutoEncoder", "DeepDetector", "DeepSAD", "DeepSVDD", "EliteDetector",
           "LabelsOnly", "fit_packed"]
