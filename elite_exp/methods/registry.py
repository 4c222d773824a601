"""From a run config to an estimator: the one place that maps config keys onto method parameters.

``model=`` chooses the score of ELITE, of the labels-only ablation and of LOE / SOEL. Deep SVDD and Deep SAD
train the Deep SVDD score and RSRAE / AE are auto-encoders: their ``baseline=`` files select the
matching ``model=`` by default and any other explicit choice is a ConfigError. SSAD is a kernel
method and does not use ``model=``.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from elite_exp.errors import ConfigError
from elite_exp.methods.autoencoder import AutoEncoder
from elite_exp.methods.base import DeepDetector
from elite_exp.methods.deep_sad import DeepSAD
from elite_exp.methods.deep_svdd import DeepSVDD
from elite_exp.methods.elite import EliteDetector
from elite_exp.methods.labels_only import LabelsOnly
from elite_exp.methods.loe import LOE, SOEL
from elite_exp.methods.rsrae import RSRAE
from elite_exp.methods.ssad import SSAD

BASELINES = ("none", "deepsvdd", "deepsad", "ssad", "rsrae", "ae", "labels", "loe", "soel")
# the one model= each fixed-score baseline allows
FIXED_MODEL = {"deepsvdd": "svdd", "deepsad": "svdd", "rsrae": "ae", "ae": "ae"}


def method_name(cfg: DictConfig) -> str:
    """``elite_svdd`` / ``elite_ae`` / ``elite_rot`` for ELITE (``elite_svdd_loe_pretrain_labeled1`` with the options
    beyond the paper; ``_pretrain`` only where it acts, on svdd), ``labels_svdd`` / ``labels_ae`` /
    ``labels_rot`` for the ablation,
    ``loe_hard_svdd``, ``loe_soft_ae``, ``soel_rot``, ... for LOE / SOEL (every method that takes
    ``model=`` names its score; ``loe_hard_rot_alpha0`` when ``baseline.alpha`` is set, here to
    0), ``deepsad_every_batch`` / ``ssad_hybrid`` for those variants,
    else the baseline's name."""
    b = cfg.baseline
    if b.name == "none":
        variant = ("" if cfg.elite["update"] == "reweight" else f"_{cfg.elite['update']}") + (
            "_pretrain" if cfg.elite.pretrain and cfg.model.name == "svdd" else "") + (
            f"_labeled{cfg.elite.labeled_weight:g}" if cfg.elite.labeled_weight else "")
        return f"elite_{cfg.model.name}{variant}"
    if b.name == "labels":
        return f"labels_{cfg.model.name}"
    # an alpha set in the config (not the oracle r_p) names the record: its runs are another method
    alpha = "" if b.get("alpha") is None else f"_alpha{b.alpha:g}"
    if b.name == "loe":
        return f"loe_{b.mode}_{cfg.model.name}{alpha}"
    if b.name == "soel":
        return f"soel_{cfg.model.name}{alpha}"
    if b.name == "deepsad" and b.labeled_every_batch:
        return "deepsad_every_batch"
    if b.name == "ssad" and b.hybrid:
        return "ssad_hybrid"
    return str(b.name)


def method_record(cfg: DictConfig) -> dict:
    """Record fields beyond the common ones: for LOE / SOEL the contamination ``alpha`` they assume
    and its ``alpha_source``: ``oracle`` (``baseline.alpha`` unset: the run's true r_p, the LOE
    paper's setting) or ``config`` (``baseline.alpha`` given). Other methods: none."""
    b = cfg.baseline
    if b.name not in ("loe", "soel"):
        return {}
    if b.alpha is None:
        return {"alpha": cfg.r_p, "alpha_source": "oracle"}
    return {"alpha": b.alpha, "alpha_source": "config"}


def common_params(cfg: DictConfig) -> dict:
    """Parameters every deep method takes from the run config."""
    return dict(network=OmegaConf.to_container(cfg.data.network, resolve=True), epochs=cfg.train.epochs,
                batch_size=cfg.train.batch_size, lr=cfg.train.lr, optimizer=cfg.train.optimizer,
                weight_decay=cfg.train.weight_decay, random_state=cfg.seed, progress=cfg.progress)


def build_method(cfg: DictConfig, device: str) -> DeepDetector:
    """The estimator a run config asks for, with its parameters checked (no data touched)."""
    b = cfg.baseline
    if b.name not in BASELINES:
        raise ConfigError(f"baseline={b.name!r} is not allowed; allowed: {', '.join(BASELINES)}")
    if b.name in FIXED_MODEL and cfg.model.name != FIXED_MODEL[b.name]:
        raise ConfigError(f"baseline={b.name} does not combine with model={cfg.model.name}; "
                          f"allowed: model={FIXED_MODEL[b.name]} (its own score)")
    common = dict(device=device, **common_params(cfg))
    if b.name == "none":
        est = EliteDetector(score=cfg.model.name, squared=cfg.model.squared, update=cfg.elite["update"],
                            margin=cfg.elite.margin, eta_m=cfg.eta_m, meta_grad=cfg.elite.meta_grad,
                            normalize=cfg.elite.normalize, pretrain=bool(cfg.elite.pretrain),
                            labeled_weight=cfg.elite.labeled_weight or 0.0, **common)
    elif b.name == "labels":
        est = LabelsOnly(score=cfg.model.name, squared=cfg.model.squared, margin=cfg.elite.margin,
                         steps_per_epoch=max(cfg.n_train // cfg.train.batch_size, 1), **common)
    elif b.name in ("loe", "soel"):
        latent = dict(alpha=method_record(cfg)["alpha"], warmup_epochs=b.warmup_epochs, score=cfg.model.name)
        est = LOE(mode=b.mode, **latent, **common) if b.name == "loe" else SOEL(**latent, **common)
    elif b.name == "deepsvdd":
        est = DeepSVDD(pretrain=b.pretrain, pretrain_epochs=b.pretrain_epochs, **common)
    elif b.name == "deepsad":
        est = DeepSAD(eta=b.eta, labeled_every_batch=b.labeled_every_batch, pretrain=b.pretrain,
                      pretrain_epochs=b.pretrain_epochs, **common)
    elif b.name == "ssad":
        est = SSAD(kappa=b.kappa, nu=b.nu, c_labeled=b.c_labeled, hybrid=b.hybrid,
                   n_landmarks=b.n_landmarks, **common)
    elif b.name == "rsrae":
        est = RSRAE(intrinsic_dim=b.intrinsic_dim, lambda1=b.lambda1, lambda2=b.lambda2, **common)
    else:
        est = AutoEncoder(**common)
    est._check_params()
    est._settings()
    return est
