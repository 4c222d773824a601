"""EliteDetector as a scikit-learn / PyOD style estimator: conventions, real fits, persistence, bad input."""

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.utils import estimator_checks

from elite_exp import DeepDetector, EliteDetector
from elite_exp.data import load_dataset
from elite_exp.errors import ConfigError
from tests.conftest import semi_supervised

MLP = {"kind": "mlp", "hidden": [32, 16], "rep_dim": 8}

# scikit-learn's own checks that do not fit: the fitting checks feed y as class labels 0/1/2,
# which is not the semi-supervised convention (-1 / 0 / 1 with unlabeled samples) of fit()
PARAM_CHECKS = ["check_no_attributes_set_in_init", "check_get_params_invariance", "check_set_params",
                "check_parameters_default_constructible", "check_estimator_cloneable", "check_estimator_repr",
                "check_do_not_raise_errors_in_init_or_set_params", "check_estimators_unfitted", "check_mixin_order"]


@pytest.fixture(scope="module")
def breast_cancer():
    return load_dataset("breast_cancer")


@pytest.fixture(scope="module")
def small_fit(digits):
    """A quick fit on digits (class 0 normal, 10% pollution, 10 labels) shared by several tests."""
    X, y, _ = semi_supervised(digits, 0, 0.1, 100, 10)
    return EliteDetector(network=MLP, epochs=5, batch_size=32, lr=1e-3, device="cpu").fit(X, y), X, y


@pytest.mark.parametrize("check", PARAM_CHECKS)
def test_sklearn_parameter_checks(check):
    getattr(estimator_checks, check)("EliteDetector", EliteDetector())


def test_clone_get_set_params(small_fit):
    est, _, _ = small_fit
    params = est.get_params()
    assert params["network"] == MLP and params["epochs"] == 5 and params["score"] == "svdd"
    copy = clone(est)
    assert copy.get_params() == params and not hasattr(copy, "module_")
    assert copy.set_params(score="ae", eta_m=10.0) is copy
    assert copy.score == "ae" and copy.eta_m == 10.0 and est.score == "svdd"
    with pytest.raises(ValueError, match="Invalid parameter"):
        copy.set_params(no_such_param=1)


def test_not_fitted_error(tmp_path):
    est = EliteDetector()
    X = np.zeros((4, 3), np.float32)
    for call in (est.decision_function, est.score_samples, est.predict):
        with pytest.raises(NotFittedError):
            call(X)
    with pytest.raises(NotFittedError):
        est.save(tmp_path / "m.pt")


def test_fit_returns_self_and_pyod_conventions(small_fit):
    est, X, y = small_fit
    assert isinstance(est, DeepDetector) and est.input_shape_ == (64,)
    scores = est.decision_function(X)
    np.testing.assert_array_equal(est.score_samples(X), -scores)
    pred = est.predict(X)
    assert set(np.unique(pred)) <= {0, 1}
    np.testing.assert_array_equal(pred, (scores > est.threshold_).astype(int))
    assert 0.05 <= pred[y == -1].mean() <= 0.15  # contamination=0.1 of the unlabeled training samples


def test_fit_predict_passes_the_labels(digits):
    X, y, _ = semi_supervised(digits, 1, 0.1, 100, 10)
    est = EliteDetector(network=MLP, epochs=1, batch_size=32, device="cpu")
    np.testing.assert_array_equal(est.fit_predict(X, y), est.predict(X))


def test_digits_polluted_few_labels_auc_well_above_chance(digits):
    X, y, split = semi_supervised(digits, 0, 0.1, 100, 10)
    est = EliteDetector(network={"kind": "mlp", "hidden": [64, 32], "rep_dim": 16}, epochs=30, batch_size=32,
                        lr=1e-3, device="cpu")
    assert est.fit(X, y) is est
    test_auc = roc_auc_score(digits.y_test != 0, est.decision_function(digits.x_test))
    train_auc = roc_auc_score(split.unlabeled_anomaly, est.decision_function(X[y == -1]))
    assert test_auc > 0.8 and train_auc > 0.7, (test_auc, train_auc)


