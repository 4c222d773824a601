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

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from elite_exp.errors import ConfigError
from elite_exp.methods.training import Monitor, TrainSettings
from elite_exp.networks import NetworkSpec, default_spec
from elite_exp.scores import score_in_batches


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} asked but CUDA is not available; use device=cpu or device=auto")
        if ":" in device and int(device[5:]) >= torch.cuda.device_count():
            raise ConfigError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
        return torch.device(device)
    raise ConfigError(f"device={device!r} is not allowed; allowed: auto, cpu, cuda, cuda:N")


def as_float_tensor(x) -> torch.Tensor:
    """Samples as a float32 tensor: (N, D) vectors or (N, C, H, W) images; checked for NaN / inf."""
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if not (t.is_floating_point() or t.dtype in (torch.uint8, torch.int16, torch.int32, torch.int64)):
        raise ConfigError(f"X has dtype {t.dtype}; numeric features are required")
    t = t.float()
    if t.ndim not in (2, 4):
        raise ConfigError(f"X has shape {tuple(t.shape)}; expected (N, D) vectors or (N, C, H, W) images")
    if t.shape[0] == 0:
        raise ConfigError("X holds no samples")
    if not torch.isfinite(t).all():
        raise ConfigError("X contains NaN or infinite values")
    return t


def as_semi_labels(y, n: int) -> np.ndarray:
    """Labels in the semi-supervised convention -1 / 0 / 1 (None = all unlabeled)."""
    if y is None:
        return np.full(n, -1, dtype=np.int64)
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if y.shape != (n,):
        raise ConfigError(f"y has shape {y.shape}; expected ({n},), one label per sample of X")
    bad = sorted(set(np.unique(y).tolist()) - {-1, 0, 1})
    if bad:
        raise ConfigError(f"y contains {bad}; allowed labels: -1 (unlabeled), 0 (normal), 1 (anomaly)")
    return y.astype(np.int64)


class DeepDetector(OutlierMixin, BaseEstimator):
    """Base of the deep detectors. Subclasses define ``__init__`` (hyper-parameters only),
    ``_check_params()``, ``_build_module(input_shape)`` and ``_train(module, x_unl, x_lab, y_lab, monitor)``."""

    requires_labels: tuple[int, ...] = ()  # label values fit() must see (e.g. (0, 1) for ELITE)
    uses_labels: bool = True  # False: unsupervised, fit() drops y and trains on every sample of X

    # -- helpers for subclasses -------------------------------------------------------
    def _settings(self) -> TrainSettings:
        s = TrainSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                          optimizer=self.optimizer, weight_decay=self.weight_decay)
        s.check()
        return s

    def _spec(self, input_shape: tuple[int, ...]) -> NetworkSpec:
        if self.network is None:
            return default_spec(input_shape)
        if isinstance(self.network, NetworkSpec):
            return self.network
        try:
            spec = dict(self.network)
            return NetworkSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        except TypeError as err:
            raise ConfigError(f"network={self.network!r} is not a valid network spec: {err}") from err

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.random_state))

    # -- scikit-learn API ---------------------------------------------------------------
    def fit(self, X, y=None, monitor: Monitor | None = None):
        """Train on ``X`` with semi-supervised labels ``y`` (-1 unlabeled, 0 normal, 1 anomaly)."""
        self._check_params()
        x = as_float_tensor(X)
        y = as_semi_labels(y, len(x))
        if not self.uses_labels:
            y = np.full(len(x), -1, dtype=np.int64)
        for value, name in ((0, "labeled normal (y=0)"), (1, "labeled anomaly (y=1)")):
            if value in self.requires_labels and not (y == value).any():
                raise ConfigError(f"{type(self).__name__} needs at least one {name} in y")
        if not 0.0 < self.contamination < 0.5 + 1e-12:
            raise ConfigError(f"contamination={self.contamination} is not allowed; it must lie in (0, 0.5]")
        self._settings()
        device = resolve_device(self.device)
        self.input_shape_ = tuple(x.shape[1:])
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(int(self.random_state))
            module = self._build_module(self.input_shape_).to(device)
        x = x.to(device)
        yt = torch.from_numpy(y).to(device)
        self.module_ = module
        self._train(module, x[yt == -1], x[yt >= 0], yt[yt >= 0] == 1, monitor)
        train_scores = self._scores(x[yt == -1] if (yt == -1).any() else x)
        self.threshold_ = float(np.quantile(train_scores, 1.0 - self.contamination))
        return self

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
        """1 for anomalies, 0 for normal samples (threshold from ``contamination``)."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write hyper-parameters and weights to ``path`` (atomically)."""
        check_is_fitted(self, "module_")
        path = Path(path)
        blob = {"class": type(self).__name__, "params": self.get_params(), "input_shape": self.input_shape_,
                "threshold": self.threshold_, "state": {k: v.cpu() for k, v in self.module_.state_dict().items()}}
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        torch.save(blob, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> DeepDetector:
        """Read a model written by :meth:`save`."""
        blob = torch.load(path, map_location="cpu", weights_only=False)
        if blob["class"] != cls.__name__ and cls is not DeepDetector:
            raise ConfigError(f"{path} holds a {blob['class']}, not a {cls.__name__}")
        klass = cls if cls is not DeepDetector else _registry()[blob["class"]]
        est = klass(**{**blob["params"], "device": device})
        est.input_shape_ = tuple(blob["input_shape"])
        est.threshold_ = blob["threshold"]
        module = est._build_module(est.input_shape_)
        module.load_state_dict(blob["state"])
        est.module_ = module.to(resolve_device(device))
        return est

    def _check_params(self) -> None:
        raise NotImplementedError

    def _build_module(self, input_shape: tuple[int, ...]) -> nn.Module:
        raise NotImplementedError

    def _train(self, module, x_unl, x_lab, y_lab, monitor) -> None:
        raise NotImplementedError


def _registry() -> dict[str, type[DeepDetector]]:
    def walk(c):
        for s in c.__subclasses__():
            yield s
            yield from walk(s)
    return {c.__name__: c for c in walk(DeepDetector)}
