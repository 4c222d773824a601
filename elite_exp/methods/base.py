"""The scikit-learn style estimator base that every deep method (ELITE and baselines) shares.

Conventions (PyOD and scikit-learn):

* ``fit(X, y)``: ``y`` is -1 for unlabeled samples, 0 for labeled normals, 1 for labeled
  anomalies; ``y=None`` means all unlabeled.
* ``decision_function(X)``: anomaly score, higher = more anomalous.
* ``score_samples(X)``: scikit-learn's sign, higher = more normal (= -decision_function).
* ``predict(X)``: 1 = anomaly, 0 = normal, thresholded at the ``contamination`` quantile
  of the training scores.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.sparse
import torch
import torch.nn as nn
from omegaconf import OmegaConf
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from elite_exp.errors import ConfigError
from elite_exp.methods.training import Monitor, Step, TrainingDiverged, TrainSettings, diverged, run_training
from elite_exp.networks import NetworkSpec, default_spec, normal_spec
from elite_exp.records import atomic_torch_save
from elite_exp.scores import recompute_bn_statistics, score_in_batches, statistics_of


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Inside, torch's global CPU generator seeded with ``seed`` (the networks are initialised on the CPU); after,
    the caller's random state as it was. CUDA's generators are neither seeded nor touched (``torch.manual_seed``
    would reseed every device's and leave them so)."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield


def check_device_name(device: str | torch.device) -> str:
    """The name of ``device`` when it names one (``auto``, ``cpu``, ``cuda`` or ``cuda:N``, or a ``torch.device`` of
    those), else ConfigError."""
    name = str(device) if isinstance(device, torch.device) else device
    if isinstance(name, str) and (name in ("auto", "cpu", "cuda")
                                  or (name.startswith("cuda:") and name[5:].isdigit())):
        return name
    raise ConfigError(f"device={device!r} is not allowed; allowed: auto, cpu, cuda, cuda:N (or a torch.device)")


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N`` of this machine (ConfigError
    for another name, or for CUDA this machine does not have)."""
    device = check_device_name(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} asked but CUDA is not available; use device=cpu or device=auto")
        if ":" in device and int(device[5:]) >= torch.cuda.device_count():
            raise ConfigError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return torch.device(device)


def as_float_tensor(x) -> torch.Tensor:
    """Samples as a tensor of torch's default dtype (float32 unless ``torch.set_default_dtype`` changed it):
    (N, D) vectors or (N, C, H, W) images; checked for NaN / inf. A sparse matrix is refused (ConfigError): the
    networks take dense features, and densifying is the caller's choice of memory."""
    if scipy.sparse.issparse(x) or (isinstance(x, torch.Tensor) and x.layout != torch.strided):
        raise ConfigError(f"X is a sparse matrix ({type(x).__name__}); dense features are required: pass "
                          "X.toarray() (scipy) or X.to_dense() (torch)")
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        numeric = not (t.dtype == torch.bool or t.is_complex())
    else:
        try:
            a = np.asarray(x)
        except ValueError as err:  # ragged nested lists
            raise ConfigError(f"X is not a rectangular array: {err}") from err
        numeric = a.dtype.kind in "iuf"
        # a native, contiguous, writeable copy where torch cannot take the array as it is (negative strides,
        # another byte order, long double, a DataFrame's read-only view)
        t = torch.from_numpy(np.require(a, np.float64 if a.dtype.itemsize > 8 else a.dtype.newbyteorder("="),
                                        ["C", "W"])) if numeric else None
    if not numeric:
        raise ConfigError(f"X has dtype {a.dtype if t is None else t.dtype}; numeric features are required")
    t, wide = t.to(torch.get_default_dtype()), t
    if t.ndim not in (2, 4):
        hint = " (grey images: add a channel axis, X[:, None])" if t.ndim == 3 else ""
        raise ConfigError(f"X has shape {tuple(t.shape)}; expected (N, D) vectors or (N, C, H, W) images{hint}")
    if t.shape[0] == 0 or t[0].numel() == 0:
        raise ConfigError(f"X has shape {tuple(t.shape)}: no samples or no features")
    finite = torch.isfinite(t)
    if not finite.all():
        if torch.isfinite(wide).all():  # finite values too large for the dtype
            raise ConfigError(f"X holds values up to {float(wide.abs().max()):.3g}, beyond "
                              f"{t.dtype}'s largest ({torch.finfo(t.dtype).max:.3g}); scale the features")
        bad = int((~finite).flatten(1).any(1).sum())
        raise ConfigError(f"X contains NaN or infinite values (in {bad} of {len(t)} samples)")
    return t