@pytest.mark.parametrize("score", ["svdd", "ae"])
def test_breast_cancer_polluted_few_labels_auc_well_above_chance(breast_cancer, score):
    normal = breast_cancer.class_names.index("benign")
    X, y, _ = semi_supervised(breast_cancer, normal, 0.1, 200, 10)
    est = EliteDetector(score=score, network=MLP, epochs=30, batch_size=32, lr=1e-3, device="cpu").fit(X, y)
    auc = roc_auc_score(breast_cancer.y_test != normal, est.decision_function(breast_cancer.x_test))
    assert auc > 0.7, auc


def test_images_as_numpy_or_tensor_give_identical_models(digits):
    X, y, _ = semi_supervised(digits, 3, 0.1, 100, 10)
    images = X.reshape(-1, 1, 8, 8)
    params = dict(network={"kind": "conv", "channels": [4], "rep_dim": 8}, epochs=2, batch_size=32, device="cpu")
    a = EliteDetector(**params).fit(images, torch.as_tensor(y))
    b = EliteDetector(**params).fit(images.numpy().astype(np.float64), list(y))
    assert a.input_shape_ == (1, 8, 8)
    np.testing.assert_allclose(a.decision_function(images), b.decision_function(images.numpy()), rtol=1e-6)


def test_save_load_scores_identically(small_fit, tmp_path, digits):
    est, X, _ = small_fit
    path = tmp_path / "elite.pt"
    est.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["elite.pt"]  # no temporary file left
    for loaded in (EliteDetector.load(path), DeepDetector.load(path)):
        assert type(loaded) is EliteDetector and loaded.get_params() == est.get_params() | {"device": "cpu"}
        np.testing.assert_array_equal(loaded.decision_function(digits.x_test), est.decision_function(digits.x_test))
        np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
        assert loaded.threshold_ == est.threshold_ and loaded.margin_ == est.margin_


