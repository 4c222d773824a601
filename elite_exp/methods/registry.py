"""From a run config to an estimator: the one place that maps config keys onto method parameters.

``model=`` chooses the score of ELITE, of the labels-only ablation and of LOE / SOEL. Deep SVDD and Deep SAD
train the Deep SVDD score and RSRAE / AE are auto-encoders: their ``baseline=`` files select the
matching ``model=`` by default and any other explicit choice is a ConfigError. SSAD is a kernel
method and does not use ``model=``.
"""

from __future__ import annotations

import copy
import functools
import math
import re

from omegaconf import DictConfig, OmegaConf

from elite_exp.config import Config, DataFile, chosen_data_file, group_file
from elite_exp.errors import ConfigError
from elite_exp.methods.autoencoder import AutoEncoder
from elite_exp.methods.base import DeepDetector
from elite_exp.methods.deep_sad import DeepSAD
from elite_exp.methods.deep_svdd import DeepSVDD
from elite_exp.methods.elite import EliteDetector
from elite_exp.methods.labels_only import LabelsOnly
from elite_exp.methods.loe import LOE, MAX_ALPHA, SOEL
from elite_exp.methods.rsrae import RSRAE
from elite_exp.methods.ssad import SSAD
from elite_exp.records import flatten

BASELINES = ("none", "deepsvdd", "deepsad", "ssad", "rsrae", "ae", "labels", "loe", "soel")
# the one model= each fixed-score baseline allows
FIXED_MODEL = {"deepsvdd": "svdd", "deepsad": "svdd", "rsrae": "ae", "ae": "ae"}


# read settings that the base name already says (elite_svdd_loe, loe_soft_svdd_alpha0.2, deepsad_every_batch,
# ...) or that tables show as their own columns (train.epochs): never added as key=value
NAMED = ("baseline.name", "baseline.mode", "baseline.alpha", "baseline.labeled_every_batch", "baseline.loss",
         "baseline.hybrid", "elite.update", "elite.pretrain", "elite.warmup_epochs", "elite.labeled_weight",
         "elite.labeled_loss", "elite.loe_weight", "elite.alpha", "elite.joint_batch", "train.epochs")


def method_name(cfg: DictConfig) -> str:
    """The method's name in records, folders and tables: its base name (:func:`base_name`), then
    ``+key=value`` for every other setting the method reads whose value is not its default (the default
    of the run's data set, model and baseline files; keys in sorted order), so that runs of different
    settings never share a name: ``elite_svdd+elite.meta_grad=finite_diff``,
    ``deepsad+baseline.eta=2+train.lr=0.001``. The figures' axes (r_p, n_labels, eta_M, class, seed),
    the data set and the training length are not part of it: tables show them. Nor are the data set's
    own keys (``data.path``, ``data.image_size``, ...): runs on other data belong in their own out_dir."""
    return base_name(cfg) + "".join(f"+{key}={setting_text(value)}" for key, value in changed_settings(cfg))