def as_semi_labels(y, n: int) -> np.ndarray:
    """Labels in the semi-supervised convention -1 / 0 / 1 (None = all unlabeled)."""
    if y is None:
        return np.full(n, -1, dtype=np.int64)
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if y.dtype.kind in "OUS":  # labels as objects or text
        if any(v is None for v in y.ravel()):
            raise ConfigError("y contains None; allowed labels: -1 (unlabeled), 0 (normal), 1 (anomaly)")
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"y holds a label that is not a number ({err}); allowed labels: -1 (unlabeled), "
                              f"0 (normal), 1 (anomaly)") from err
    if y.shape != (n,):
        raise ConfigError(f"y has shape {y.shape}; expected ({n},), one label per sample of X")
    bad = sorted({str(v) for v in np.unique(y).tolist()} - {"-1", "0", "1", "-1.0", "0.0", "1.0"})
    if bad:
        raise ConfigError(f"y contains {', '.join(bad)}; allowed labels: -1 (unlabeled), 0 (normal), 1 (anomaly)")
    return y.astype(np.int64)


# the least count of each label value a detector may require, and its name in messages
REQUIRED_LABELS = {-1: (2, "unlabeled samples (y=-1)"), 0: (1, "labeled normal (y=0)"),
                   1: (1, "labeled anomaly (y=1)")}