def test_load_rejects_what_save_did_not_write(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        EliteDetector.load(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_text("not a model")
    with pytest.raises(ConfigError, match="is not a model written by DeepDetector.save"):
        EliteDetector.load(tmp_path / "junk.pt")


def test_save_into_a_missing_folder_names_it(small_fit, tmp_path):
    with pytest.raises(ConfigError, match=f"cannot save to .*: the folder {tmp_path / 'nope'} does not exist"):
        small_fit[0].save(tmp_path / "nope" / "elite.pt")
    with pytest.raises(ConfigError, match=f"cannot save to {tmp_path}: it is a folder; give a file name"):
        small_fit[0].save(tmp_path)


def test_read_only_arrays_and_data_frames_are_taken_without_warnings():
    import warnings

    import pandas as pd

    from elite_exp.methods.base import as_float_tensor
    read_only = GOOD_X.copy()
    read_only.setflags(write=False)  # as pandas' copy-on-write hands out a frame's values
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x in (read_only, pd.DataFrame(GOOD_X)):
            np.testing.assert_array_equal(as_float_tensor(x).numpy(), GOOD_X)



def test_arrays_torch_cannot_take_as_they_are_are_converted():
    """Negative strides (a flipped image stack), another byte order, long double: the same values, no torch error."""
    from elite_exp.methods.base import as_float_tensor
    x = GOOD_X.astype(np.float64)
    for odd in (x[:, ::-1], x.astype(">f8"), x.astype(np.longdouble), x[::-2]):
        np.testing.assert_array_equal(as_float_tensor(odd).numpy(), np.ascontiguousarray(odd, np.float32))


def test_a_torch_device_is_a_device(small_fit):
    est, X, y = small_fit
    again = EliteDetector(**{**est.get_params(), "device": torch.device("cpu")}).fit(X, y)
    np.testing.assert_array_equal(again.decision_function(X), est.decision_function(X))


def test_deep_sad_with_the_labels_in_every_batch_needs_unlabeled_samples():
    """Its batches are drawn from the unlabeled samples: without them it trained nothing, silently."""
    from elite_exp import DeepSAD
    with pytest.raises(ConfigError, match=r"DeepSAD needs at least 2 unlabeled samples \(y=-1\) in y"):
        DeepSAD(labeled_every_batch=True, pretrain=False, epochs=1, device="cpu").fit(GOOD_X, np.r_[[0] * 6, [1] * 6])
    assert DeepSAD(pretrain=False, epochs=1, batch_size=4, device="cpu").fit(GOOD_X, np.r_[[0] * 6, [1] * 6]
                                                                             ).epoch_losses_


def test_save_is_readable_as_any_new_file_and_load_leaves_the_random_state(small_fit, tmp_path):
    est = small_fit[0]
    est.save(tmp_path / "elite.pt")
    (tmp_path / "plain").write_text("")
    assert (tmp_path / "elite.pt").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    EliteDetector.load(tmp_path / "elite.pt")
    assert torch.equal(torch.rand(3), expected)

GOOD_X = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
GOOD_Y = np.array([-1] * 10 + [0, 1])


def _nan_x():
    x = GOOD_X.copy()
    x[3, 1] = np.nan
    return x


@pytest.mark.parametrize("X, y, params, message", [
    (GOOD_X.reshape(12, 2, 2), GOOD_Y, {}, r"X has shape \(12, 2, 2\); expected \(N, D\) vectors or \(N, C, H, W\)"),
    (GOOD_X[:, :0], GOOD_Y, {}, r"X has shape \(12, 0\): no samples or no features"),
    (_nan_x(), GOOD_Y, {}, r"X contains NaN or infinite values \(in 1 of 12 samples\)"),
    (np.full((12, 4), np.inf), GOOD_Y, {}, "X contains NaN or infinite values"),
    (GOOD_X.astype(str), GOOD_Y, {}, "X has dtype <U.*; numeric features are required"),
    ([[1.0, 2.0], [3.0]], None, {}, "X is not a rectangular array"),
    (scipy.sparse.csr_matrix(GOOD_X), GOOD_Y, {}, r"X is a sparse matrix \(csr_matrix\); dense features are "
                                                 r"required: pass X.toarray\(\) \(scipy\)"),
    (torch.from_numpy(GOOD_X).to_sparse(), GOOD_Y, {}, r"X is a sparse matrix \(Tensor\); dense features"),
    (GOOD_X, GOOD_Y[:-1], {}, r"y has shape \(11,\); expected \(12,\)"),
    (GOOD_X, np.r_[GOOD_Y[:-1], 2], {}, r"y contains 2; allowed labels: -1 \(unlabeled\), 0 \(normal\), 1 \(anomaly\)"),
    (GOOD_X, np.r_[GOOD_Y[:-1], 0], {}, r"needs at least 1 labeled anomaly \(y=1\) in y; got labels \[-1, 0\]"),
    (GOOD_X, np.r_[GOOD_Y[:-2], 1, 1], {}, r"needs at least 1 labeled normal \(y=0\) in y"),
    (GOOD_X, np.r_[-1, [0] * 10, 1], {}, r"needs at least 2 unlabeled samples \(y=-1\) in y"),
    (GOOD_X, None, {}, r"EliteDetector needs y: -1 for unlabeled samples, 0 / 1 for labeled normals / anomalies"),
    (GOOD_X, GOOD_Y, {"network": "mlp"}, r"network='mlp' is not allowed; give a dict such as"),
    (GOOD_X, GOOD_Y, {"network": {"channels": [4]}}, r"network kind 'conv' needs images \(N, C, H, W\)"),
    (GOOD_X, GOOD_Y, {"contamination": 0.7}, r"contamination=0.7 is not allowed; it must lie in \(0, 0.5\]"),
    (GOOD_X, GOOD_Y, {"random_state": "a"}, "random_state='a' is not allowed; it must be an int"),
    (GOOD_X, GOOD_Y, {"score": "knn"}, "score='knn' is not allowed; allowed: svdd, ae, rot, neutral"),
    (GOOD_X, GOOD_Y, {"batch_size": 1}, "batch_size=1 is not allowed"),
    (GOOD_X, GOOD_Y, {"network": {"kind": "conv"}}, r"network kind 'conv' needs images \(N, C, H, W\)"),
    (GOOD_X, GOOD_Y, {"network": {"depth": 3}}, "network={'depth': 3} is not allowed: 'depth' is not a network "
                                                  "field; its fields: kind, channels, hidden, rep_dim, batch_norm"),
    (GOOD_X, GOOD_Y, {"network": {"hidden": [0]}}, r"hidden=\[0\] is not allowed; a network's hidden is a list of "
                                                   r"whole numbers >= 1"),
    (GOOD_X, GOOD_Y, {"network": {"hidden": [-4]}}, r"hidden=\[-4\] is not allowed"),
    (GOOD_X, GOOD_Y, {"network": {"hidden": [8.5]}}, r"hidden=\[8.5\] is not allowed"),
    (GOOD_X, GOOD_Y, {"network": {"hidden": 8}}, r"hidden=8 is not allowed"),
    (GOOD_X, GOOD_Y, {"network": {"hidden": "64"}}, r"hidden='64' is not allowed"),
    (GOOD_X, GOOD_Y, {"network": {"hidden": np.array([4, 0])}}, r"hidden=\[4, 0\] is not allowed"),
    (GOOD_X, GOOD_Y, {"network": {"rep_dim": 2.5}}, r"rep_dim=2.5 is not allowed; the embedding needs a whole number"),
    (GOOD_X, GOOD_Y, {"network": {"batch_norm": "no"}}, r"batch_norm='no' is not allowed; it must be true or false"),
    (GOOD_X, GOOD_Y, {"network": {"kind": "rnn"}}, r"kind='rnn' is not allowed; a network's kind is conv or mlp"),
    (GOOD_X, GOOD_Y, {"network": {"kind": "conv", "channels": []}}, r"channels=\[\] is not allowed; a conv network"),
    (GOOD_X, GOOD_Y, {"squared": "no"}, "squared='no' is not allowed; it must be true or false"),
    (GOOD_X, GOOD_Y, {"pretrain": "yes"}, "pretrain='yes' is not allowed; it must be true or false"),
    (GOOD_X, GOOD_Y, {"lr": None}, "lr=None is not allowed; it must be a number"),
    (GOOD_X, GOOD_Y, {"loe_weight": None}, "loe_weight=None is not allowed; it must be a number"),
    (GOOD_X, GOOD_Y, {"eta_m": True}, "eta_m=True is not allowed; it must be a number"),
    (GOOD_X, GOOD_Y, {"batch_size": 2.5}, "batch_size=2.5 is not allowed; it must be an int"),
    (GOOD_X, GOOD_Y, {"device": None}, r"device=None is not allowed; allowed: auto, cpu, cuda, cuda:N \(or a torch"),
    (GOOD_X.astype(np.float64) * 1e39, GOOD_Y, {},
     r"X holds values up to .*e\+39, beyond torch.float32's largest .*; scale the features"),
    (GOOD_X, np.append(GOOD_Y[:-1].astype(object), None), {}, r"y contains None; allowed labels: -1 \(unlabeled\)"),
    (GOOD_X, np.append(GOOD_Y[:-1].astype(str), "x"), {}, "y holds a label that is not a number"),
])
def test_bad_input_is_one_clear_config_error(X, y, params, message):
    est = EliteDetector(**{"epochs": 1, "device": "cpu", **params})
    with pytest.raises(ConfigError, match=message) as exc:
        est.fit(X, y)
    assert "\n" not in str(exc.value)
    assert not hasattr(est, "module_")


def test_scoring_other_shapes_is_rejected(small_fit):
    est, _, _ = small_fit
    with pytest.raises(ConfigError, match=r"X has samples of shape \(63,\); the model was fitted on \(64,\)"):
        est.decision_function(np.zeros((3, 63)))


def test_every_estimator_checks_the_type_of_its_flags_and_numbers():
    """Every bool, int and float hyper-parameter of every estimator refuses a value of another type before
    training (a string flag would be truthy; None a TypeError deep inside)."""
    import inspect

    from elite_exp import methods

    estimators = [getattr(methods, name) for name in methods.__all__
                  if inspect.isclass(getattr(methods, name)) and issubclass(getattr(methods, name), DeepDetector)]
    assert len(estimators) >= 9  # DeepDetector itself has no hyper-parameters
    for cls in estimators:
        for name, param in inspect.signature(cls.__init__).parameters.items():
            if not isinstance(param.default, bool | int | float):
                continue
            bad = "yes" if isinstance(param.default, bool) else None
            with pytest.raises(ConfigError, match=f"^{name}={bad!r} is not allowed; it must be "):
                cls(**{name: bad, "device": "cpu"}).fit(GOOD_X, GOOD_Y)