def base_name(cfg: DictConfig) -> str:
    """``elite_svdd`` / ``elite_ae`` / ``elite_rot`` / ``elite_neutral`` for ELITE
    (``elite_svdd_loe_pretrain_labeled1``, ``elite_svdd_warmup5``, ``elite_svdd_pretrain_joint``,
    ``elite_svdd_pretrain_loeterm0.5_alpha0.1`` with the options beyond the paper; ``_pretrain`` only where it
    acts, on svdd; ``_joint`` only with BatchNorm; ``_alpha`` only for a configured alpha of the LOE term),
    ``labels_svdd`` / ``labels_ae`` /
    ``labels_rot`` / ``labels_neutral`` for the ablation,
    ``loe_hard_svdd``, ``loe_soft_ae``, ``soel_rot``, ... for LOE / SOEL (every method that takes
    ``model=`` names its score; ``loe_hard_rot_alpha0`` when ``baseline.alpha`` is set, here to
    0), ``deepsad_every_batch`` / ``deepsad_hinge`` / ``deepsad_every_batch_hinge`` / ``ssad_hybrid`` for those
    variants,
    else the baseline's name."""
    b = cfg.baseline
    if b.name == "none":
        variant = ("" if cfg.elite["update"] == "reweight" else f"_{cfg.elite['update']}") + (
            "_pretrain" if cfg.elite.pretrain and cfg.model.name == "svdd" else "") + (
            f"_warmup{cfg.elite.warmup_epochs}" if cfg.elite.warmup_epochs else "") + (
            f"_labeled{cfg.elite.labeled_weight:g}" if cfg.elite.labeled_weight else "") + (
            f"_{cfg.elite.labeled_loss}" if cfg.elite.labeled_loss not in (None, "hinge") else "") + (
            "_joint" if cfg.elite.joint_batch and cfg.data.network.batch_norm else "") + (
            f"_loeterm{setting_text(cfg.elite.loe_weight)}" if cfg.elite.loe_weight else "") + (
            f"_alpha{setting_text(cfg.elite.alpha)}" if cfg.elite.loe_weight and cfg.elite.alpha is not None else "")
        return f"elite_{cfg.model.name}{variant}"
    if b.name == "labels":
        return f"labels_{cfg.model.name}"
    # an alpha set in the config (not the oracle r_p) names the record: its runs are another method
    alpha = "" if b.get("alpha") is None else f"_alpha{b.alpha:g}"
    if b.name == "loe":
        return f"loe_{b.mode}_{cfg.model.name}{alpha}"
    if b.name == "soel":
        return f"soel_{cfg.model.name}{alpha}"
    if b.name == "deepsad":
        return "deepsad" + ("_every_batch" if b.labeled_every_batch else "") + (
            f"_{b.loss}" if b.get("loss") not in (None, "deepsad") else "")
    if b.name == "ssad" and b.hybrid:
        return "ssad_hybrid"
    return str(b.name)


def read_settings(cfg: DictConfig) -> tuple[str, ...]:
    """The dotted keys (or prefixes ending in ``.``) the method of ``cfg`` reads: its ``baseline.*``; the
    network (``data.network.*``) and ``train.*`` for every method that trains one (not plain SSAD, a
    kernel on the raw features; of the network the fields its ``kind`` builds: ``channels`` for conv,
    ``hidden`` for mlp); ELITE's ``elite.*`` and ``eta_m``, the ablation's ``elite.margin``, and
    ``model.squared`` for both on the svdd score. Deep SVDD / Deep SAD without pre-training do not
    read ``baseline.pretrain_epochs``, ELITE on another score than svdd not ``elite.pretrain``, ELITE
    without an LOE term (``elite.loe_weight``) not ``elite.alpha``, ELITE on a network without BatchNorm not
    ``elite.joint_batch``."""
    b = cfg.baseline
    keys = ["baseline."]
    network = cfg.data.get("network") or {}
    if not (b.name == "ssad" and not b.hybrid):
        # the network's fields its kind builds: a conv network has no hidden sizes, an MLP no channels
        unbuilt = {"conv": "hidden", "mlp": "channels"}.get(network.get("kind"))
        keys += ["train."] + [f"data.network.{k}" for k in network if k != unbuilt]
    if b.name in ("none", "labels"):
        keys += ["elite.", "eta_m"] if b.name == "none" else ["elite.margin"]
        if cfg.model.name == "svdd":
            keys.append("model.squared")
    if b.name in ("deepsvdd", "deepsad") and not b.pretrain:
        keys.remove("baseline.")
        keys += [f"baseline.{k}" for k in b if k != "pretrain_epochs"]
    # pre-training acts on the svdd score only, the LOE term's alpha only with the term, a joint batch only with
    # BatchNorm (without it a sample's score does not depend on the others in its pass)
    unread = {k for k, acts in (("pretrain", cfg.model.name == "svdd"), ("alpha", cfg.elite.get("loe_weight")),
                                ("joint_batch", network.get("batch_norm", True))) if not acts}
    if b.name == "none" and unread:
        keys.remove("elite.")
        keys += [f"elite.{k}" for k in cfg.elite if k not in unread]
    return tuple(keys)


