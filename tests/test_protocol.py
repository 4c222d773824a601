import re

import numpy as np
import pytest

from elite_exp.data import class_index, make_split
from elite_exp.errors import ConfigError

LABELS = np.repeat(np.arange(10), 1000)


def test_counts_and_ratio():
    s = make_split(LABELS, normal_class=3, r_p=0.2, n_train=500, n_labels=20, seed=0, dataset="t")
    assert len(s.unlabeled) == 500 and len(s.labeled) == 20
    assert s.unlabeled_anomaly.sum() == 100
    assert np.all((LABELS[s.unlabeled] != 3) == s.unlabeled_anomaly.astype(bool))
    assert np.all((LABELS[s.labeled] != 3) == s.labeled_anomaly.astype(bool))
    assert s.labeled_anomaly.sum() == 10


def test_disjoint_and_unique():
    s = make_split(LABELS, 0, 0.5, 1000, 40, seed=1)
    assert len(np.intersect1d(s.unlabeled, s.labeled)) == 0
    assert len(np.unique(s.unlabeled)) == len(s.unlabeled)
    # anomalies come from every other class
    assert set(LABELS[s.unlabeled[s.unlabeled_anomaly == 1]]) == set(range(1, 10))


def test_deterministic_and_seed_dependent():
    a = make_split(LABELS, 2, 0.1, 300, 10, seed=5, dataset="mnist")
    b = make_split(LABELS, 2, 0.1, 300, 10, seed=5, dataset="mnist")
    c = make_split(LABELS, 2, 0.1, 300, 10, seed=6, dataset="mnist")
    for field in ("unlabeled", "unlabeled_anomaly", "labeled", "labeled_anomaly"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.unlabeled, c.unlabeled)
    assert not np.array_equal(a.labeled, c.labeled)


def test_labeled_set_is_the_same_at_every_pollution_ratio():
    splits = [make_split(LABELS, 4, r, 400, 20, seed=0) for r in (0.0, 0.1, 0.3, 0.5)]
    for s in splits[1:]:
        assert np.array_equal(s.labeled, splits[0].labeled)
    assert [int(s.unlabeled_anomaly.sum()) for s in splits] == [0, 40, 120, 200]


@pytest.mark.parametrize("kwargs, message", [
    (dict(r_p=1.0), "r_p=1.0 is not allowed"),
    (dict(r_p=-0.1), "r_p=-0.1 is not allowed"),
    (dict(n_labels=7), "n_labels=7 is not allowed"),
    (dict(n_labels=0), "n_labels=0 is not allowed"),
    (dict(normal_class=11), "normal_class=11 is not a class"),
    (dict(n_train=1200), "n_train=1200 at r_p=0.1 asks for 1080 unlabeled normals of class 0, besides the 10 "
                         "labeled ones, but the train split holds only 990; allowed: n_train <= 1100 at r_p=0.1 "
                         "and n_labels=20"),
    (dict(n_train=10000, r_p=0.95), "unlabeled anomalies"),
    (dict(n_train=0), "n_train=0 is not allowed; it must be >= 2"),
    (dict(n_train=1), "n_train=1 is not allowed; it must be >= 2"),
    (dict(n_train=2, r_p=0.25), r"r_p=0.25 of n_train=2 gives no anomaly; allowed: n_train >= 3 at r_p=0.25"),
    (dict(n_train=100, r_p=0.999), r"r_p=0.999 of n_train=100 gives no normal sample; allowed: n_train >= 500 at "
                                   r"r_p=0.999, or a smaller r_p"),
    (dict(n_train=2, r_p=0.75), r"r_p=0.75 of n_train=2 gives no normal sample; allowed: n_train >= 3"),
    (dict(n_labels=2002), "n_labels=2002 asks for 1001 labeled normals of class 0, but the train split holds only "
                          "1000; allowed: n_labels <= 1820 with n_train=100 at r_p=0.1"),
    (dict(class_name="zero", n_train=1200), "unlabeled normals of class zero"),
])
def test_bad_values_are_named(kwargs, message):
    args = dict(normal_class=0, r_p=0.1, n_train=100, n_labels=20, seed=0) | kwargs
    with pytest.raises(ConfigError, match=message):
        make_split(LABELS, **args)