class DeepDetector(OutlierMixin, BaseEstimator):
    """Base of the deep detectors. Subclasses define ``__init__`` (hyper-parameters only),
    ``_build_module(input_shape)`` and ``_train(runs)`` (:class:`Run`: a pack of runs; ``fit`` trains a pack of one).

    Fitted attributes (trailing underscore) are ``module_`` (the trained score network),
    ``input_shape_``, ``threshold_`` and whatever the subclass sets; all are saved by :meth:`save`.
    """

    # label values fit() must see: -1 asks for at least 2 unlabeled samples (one BatchNorm batch),
    # 0 / 1 for at least one labeled normal / anomaly (e.g. (-1, 0, 1) for ELITE)
    requires_labels: tuple[int, ...] = ()
    uses_labels: bool = True  # False: unsupervised, fit() drops y and trains on every sample of X
    # the samples whose BatchNorm statistics the trained network is scored with: the ones it trained on,
    # "unlabeled" (y = -1; every sample when y is dropped), "labeled" (y = 0 / 1) or "all"
    trains_on: str = "unlabeled"

    # -- helpers for subclasses -------------------------------------------------------
    def _keep_params(self, arguments: dict) -> None:
        """Store every constructor argument unchanged under its own name (scikit-learn's rule);
        a subclass's ``__init__`` calls ``self._keep_params(locals())``."""
        for name in self._get_param_names():
            setattr(self, name, arguments[name])

    def _settings(self) -> TrainSettings:
        s = TrainSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                          optimizer=self.optimizer, weight_decay=self.weight_decay)
        s.check()
        return s

    def _spec(self, input_shape: tuple[int, ...] | None) -> NetworkSpec:
        """The network ``network`` asks for (checked: ``networks.normal_spec``); ``None`` takes the input shape's
        default (``default_spec``); a dict without ``kind`` takes the one its ``channels`` / ``hidden`` names, else the
        input shape's; its other missing fields are :class:`NetworkSpec`'s defaults whatever the input
        (as the runner's ``data.network``, whose records name the network by its config). ``input_shape`` None
        (before the data is seen) checks the given fields only."""
        if self.network is None:
            return default_spec(input_shape) if input_shape is not None else NetworkSpec()
        if isinstance(self.network, NetworkSpec):
            return normal_spec(self.network)
        network = OmegaConf.to_container(self.network) if OmegaConf.is_config(self.network) else self.network
        if not isinstance(network, Mapping):
            raise ConfigError(f"network={self.network!r} is not allowed; give a dict such as {{'kind': 'mlp', "
                              f"'hidden': [64, 32], 'rep_dim': 16}} or {{'kind': 'conv', 'channels': [8, 4]}}")
        fields = [f.name for f in dataclasses.fields(NetworkSpec)]
        unknown = [k for k in network if k not in fields]
        if unknown:
            raise ConfigError(f"network={self.network!r} is not allowed: {unknown[0]!r} is not a network field; "
                              f"its fields: {', '.join(fields)}")
        # without a kind: the one its keys name (channels: conv, hidden: mlp), else the input shape's
        named = {"channels", "hidden"} & set(network)
        kind_known = "kind" in network or len(named) == 1 or input_shape is not None
        kind = ({"channels": "conv", "hidden": "mlp"}[named.pop()] if len(named) == 1 else
                default_spec(input_shape).kind if input_shape is not None else NetworkSpec.kind)
        # without the data's shape a dict naming no kind is checked for what does not depend on it
        return normal_spec(NetworkSpec(**{"kind": kind, **network}), kind_known)

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.random_state))

    def _check_types(self) -> None:
        """Every hyper-parameter whose default is a bool, an int or a float holds one (an int counts as a
        float; a bool as neither), so that ``squared='no'`` or ``lr=None`` is a ConfigError naming the value,
        not a truthy string or a TypeError deep inside training."""
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            default, value = param.default, getattr(self, name, None)
            is_bool = isinstance(value, bool | np.bool_)
            if isinstance(default, bool):
                ok, kind = is_bool, "true or false"
            elif isinstance(default, int):
                ok, kind = isinstance(value, int | np.integer) and not is_bool, "an int"
            elif isinstance(default, float):
                ok, kind = isinstance(value, int | float | np.integer | np.floating) and not is_bool, "a number"
            else:
                continue
            if not ok:
                raise ConfigError(f"{name}={value!r} is not allowed; it must be {kind}")

    def _check_common(self) -> None:
        self._check_types()
        if not 0.0 < self.contamination <= 0.5:
            raise ConfigError(f"contamination={self.contamination} is not allowed; it must lie in (0, 0.5]")
        self._settings()
        self._spec(None)

    def _check_params(self) -> None:
        """Checks of the subclass's own hyper-parameters (raise ConfigError); run by fit()."""

    # -- scikit-learn API ---------------------------------------------------------------
    def fit(self, X, y=None, monitor: Monitor | None = None):
        """Train on ``X`` with semi-supervised labels ``y`` (-1 unlabeled, 0 normal, 1 anomaly); returns self.
        A run alone is a pack of one (:func:`fit_packed`); raises what its fit raised (TrainingDiverged when its
        training diverged, ConfigError for bad settings or data)."""
        error = fit_packed([self], [X], [y], [monitor])[0]
        if error is not None:
            raise error
        return self

    def _pack_settings(self) -> dict:
        """The hyper-parameters the runs of one pack share: all but ``random_state`` (each run's seed),
        ``progress``, and ``contamination`` (each run's threshold) unless training reads it
        (:meth:`_trains_on_contamination`)."""
        params = self.get_params()
        for name in ("random_state", "progress") + (() if self._trains_on_contamination() else ("contamination",)):
            params.pop(name)
        return {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v for k, v in params.items()}

    def _trains_on_contamination(self) -> bool:
        """Whether training (not only the threshold) reads ``contamination``."""
        return False

    def _prepare_run(self, X, y, monitor: Monitor | None) -> Run:
        """Check the settings and the data of one run and build its network (seeded by ``random_state``)."""
        self._forget_fit()
        self._check_common()
        self._check_params()
        x = as_float_tensor(X)
        y_given = y is not None
        y = as_semi_labels(y, len(x))
        if not self.uses_labels:
            y = np.full(len(x), -1, dtype=np.int64)
        if len(x) < 2:
            raise ConfigError(f"{type(self).__name__} needs at least 2 training samples in X (BatchNorm "
                              f"normalises over a batch); got {len(x)}")
        if not y_given and self.uses_labels and ({0, 1} & set(self.requires_labels)):
            raise ConfigError(f"{type(self).__name__} needs y: -1 for unlabeled samples, 0 / 1 for labeled normals / "
                              f"anomalies (it uses both labeled kinds)")
        for value in self.requires_labels:
            least, what = REQUIRED_LABELS[value]
            if (y == value).sum() < least:
                raise ConfigError(f"{type(self).__name__} needs at least {least} {what} in y; "
                                  f"got labels {np.unique(y).tolist()}")
        device = resolve_device(self.device)
        self.input_shape_ = tuple(x.shape[1:])
        with seeded(int(self.random_state)):
            module = self._build_module(self.input_shape_).to(device)
        x = x.to(device)
        yt = torch.from_numpy(y).to(device)
        self.module_ = module
        x_unl, x_lab = x[yt == -1], x[yt >= 0]
        self._fit_statistics_data = {"unlabeled": x_unl, "labeled": x_lab, "all": x}[self.trains_on]
        return Run(self, module, x_unl, x_lab, yt[yt >= 0] == 1, monitor)

    def _forget_fit(self) -> None:
        """Drop every fitted attribute (``module_``, ``threshold_``, ...) and the training data kept while fitting:
        an estimator whose fit failed is unfitted, not left with an earlier fit's state."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")] + ["_fit_statistics_data"]:
            vars(self).pop(name, None)

    def _finish_run(self, run: Run) -> None:
        """After training: BatchNorm statistics of the training data, the threshold; TrainingDiverged when the
        trained network gives the training samples non-finite scores or a single score."""
        trained_on = self._fit_statistics_data
        del self._fit_statistics_data
        # score with the exact BatchNorm statistics of the trained network on its training data (training keeps
        # none: training.untracked_batch_norm)
        recompute_bn_statistics(run.module, trained_on, self.batch_size)
        train_scores = self._scores(run.x_unl if len(run.x_unl) else trained_on)
        if not np.isfinite(train_scores).all() or np.ptp(train_scores) == 0:
            raise TrainingDiverged(f"{type(self).__name__}: the trained network gives the training samples "
                                   f"{'non-finite scores' if not np.isfinite(train_scores).all() else 'one score'} "
                                   f"(it diverged or collapsed); try a smaller learning rate (lr; train.lr in the "
                                   f"runner)")
        self.threshold_ = float(np.quantile(train_scores, 1.0 - self.contamination))

    def score_while_fitting(self, X: torch.Tensor) -> np.ndarray:
        """Anomaly scores ``(N,)`` of ``X`` in the middle of :meth:`fit` (for a monitor, e.g. the
        curves of Fig. 7): with BatchNorm statistics of the current weights on the training data,
        as the finished model is scored; the module's buffers are left exactly as they were."""
        with statistics_of(self.module_, self._fit_statistics_data, self.batch_size):
            return self._scores(X)

    def _scores(self, x: torch.Tensor) -> np.ndarray:
        device = next(iter(self.module_.state_dict().values())).device
        return score_in_batches(self.module_, x.to(device)).cpu().numpy()

    def decision_function(self, X) -> np.ndarray:
        """Anomaly score of each sample; higher = more anomalous."""
        check_is_fitted(self, "module_")
        x = as_float_tensor(X)
        if tuple(x.shape[1:]) != self.input_shape_:
            raise ConfigError(f"X has samples of shape {tuple(x.shape[1:])}; "
                              f"the model was fitted on {self.input_shape_}")
        return self._scores(x)

    def score_samples(self, X) -> np.ndarray:
        """scikit-learn's convention: higher = more normal (the negated anomaly score)."""
        return -self.decision_function(X)

    def predict(self, X) -> np.ndarray:
        """1 for anomalies, 0 for normal samples (PyOD's convention): the anomaly score above the
        ``1 - contamination`` quantile of the unlabeled training samples' scores."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def fit_predict(self, X, y=None, **fit_params) -> np.ndarray:
        """``fit(X, y)`` then ``predict(X)`` (OutlierMixin's version would drop ``y``)."""
        return self.fit(X, y, **fit_params).predict(X)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write hyper-parameters, fitted attributes and weights to ``path`` (atomically)."""
        check_is_fitted(self, "module_")
        path = Path(path)
        if not path.parent.is_dir():
            raise ConfigError(f"cannot save to {path}: the folder {path.parent} does not exist")
        if path.is_dir():
            raise ConfigError(f"cannot save to {path}: it is a folder; give a file name, e.g. {path / 'model.pt'}")
        fitted = {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_") and k != "module_"}
        blob = {"class": type(self).__name__, "params": self.get_params(), "fitted": fitted,
                "state": {k: v.cpu() for k, v in self.module_.state_dict().items()}}
        atomic_torch_save(blob, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> DeepDetector:
        """Read a model written by :meth:`save` onto ``device``, which becomes its ``device`` parameter whatever the
        saved estimator's was (``DeepDetector.load`` picks the class). The file is
        unpickled (its hyper-parameters and fitted attributes are Python objects): load only files you trust. The
        caller's random state is left as it was."""
        try:
            blob = torch.load(path, map_location="cpu", weights_only=False)
            name = blob["class"]
        except FileNotFoundError as err:
            raise ConfigError(f"model file {path} does not exist") from err
        except Exception as err:  # not a torch file, or a torch file of something else
            raise ConfigError(f"{path} is not a model written by DeepDetector.save ({err})") from err
        classes = _registry()
        if cls is not DeepDetector and name != cls.__name__:
            raise ConfigError(f"{path} holds a model of class {name}, not {cls.__name__}")
        if name not in classes:
            raise ConfigError(f"{path} holds a {name}; known detectors: {', '.join(sorted(classes))}")
        est = classes[name](**{**blob["params"], "device": device})
        vars(est).update(blob["fitted"])
        with seeded(0):  # the weights are then replaced by the file's
            module = est._build_module(est.input_shape_)
        module.load_state_dict(blob["state"])
        est.module_ = module.to(resolve_device(device))
        return est

    def _build_module(self, input_shape: tuple[int, ...]) -> nn.Module:
        raise NotImplementedError

    def _train(self, runs: list[Run]) -> None:
        """Train the runs of a pack (``self`` is ``runs[0].est``; all share its :meth:`_pack_settings`); set each
        run's fitted attributes (``epoch_losses_``, ...) on ``run.est``, and a run's ``error`` when it fails
        (:func:`each_run` for per-run work, :func:`train_runs` for the training loop)."""
        raise NotImplementedError


@dataclasses.dataclass
class Run:
    """One run of a pack, as a method's ``_train`` sees it: its estimator ``est`` (hyper-parameters, seed;
    fitted attributes go there), its network ``module``, unlabeled samples ``x_unl`` ``(N_u, ...)``, labeled
    samples ``x_lab`` ``(N_l, ...)`` with ``y_lab`` ``(N_l,)`` (True = anomaly), its monitor, and its error once
    it failed."""

    est: DeepDetector
    module: nn.Module
    x_unl: torch.Tensor
    x_lab: torch.Tensor
    y_lab: torch.Tensor
    monitor: Monitor | None = None
    error: Exception | None = None  # set when the run failed: it leaves the pack (each_run, train_runs)


def each_run(runs: Sequence[Run], action: Callable[[Run], None]) -> None:
    """``action(run)`` for every run of a pack that has not failed; an exception it raises becomes that run's
    ``error`` (the run leaves the pack, the others go on)."""
    for run in runs:
        if run.error is None:
            try:
                action(run)
            except torch.cuda.OutOfMemoryError:  # the pack's, not the run's: the whole pack stops
                raise
            except Exception as err:  # one run's failure (a diverged pre-training, a solver's error) is its own
                run.error = err


def run_scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    """A run's number (its margin C, say) as a 0-d tensor of ``like``'s dtype and device, for its ``data(run)``
    (:func:`train_runs`; a pack stacks it)."""
    return torch.tensor(value, dtype=like.dtype, device=like.device)


def train_runs(runs: Sequence[Run], n: int, step: Step, data: Callable[[Run], Mapping[str, torch.Tensor]], *,
               desc: str, settings: TrainSettings | None = None, main: bool = True) -> None:
    """:func:`training.run_training` of the runs of a pack that have not failed, over ``n`` samples each: their
    networks, generators (seeded by ``random_state``) and tensors ``data(run)``, the first run's settings unless
    ``settings`` is given. A run whose loss turns NaN or infinite gets that TrainingDiverged as its ``error``.
    ``main``: the method's training (each run's monitor sees it; its epoch losses become ``epoch_losses_``),
    else a preliminary phase (a warm-up)."""
    alive = [r for r in runs if r.error is None]
    if not alive:
        return
    first = alive[0].est
    losses = run_training([r.module for r in alive], n, step, settings or first._settings(),
                          [r.est._generator() for r in alive], [data(r) for r in alive], desc=desc,
                          progress=first.progress, monitors=[r.monitor if main else None for r in alive])
    for run, run_losses in zip(alive, losses):
        run.error = diverged(run_losses, desc)
        if main:
            run.est.epoch_losses_ = run_losses


def fit_packed(estimators: Sequence[DeepDetector], Xs: Sequence, ys: Sequence | None = None,
               monitors: Sequence[Monitor | None] | None = None) -> list[Exception | None]:
    """Fit K estimators as one pack: their networks train together as one stacked model (``methods.training``),
    each on its own ``Xs[i]`` / ``ys[i]`` (as :meth:`DeepDetector.fit` takes them) with its own seed, and each
    ends as if fitted alone (the same computation; float64 tests: equal within 1e-6). The estimators must be of
    one class with the same hyper-parameters except ``random_state`` and (unless training reads it)
    ``contamination``, and the data of the runs must give the same numbers of unlabeled and labeled samples of
    one shape; ConfigError before any training otherwise. Returns, per run, None (fitted) or the error of a run
    that failed (a ConfigError for its data, a TrainingDiverged, ...): that estimator is left unfitted and the
    other runs go on."""
    if not isinstance(estimators, Sequence) or not all(isinstance(e, DeepDetector) for e in estimators):
        raise ConfigError(f"fit_packed needs a list of estimators (EliteDetector, DeepSVDD, ...); got {estimators!r}")
    k = len(estimators)
    twice = next((i for i, est in enumerate(estimators) if any(est is e for e in estimators[:i])), None)
    if twice is not None:
        raise ConfigError(f"estimator #{twice} is an earlier one again: each run of a pack needs its own estimator "
                          f"(sklearn.base.clone makes one)")
    ys = [None] * k if ys is None else list(ys)
    monitors = [None] * k if monitors is None else list(monitors)
    if not k or len(Xs) != k or len(ys) != k or len(monitors) != k:
        raise ConfigError(f"fit_packed needs one X, y and monitor per estimator; got {k} estimators, {len(Xs)} X, "
                          f"{len(ys)} y, {len(monitors)} monitors")
    first = estimators[0]
    mine = first._pack_settings()
    for est in estimators[1:]:
        if type(est) is not type(first):
            raise ConfigError(f"the runs of a pack need one estimator class; got {type(first).__name__} and "
                              f"{type(est).__name__}")
        theirs = est._pack_settings()
        if theirs != mine:
            name = next(n for n in mine if mine[n] != theirs[n])
            why = " (its training reads it)" if name == "contamination" else ""
            raise ConfigError(f"the runs of a pack need the same hyper-parameters (random_state may differ, and "
                              f"contamination where training does not read it); {name}={mine[name]!r} and "
                              f"{name}={theirs[name]!r}{why}")
    errors: list[Exception | None] = [None] * k
    runs: list[Run] = []
    position = {id(est): i for i, est in enumerate(estimators)}
    try:
        for i, (est, X, y, monitor) in enumerate(zip(estimators, Xs, ys, monitors)):
            try:
                runs.append(est._prepare_run(X, y, monitor))
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as err:  # this run's settings or data: its own failure
                est._forget_fit()
                errors[i] = err
        for what in ("x_unl", "x_lab"):
            odd = next((r for r in runs if getattr(r, what).shape != getattr(runs[0], what).shape), None)
            if odd is not None:
                kind = "unlabeled" if what == "x_unl" else "labeled"
                raise ConfigError(f"the runs of a pack need the same number and shape of {kind} samples; run "
                                  f"#{position[id(odd.est)]} has {tuple(getattr(odd, what).shape)}, run "
                                  f"#{position[id(runs[0].est)]} {tuple(getattr(runs[0], what).shape)}")
        if runs:
            runs[0].est._train(runs)
        each_run(runs, lambda run: run.est._finish_run(run))  # e.g. a network scoring every sample alike fails
        for run in runs:
            if run.error is not None:
                run.est._forget_fit()
            errors[position[id(run.est)]] = run.error
    except BaseException:  # out of memory, an interrupt, a pack that cannot be: no estimator is left half fitted
        for est in estimators:
            est._forget_fit()
        raise
    return errors


def _registry() -> dict[str, type[DeepDetector]]:
    def walk(c):
        for s in c.__subclasses__():
            yield s
            yield from walk(s)
    return {c.__name__: c for c in walk(DeepDetector)}