def changed_settings(cfg: DictConfig) -> list[tuple[str, object]]:
    """(dotted key, value) of every setting the method of ``cfg`` reads (:func:`read_settings`) that
    differs from its default and that :data:`NAMED` leaves out, sorted by key. A
    default that is an interpolation holds when the run's value equals what it points to
    (``pretrain_epochs: ${train.epochs}`` is the default however long training is)."""
    raw, run = _flat_settings(cfg, ("train", "baseline", "elite", "model", "data"))  # not hydra.*: it names the folder
    default = _run_defaults(cfg)
    reads = read_settings(cfg)
    return sorted((k, run[k]) for k in run
                  if is_read(k, reads) and k not in NAMED and k in default and not _is_default(k, raw, run, default))


def _flat_settings(cfg: DictConfig, keys: tuple[str, ...]) -> tuple[dict, dict]:
    """The settings under ``keys`` (top-level groups or single keys of ``cfg``), flattened to dotted keys: as
    written (``${...}`` kept) and resolved."""
    keys = tuple(k for k in keys if k in cfg)
    written = OmegaConf.to_container(OmegaConf.masked_copy(cfg, list(keys)), resolve=False)
    return (flatten(written),
            flatten({k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
                     for k in keys}))


def _is_default(key: str, raw: dict, run: dict, default: dict) -> bool:
    """Whether the setting ``key`` holds its default (``default[key]``; ``raw`` / ``run``: :func:`_flat_settings`).
    A default that is an interpolation holds when the run's value equals what it points to; an option's off value
    (:data:`UNSET_WHEN`) is its default."""
    group, _, name = key.partition(".")
    if name in UNSET_WHEN.get(group, {}) and run[key] == UNSET_WHEN[group][name] and default[key] is None:
        return True
    d = default[key]
    points_to = d[2:-1] if isinstance(d, str) and d.startswith("${") and d.endswith("}") else None
    return raw[key] == d or run[key] == (run.get(points_to, d) if points_to else d)


def is_read(key: str, reads: tuple[str, ...]) -> bool:
    """Whether the dotted setting ``key`` is among ``reads`` (:func:`read_settings`: keys, or prefixes ending
    in ``.``)."""
    return any(key == r or (r.endswith(".") and key.startswith(r)) for r in reads)


def as_read_value(cfg: DictConfig, key: str):
    """The value of the setting ``key`` (dotted; one whose default is a value, not an interpolation) as the method
    of ``cfg`` reads it: the run's where the method reads it (:func:`read_settings`), else its default
    (:func:`as_read`): ``eta_m`` is 1.0 for every baseline."""
    return OmegaConf.select(cfg, key) if is_read(key, read_settings(cfg)) else _run_defaults(cfg)[key]


def unread_overrides(cfg: DictConfig, overrides) -> list[str]:
    """The command line's ``key=value`` overrides (Hydra's texts) of :data:`METHOD_SETTINGS` keys that the method of
    ``cfg`` does not read (:func:`read_settings`): ``elite.pretrain=true`` with ``model=ae``, ``train.lr=...``
    for plain SSAD. They change nothing in the run (nor its folder). One at its default (``eta_m=1`` for a baseline
    in a sweep over ELITE's eta_M) is not among them: it asks for nothing the run does not do."""
    reads = (*read_settings(cfg), "model.name")  # the score: taken by model=, fixed (and checked) by the others
    keys = [o.lstrip("+~").split("=", 1)[0] for o in overrides if "=" in o]
    unread = [k for k in keys if is_read(k, METHOD_SETTINGS) and not is_read(k, reads) and k not in COLUMNS]
    if not unread:  # the common case: nothing to compare with the defaults
        return []
    raw, run = _flat_settings(cfg, ("train", "baseline", "elite", "model", "data", "eta_m"))
    default = _run_defaults(cfg)
    return [k for k in unread if not (k in default and k in run and _is_default(k, raw, run, default))]


# options beyond the paper and the value that means off (or the paper's choice): that value is the same
# run (and folder) as leaving them unset (Deep SAD's ``baseline.loss``: its own, deepsad)
UNSET_WHEN = {"elite": {"pretrain": False, "warmup_epochs": 0, "labeled_weight": 0, "labeled_loss": "hinge",
                        "loe_weight": 0, "joint_batch": False}, "baseline": {"loss": "deepsad"}}
