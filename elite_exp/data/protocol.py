"""The experimental protocol: a polluted unlabeled training set and a small labeled set.

For (data set, normal class k, r_p, n_train, n_labels, seed):

* the labeled set (``n_labels`` examples, half from class k, half from the other classes)
  is drawn first, from a random stream that depends only on (data set, k, n_labels, seed),
  so the same labels are used at every pollution ratio;
* the unlabeled set is then drawn from the rest of the train split:
  ``round((1 - r_p) * n_train)`` samples of class k and the remainder uniformly from the
  other classes.

Every method run on the same arguments therefore sees byte-identical data.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from elite_exp.errors import ConfigError


@dataclass(frozen=True)
class Split:
    """Indices into a train split. ``*_anomaly`` are 1 for anomalies, 0 for normal samples."""

    unlabeled: np.ndarray
    unlabeled_anomaly: np.ndarray
    labeled: np.ndarray
    labeled_anomaly: np.ndarray


def _stream(*key: object) -> np.random.Generator:
    """A generator seeded by ``key``'s values; numpy numbers count as the Python numbers they equal (their
    repr differs under numpy 2: ``np.int64(0)``), so a seed from ``np.arange`` draws what the runner's does."""
    words = [zlib.crc32(repr(k.item() if isinstance(k, np.generic) else k).encode()) for k in key]
    return np.random.default_rng(np.random.SeedSequence(words))


def _take(rng: np.random.Generator, pool: np.ndarray, n: int, what: str, allowed: str) -> np.ndarray:
    if n > len(pool):
        raise ConfigError(f"{what}, but the train split holds only {len(pool)}; allowed: {allowed}")
    return np.sort(rng.choice(pool, size=n, replace=False))


def max_train(r_p: float, normals: int, anomalies: int) -> int:
    """The largest n_train whose polluted set at ``r_p`` fits in ``normals`` normal and ``anomalies``
    anomalous samples (0 when none does). Both counts grow with n_train, so a bisection finds it."""
    def fits(n):
        return n - n_anomalies(r_p, n) <= normals and n_anomalies(r_p, n) <= anomalies
    low, high = 0, normals + anomalies  # fits(low); the largest that fits is at most high
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low


def check_protocol(r_p: float, n_train: int, n_labels: int) -> None:
    """Reject protocol values that no data set allows (before any data is loaded)."""
    if not 0.0 <= r_p < 1.0:
        raise ConfigError(f"r_p={r_p} is not allowed; the pollution ratio must lie in [0, 1)")
    if n_labels <= 0 or n_labels % 2:
        raise ConfigError(f"n_labels={n_labels} is not allowed; it must be an even number > 0 "
                          "(half labeled normals, half labeled anomalies)")
    check_n_train(n_train)
    if r_p > 0 and n_anomalies(r_p, n_train) == 0:
        least = next(n for n in itertools.count(math.ceil(0.5 / r_p)) if n_anomalies(r_p, n) > 0)
        raise ConfigError(f"r_p={r_p} of n_train={n_train} gives no anomaly; allowed: n_train >= {least} at "
                          f"r_p={r_p}, or r_p=0 for a clean training set")
    if n_anomalies(r_p, n_train) == n_train:
        # (1 - r_p) n rounds to 1 normal sample from about 0.5 / (1 - r_p) on
        least = next(n for n in itertools.count(max(n_train + 1, math.floor(0.5 / (1.0 - r_p)) - 1))
                     if n_anomalies(r_p, n) < n)
        raise ConfigError(f"r_p={r_p} of n_train={n_train} gives no normal sample; allowed: n_train >= {least} at "
                          f"r_p={r_p}, or a smaller r_p")


def check_n_train(n_train: int) -> None:
    if n_train < 2:
        raise ConfigError(f"n_train={n_train} is not allowed; it must be >= 2 (a training batch needs 2 samples)")


def n_anomalies(r_p: float, n_train: int) -> int:
    """The number of anomalies in the polluted unlabeled set: ``n_train - round((1 - r_p) * n_train)``."""
    return n_train - int(round((1.0 - r_p) * n_train))


def labels_from_ratio(r_l: float, n_train: int) -> int:
    """The number of labels for the paper's label ratio r_l = n_labels / n_train (e.g. 0.004 of
    5,000 = 20); the nearest whole number (``check_label_ratio`` says whether it is exact)."""
    return round(r_l * n_train)


def check_label_ratio(r_l: float, n_train: int) -> None:
    """r_l must lie in (0, 1) and give an even whole number of labels of ``n_train`` (ConfigError)."""
    check_n_train(n_train)
    if not 0.0 < r_l < 1.0:
        raise ConfigError(f"r_l={r_l} is not allowed; the label ratio n_labels / n_train must lie in (0, 1)")
    exact = r_l * n_train
    n = labels_from_ratio(r_l, n_train)
    if abs(exact - n) > 1e-6 * exact or n % 2 or n == 0:
        raise ConfigError(f"r_l={r_l} is not allowed with n_train={n_train}: it gives {exact:g} labels, and "
                          f"n_labels must be an even whole number > 0 (multiples of {2 / n_train:g})")


def check_normal_class(normal_class) -> None:
    """``normal_class`` is a class index (int >= 0) or a class name: non-empty text, or a number
    (a numeric class name such as a CSV label 1.0 or -1)."""
    number = _as_number(normal_class)
    is_number = number is not None and not isinstance(normal_class, bool | str)
    if not (is_number or (isinstance(normal_class, str) and normal_class)):
        raise ConfigError(f"normal_class={normal_class!r} is not allowed; give a class index (int >= 0) "
                          "or a class name")