def test_the_largest_n_train_an_error_offers_fits():
    from elite_exp.data.protocol import max_train, n_anomalies

    def brute_force(r_p, normals, anomalies):
        return max(n for n in range(normals + anomalies + 1)
                   if n - n_anomalies(r_p, n) <= normals and n_anomalies(r_p, n) <= anomalies)
    for r_p in (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.7, 0.95):
        for normals, anomalies in ((990, 10), (990, 1), (990, 3), (50, 990), (7, 7), (0, 5), (3, 0)):
            assert max_train(r_p, normals, anomalies) == brute_force(r_p, normals, anomalies), (r_p, normals, anomalies)
    # the bound an error names draws, one more does not: normals or anomalies the limit
    few_anomalies = np.concatenate([np.zeros(1000, int), np.ones(30, int)])
    for labels, r_p in ((LABELS, 0.1), (LABELS, 0.5), (few_anomalies, 0.1), (few_anomalies, 0.02)):
        n = max_train(r_p, (labels == 0).sum() - 10, (labels != 0).sum() - 10)
        make_split(labels, 0, r_p, n, 20, seed=0)
        with pytest.raises(ConfigError, match=f"allowed: n_train <= {n} "):
            make_split(labels, 0, r_p, n + 1, 20, seed=0)
    # the most labels an error names leave n_train its samples
    for labels, r_p, n_train in ((LABELS, 0.1, 100), (few_anomalies, 0.1, 200), (few_anomalies, 0.5, 40)):
        with pytest.raises(ConfigError, match=r"allowed: n_labels <= (\d+) with") as err:
            make_split(labels, 0, r_p, n_train, 3000, seed=0)
        most = int(re.search(r"n_labels <= (\d+)", str(err.value)).group(1))
        make_split(labels, 0, r_p, n_train, most, seed=0)
        with pytest.raises(ConfigError):
            make_split(labels, 0, r_p, n_train, most + 2, seed=0)
    with pytest.raises(ConfigError, match="train split holds only the normal class 0: the protocol takes its"):
        make_split(np.zeros(500, int), 0, 0.1, 100, 20, seed=0)
    with pytest.raises(ConfigError, match="allowed: none at r_p=0.5 and n_labels=60: fewer labels leave more"):
        make_split(few_anomalies, 0, 0.5, 100, 60, seed=0)
    # 10 anomalies left after 10 labeled ones: 4 would draw but hold no anomaly at r_p 0.1
    with pytest.raises(ConfigError, match="allowed: none at r_p=0.1 and n_labels=40"):
        make_split(np.concatenate([np.zeros(1000, int), np.ones(20, int)]), 0, 0.1, 100, 40, seed=0)


def test_numpy_numbers_draw_the_split_the_runner_draws():
    labels = np.repeat(np.arange(4), 50)
    plain = make_split(labels, 1, 0.1, 40, 10, 0, "d")
    numpy = make_split(labels, np.int64(1), np.float64(0.1), 40, 10, np.int64(0), "d")
    for a, b in zip(vars(plain).values(), vars(numpy).values()):
        np.testing.assert_array_equal(a, b)
    assert class_index(np.int64(3), ("a", "b", "c", "d")) == 3


def test_a_normal_class_the_train_split_lacks_is_named():
    with pytest.raises(ConfigError, match=r"^the train split holds no samples of the normal class weird; pick a "
                                          r"class it holds$"):
        make_split(np.repeat([0, 1], 50), 2, 0.1, 40, 4, 0, class_name="weird")


def test_a_name_that_is_no_class_of_numbered_classes_is_not_offered_an_index():
    with pytest.raises(ConfigError, match=r"^normal_class='zero' is not a class of this data set; allowed: a class "
                                          r"name \(0, 1, 2\)$"):
        class_index("zero", ("0", "1", "2"))