# the settings only some methods read (:func:`read_settings`): groups of keys (ending in ``.``) and single keys
METHOD_SETTINGS = ("train.", "baseline.", "elite.", "model.", "data.network.", "eta_m")
# settings records and tables show as their own columns (a record's ``epochs``): kept for every method
COLUMNS = ("train.epochs",)


def names_its_method(config: dict) -> bool:
    """Whether a config (a plain dict) names its data set, model and baseline, which say what its method reads."""
    return all(isinstance(config.get(g), dict) and config[g].get("name") is not None
               for g in ("data", "model", "baseline"))


def as_read(config: dict) -> dict:
    """A copy of ``config`` (a plain dict, resolved or not) with every setting of :data:`METHOD_SETTINGS` its
    method does not read (``elite.*`` for a baseline, ``train.lr`` for plain SSAD, ...; not :data:`COLUMNS`)
    at its default for the run's data set, model and baseline (as :func:`changed_settings` has them;
    unresolved, ``${...}`` as written): two configs that differ only there are one run. A setting the
    method reads that interpolates an unread one (``baseline.n_landmarks: ${train.batch_size}`` for plain
    SSAD) is resolved first, so it keeps its value. Unchanged (a copy) when the config names no data set,
    model or baseline (e.g. the record of an old version): nothing says what its method reads."""
    body = copy.deepcopy(config)
    if not names_its_method(body):
        return body
    tree = OmegaConf.create(body)
    settings = {k: v for k, v in flatten(body).items() if is_read(k, METHOD_SETTINGS)}
    default = _run_defaults(tree)
    reads = read_settings(tree)
    unread = {k: default[k] for k in settings if k in default and k not in COLUMNS and not is_read(k, reads)}
    refers_to_unread = re.compile(r"\$\{(" + "|".join(map(re.escape, unread)) + r")\}") if unread else None
    changes = dict(unread)
    for key, value in settings.items():
        if key not in unread and isinstance(value, str) and refers_to_unread and refers_to_unread.search(value):
            changes[key] = OmegaConf.select(tree, key)  # resolved
    for key, value in changes.items():
        *path, last = key.split(".")
        functools.reduce(lambda sub, k: sub[k], path, body)[last] = value
    return body


def _run_defaults(cfg: DictConfig) -> dict[str, object]:
    """:func:`_defaults` of the run ``cfg``: of its data set, model and baseline."""
    return _defaults(str(cfg.data.name), str(cfg.model.name), str(cfg.baseline.name))


def _defaults(data: str, model: str, baseline: str) -> dict[str, object]:
    """The flattened defaults of a run of ``baseline`` on ``model`` and ``data`` (their ``<group>.name``
    values): the schema's, then those of the run's data file (:func:`config.chosen_data_file`: in a Hydra job a
    file added with ``--config-dir`` counts; a data file may set train.*) and of conf/model/<model>.yaml and
    conf/baseline/<baseline>.yaml (a group option without a file keeps the schema's)."""
    chosen = chosen_data_file(data)
    return _defaults_of(chosen, chosen.path.stat().st_mtime_ns if chosen.path else 0, model, baseline)


@functools.cache
def _defaults_of(data: DataFile, mtime_ns: int, model: str, baseline: str) -> dict[str, object]:
    tree = OmegaConf.create(OmegaConf.to_container(OmegaConf.structured(Config)))  # untyped: any baseline keys
    tree.baseline = {"name": baseline}
    tree = OmegaConf.merge(tree, data.values())
    for group, option in (("model", model), ("baseline", baseline)):
        body = group_file(group, option)
        if body is not None:
            tree = OmegaConf.merge(tree, {group: body})
    return flatten(OmegaConf.to_container(tree, resolve=False))