def _as_number(value) -> float | None:
    """``value`` (a number or its text) as a finite float, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def class_index(normal_class: int | float | str, class_names: Sequence[str]) -> int:
    """The normal class as an index into ``class_names``.

    A value whose text is a class name is that class; a number equal to exactly one numeric class
    name is that class (``1`` is the class ``1.0``). When any class name is a number, a number is
    always read as a name, never as an index, so a value that could be both fails instead of
    silently picking the class at that position. Otherwise an int is the index.
    Raises ConfigError naming the classes when nothing matches.
    """
    if isinstance(normal_class, np.generic):  # np.int64(3) is the index 3, as 3 is
        normal_class = normal_class.item()
    check_normal_class(normal_class)
    names = [str(c) for c in class_names]
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    if str(normal_class) in names:
        return names.index(str(normal_class))
    value = _as_number(normal_class)
    numeric = [i for i, n in enumerate(names) if _as_number(n) is not None]
    if value is not None and numeric:
        same = [i for i in numeric if _as_number(names[i]) == value]
        if len(same) == 1:
            return same[0]
        if len(same) > 1:
            raise ConfigError(f"normal_class={normal_class!r} equals several class names "
                              f"({', '.join(names[i] for i in same)}); give the exact name")
        raise ConfigError(f"normal_class={normal_class!r} is not a class of this data set; its class names are "
                          f"numbers ({shown}), so a number names a class, never an index: give one of them")
    if isinstance(normal_class, int) and not isinstance(normal_class, bool) and 0 <= normal_class < len(names):
        return normal_class
    index = "" if numeric else f" or an index 0..{len(names) - 1}"  # numeric names: a number is a name
    raise ConfigError(f"normal_class={normal_class!r} is not a class of this data set; allowed: a class name "
                      f"({shown}){index}")


def make_split(labels: np.ndarray, normal_class: int, r_p: float, n_train: int, n_labels: int,
               seed: int, dataset: str = "", class_name: str | None = None) -> Split:
    """Draw the labeled and the polluted unlabeled index sets from ``labels`` (a train split).
    ``class_name`` names the normal class in errors (default: its index). Raises ConfigError when
    the train split holds too few samples for n_labels or n_train, naming both and what fits."""
    labels = np.asarray(labels)
    check_protocol(r_p, n_train, n_labels)
    classes = sorted(set(labels.tolist()))
    if normal_class not in classes:
        if class_name is not None:  # a class of the data set that the train split lacks (e.g. a test-only class)
            raise ConfigError(f"the train split holds no samples of the normal class {class_name}; pick a class "
                              f"it holds")
        raise ConfigError(f"normal_class={normal_class} is not a class of this data set; allowed: "
                          f"{classes[0]}..{classes[-1]}")
    normal_pool = np.flatnonzero(labels == normal_class)
    anomaly_pool = np.flatnonzero(labels != normal_class)

    name = normal_class if class_name is None else class_name
    if not len(anomaly_pool):
        raise ConfigError(f"the train split holds only the normal class {name}: the protocol takes its anomalies "
                          f"(labeled and unlabeled) from the other classes; give data with a second class")
    rng = _stream(dataset, normal_class, n_labels, seed, "labeled")
    half = n_labels // 2
    n_anomaly = n_anomalies(r_p, n_train)
    n_normal = n_train - n_anomaly
    # the most labels that leave this n_train its samples
    most = 2 * min(len(normal_pool) - n_normal, len(anomaly_pool) - n_anomaly)
    most_labels = (f"n_labels <= {most} with n_train={n_train} at r_p={r_p}" if most >= 2 else
                   f"none with n_train={n_train} at r_p={r_p}: a smaller n_train leaves more samples to label")
    lab_n = _take(rng, normal_pool, half, f"n_labels={n_labels} asks for {half} labeled normals of class {name}",
                  most_labels)
    lab_a = _take(rng, anomaly_pool, half, f"n_labels={n_labels} asks for {half} labeled anomalies", most_labels)

    fits = max_train(r_p, len(normal_pool) - half, len(anomaly_pool) - half)
    possible = fits >= 2 and (r_p == 0 or n_anomalies(r_p, fits) > 0)
    most_train = (f"n_train <= {fits} at r_p={r_p} and n_labels={n_labels}" if possible else
                  f"none at r_p={r_p} and n_labels={n_labels}: fewer labels leave more samples to train on")
    rng = _stream(dataset, normal_class, n_labels, seed, r_p, n_train, "unlabeled")
    unl_n = _take(rng, np.setdiff1d(normal_pool, lab_n), n_normal,
                  f"n_train={n_train} at r_p={r_p} asks for {n_normal} unlabeled normals of class {name}, "
                  f"besides the {half} labeled ones", most_train)
    unl_a = _take(rng, np.setdiff1d(anomaly_pool, lab_a), n_anomaly,
                  f"n_train={n_train} at r_p={r_p} asks for {n_anomaly} unlabeled anomalies, "
                  f"besides the {half} labeled ones", most_train)

    unlabeled = np.concatenate([unl_n, unl_a])
    order = rng.permutation(len(unlabeled))
    unl_is_anomaly = np.concatenate([np.zeros(len(unl_n), np.int64), np.ones(len(unl_a), np.int64)])
    return Split(
        unlabeled=unlabeled[order],
        unlabeled_anomaly=unl_is_anomaly[order],
        labeled=np.concatenate([lab_n, lab_a]),
        labeled_anomaly=np.concatenate([np.zeros(half, np.int64), np.ones(half, np.int64)]),
    )