def setting_text(value) -> str:
    """A value as the name shows it, exactly (distinct values, distinct texts) and without ``+``:
    ``true``, ``2`` (for 2.0, and for the strings ``"2"`` / ``"2.0"``), ``0.001``, ``1e-05``, ``1e16``, ``16,8``
    (a list), ``[]`` (an empty one)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        text = repr(value).replace("e+", "e")
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, list | tuple):
        return ",".join(map(setting_text, value)) if value else "[]"
    number = spelled_number(value)
    return setting_text(number) if number is not None else str(value).replace(" ", "")


def spelled_number(value) -> float | None:
    """The finite number a string setting spells (``elite.margin`` holds ``auto_mean`` or a number:
    ``"1"`` and ``"1.0"`` are one margin), else None."""
    if not isinstance(value, str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def method_record(cfg: DictConfig) -> dict:
    """Record fields beyond the common ones: for LOE / SOEL, and for ELITE with an LOE term
    (``elite.loe_weight`` > 0), the contamination ``alpha`` they assume and its ``alpha_source``:
    ``oracle`` (``baseline.alpha`` / ``elite.alpha`` unset: the run's true r_p, the LOE paper's setting) or
    ``config`` (given). Other methods: none."""
    b = cfg.baseline
    if b.name in ("loe", "soel"):
        alpha = b.alpha
    elif b.name == "none" and cfg.elite.loe_weight:
        alpha = cfg.elite.alpha
    else:
        return {}
    if alpha is None:
        return {"alpha": cfg.r_p, "alpha_source": "oracle"}
    return {"alpha": alpha, "alpha_source": "config"}


def common_params(cfg: DictConfig) -> dict:
    """Parameters every deep method takes from the run config."""
    return dict(network=OmegaConf.to_container(cfg.data.network, resolve=True), epochs=cfg.train.epochs,
                batch_size=cfg.train.batch_size, lr=cfg.train.lr, optimizer=cfg.train.optimizer,
                weight_decay=cfg.train.weight_decay, random_state=cfg.seed, progress=cfg.progress)


# the run config's key behind each estimator parameter (baseline parameters: ``baseline.<name>``), so that
# an estimator's error names the value as the user wrote it: train.epochs=0, not epochs=0
CONFIG_KEYS = {"epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "train.lr",
               "optimizer": "train.optimizer", "weight_decay": "train.weight_decay", "random_state": "seed",
               "network": "data.network", "test_fraction": "data.test_fraction",
               **{f: f"data.network.{f}" for f in ("kind", "channels", "hidden", "rep_dim", "batch_norm")},
               "score": "model.name", "squared": "model.squared", "update": "elite.update", "margin": "elite.margin",
               "meta_grad": "elite.meta_grad", "normalize": "elite.normalize", "pretrain": "elite.pretrain",
               "warmup_epochs": "elite.warmup_epochs", "labeled_weight": "elite.labeled_weight",
               "labeled_loss": "elite.labeled_loss", "loe_weight": "elite.loe_weight", "alpha": "elite.alpha",
               "joint_batch": "elite.joint_batch"}


def config_key_error(err: ConfigError, cfg: DictConfig, of_elite: bool = False) -> ConfigError:
    """``err`` (``<parameter>=<value> ...`` from an estimator's check) with every ``<parameter>=`` it holds named
    by its config key (``of_elite``: ELITE's check, so ``alpha`` is ``elite.alpha`` in any run): ``warmup_epochs=5
    is not allowed with epochs=5`` -> ``baseline.warmup_epochs=5 is not allowed with train.epochs=5``."""
    keys = {**CONFIG_KEYS}
    if cfg.baseline.name not in ("none", "labels") and not of_elite:
        keys.update({k: f"baseline.{k}" for k in cfg.baseline if k != "name"})
    # a parameter at the start, after a space or "(": not a word inside a path or a quoted class name
    return ConfigError(re.sub(r"(?:^|(?<=[\s(]))([A-Za-z_]\w*)=", lambda m: keys.get(m[1], m[1]) + "=", str(err)))


def build_method(cfg: DictConfig, device: str) -> DeepDetector:
    """The estimator a run config asks for, with its parameters checked (no data touched; ELITE's ``elite.*``
    and ``eta_m`` for every method). Raises ConfigError naming the bad value by its config key
    (``train.epochs=0 is not allowed; ...``)."""
    try:
        return _build_method(cfg, device)
    except ConfigError as err:
        raise config_key_error(err, cfg) from None


def _build_method(cfg: DictConfig, device: str) -> DeepDetector:
    b = cfg.baseline
    if b.name not in BASELINES:
        raise ConfigError(f"baseline={b.name!r} is not allowed; allowed: {', '.join(BASELINES)}")
    if b.name in FIXED_MODEL and cfg.model.name != FIXED_MODEL[b.name]:
        raise ConfigError(f"baseline={b.name} does not combine with model={cfg.model.name}; "
                          f"allowed: model={FIXED_MODEL[b.name]} (its own score)")
    if cfg.model.name == "rot" and b.name != "ssad" and cfg.data.network.kind == "mlp":
        data = chosen_data_file(str(cfg.data.name)).option
        raise ConfigError(f"model=rot does not combine with data={data}: the rotation score needs square "
                          f"images and {data} holds vectors ({cfg.data.network.kind} network); allowed: "
                          f"model=svdd, ae or neutral")
    common = dict(device=device, **common_params(cfg))
    assumed = method_record(cfg)  # the contamination LOE / SOEL or ELITE's LOE term assume, if any
    elite_alpha = assumed["alpha"] if b.name == "none" and cfg.elite.loe_weight else cfg.elite.alpha
    if assumed.get("alpha_source") == "oracle" and cfg.r_p > MAX_ALPHA:
        key, given = (("elite.alpha", f"elite.loe_weight={setting_text(cfg.elite.loe_weight)}") if b.name == "none"
                      else ("baseline.alpha", f"baseline={b.name}"))
        raise ConfigError(f"r_p={cfg.r_p} is not allowed with {given} unless {key} is given: it assumes "
                          f"the contamination ratio alpha = r_p, which must lie in [0, {MAX_ALPHA}]")
    # an option that does not act in this run (read_settings; the runner says so of one set on the command line)
    # reaches ELITE switched off, so that the estimator does not say it a second time
    reads = read_settings(cfg)
    acts = {k: b.name != "none" or is_read(f"elite.{k}", reads) for k in ("pretrain", "joint_batch")}
    elite = EliteDetector(score=cfg.model.name, squared=cfg.model.squared, update=cfg.elite["update"],
                          margin=cfg.elite.margin, eta_m=cfg.eta_m, meta_grad=cfg.elite.meta_grad,
                          normalize=cfg.elite.normalize, pretrain=bool(cfg.elite.pretrain) and acts["pretrain"],
                          warmup_epochs=cfg.elite.warmup_epochs or 0,
                          labeled_weight=cfg.elite.labeled_weight or 0.0,
                          labeled_loss="hinge" if cfg.elite.labeled_loss is None else cfg.elite.labeled_loss,
                          loe_weight=cfg.elite.loe_weight or 0.0,
                          alpha=elite_alpha, joint_batch=bool(cfg.elite.joint_batch) and acts["joint_batch"], **common)
    # ELITE's settings are checked for every method: a value ELITE does not allow is an error in any run
    # (as in a sweep that holds an ELITE job), not a setting a baseline silently records
    try:
        elite._check_params()
    except ConfigError as err:
        raise config_key_error(err, cfg, of_elite=True) from None
    if b.name == "none":
        est = elite
    elif b.name == "labels":
        est = LabelsOnly(score=cfg.model.name, squared=cfg.model.squared, margin=cfg.elite.margin,
                         steps_per_epoch=max(cfg.n_train // cfg.train.batch_size, 1), **common)
    elif b.name in ("loe", "soel"):
        latent = dict(alpha=assumed["alpha"], warmup_epochs=b.warmup_epochs, score=cfg.model.name)
        est = LOE(mode=b.mode, **latent, **common) if b.name == "loe" else SOEL(**latent, **common)
    elif b.name == "deepsvdd":
        est = DeepSVDD(pretrain=b.pretrain, pretrain_epochs=b.pretrain_epochs, **common)
    elif b.name == "deepsad":
        est = DeepSAD(eta=b.eta, labeled_every_batch=b.labeled_every_batch,
                      loss="deepsad" if b.loss is None else b.loss, pretrain=b.pretrain,
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
    est._spec(None)  # the network's fields (their fit with the data's shape is checked when it is read)
    return est
