"""Own data: data=folder (image folders), data=csv (tables), data=breast_cancer, through loaders and the runner."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_digits

from elite_exp.config import CONF_DIR, register
from elite_exp.data import class_index, load_dataset
from elite_exp.data import datasets as datasets_module
from elite_exp.errors import ConfigError
from elite_exp.runner import _register_resolvers, execute
from tests.conftest import REPO


def write_digit_pngs(folder, classes=(0, 1, 2), per_class=40):
    """sklearn digits as 8x8 grey PNGs in ``folder/<name>/``; returns the folder."""
    bunch = load_digits()
    names = {0: "zero", 1: "one", 2: "two", 3: "three"}
    for k in classes:
        (folder / names[k]).mkdir(parents=True)
        for i, img in enumerate(bunch.images[bunch.target == k][:per_class]):
            Image.fromarray((img * 255 / 16).astype(np.uint8)).save(folder / names[k] / f"{i:03d}.png")
    return folder


def breast_cancer_frame():
    bunch = load_breast_cancer(as_frame=True)
    return bunch.data.assign(diagnosis=bunch.target_names[bunch.target.to_numpy()])


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ELITE_CACHE_DIR", str(tmp_path / "cache"))


# -- loaders ------------------------------------------------------------------------------------

def test_breast_cancer_is_split_and_standardised_with_train_statistics():
    ds = load_dataset("breast_cancer")
    assert ds.class_names == ("benign", "malignant") and ds.input_shape == (30,)
    assert len(ds.y_train) == 379 and len(ds.y_test) == 190
    assert abs((ds.y_train == 1).mean() - (ds.y_test == 1).mean()) < 0.01  # stratified
    torch.testing.assert_close(ds.x_train.mean(0), torch.zeros(30), atol=1e-5, rtol=0)
    torch.testing.assert_close(ds.x_train.std(0, unbiased=False), torch.ones(30), atol=1e-4, rtol=0)
    assert ds.x_test.mean(0).abs().max() > 1e-3  # test rows are not standardised on their own


def test_csv_single_file_gets_the_same_split_as_the_bundled_table(tmp_path):
    breast_cancer_frame().to_csv(tmp_path / "t.csv", index=False)
    ds = load_dataset("csv", path=str(tmp_path / "t.csv"), label_column="diagnosis")
    ref = load_dataset("breast_cancer")
    assert ds.class_names == ref.class_names
    np.testing.assert_array_equal(ds.y_train, ref.y_train)
    torch.testing.assert_close(ds.x_test, ref.x_test)
    small = load_dataset("csv", path=str(tmp_path / "t.csv"), label_column="diagnosis", test_fraction=0.5)
    assert len(small.y_test) == 285


def test_csv_with_test_file_feature_columns_and_numeric_labels(tmp_path):
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"id": np.arange(40), "a": rng.normal(5, 2, 40), "b": rng.normal(size=40),
                          "cls": np.repeat([3, 7], 20)})
    test = train.iloc[:10].assign(cls=[3, 7, 9, 3, 7, 3, 7, 3, 7, 3])
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    ds = load_dataset("csv", path=str(tmp_path / "train.csv"), test_path=str(tmp_path / "test.csv"),
                      label_column="cls", feature_columns=["a", "b"])
    assert ds.class_names == ("3", "7", "9") and ds.input_shape == (2,) and len(ds.y_train) == 40
    np.testing.assert_array_equal(ds.y_test[:3], [0, 1, 2])
    expected = (test[["a", "b"]] - train[["a", "b"]].mean()) / train[["a", "b"]].std(ddof=0)
    np.testing.assert_allclose(ds.x_test.numpy(), expected.to_numpy(), rtol=1e-5)
    assert class_index(7, ds.class_names) == 1 and class_index("9", ds.class_names) == 2
    # numeric class names: a number is always a name, so 0 (a valid position) is not silently the index
    with pytest.raises(ConfigError, match=r"normal_class=0 is not a class of this data set; its class names are "
                                          r"numbers \(3, 7, 9\)"):
        class_index(0, ds.class_names)


@pytest.mark.parametrize("value, expected", [(1, 0), (1.0, 0), ("1", 0), ("1.0", 0), (2, 1), ("2.00", 1)])
def test_numeric_class_names_match_by_value(value, expected):
    assert class_index(value, ("1.0", "2.0")) == expected


@pytest.mark.parametrize("value, names, message", [
    (0, ("1.0", "2.0"), "its class names are numbers"),
    (3, ("1.0", "2.0"), "its class names are numbers"),
    (1, ("1", "1.0"), None),  # the exact text wins
    (1.0, ("1", "1.00"), "equals several class names"),
    (2, ("good", "bad"), r"allowed: a class name \(good, bad\) or an index 0..1"),
    (1.5, ("good", "bad"), "is not a class of this data set"),
])
def test_ambiguous_or_unknown_classes_fail_with_one_line(value, names, message):
    if message is None:
        assert class_index(value, names) == 0
        return
    with pytest.raises(ConfigError, match=message):
        class_index(value, names)


def test_csv_with_float_labels_runs_the_class_named_by_value(tmp_path):
    frame = breast_cancer_frame()
    frame["diagnosis"] = np.where(frame["diagnosis"] == "benign", 1.0, 2.0)
    path = _write(tmp_path / "float_labels.csv", frame)
    rec = run(tmp_path, "data=csv", f"data.path={path}", "data.label_column=diagnosis", "normal_class=1",
              "n_train=150", "n_labels=10", "train.epochs=1", "train.batch_size=32")
    assert rec["normal_class_name"] == "1.0"


def test_sixteen_bit_images_keep_their_contrast(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "deep" / cls).mkdir(parents=True)
        (tmp_path / "flat" / cls).mkdir(parents=True)
        for i in range(6):
            twelve_bit = (rng.random((8, 8)) * 4095).astype(np.uint16)  # a 12-bit sensor in a 16-bit PNG
            Image.fromarray(twelve_bit).save(tmp_path / "deep" / cls / f"{i}.png")
            Image.fromarray((twelve_bit >> 4).astype(np.uint8)).save(tmp_path / "flat" / cls / f"{i}.png")
    deep = load_dataset("folder", path=str(tmp_path / "deep"), test_fraction=0.5)
    flat = load_dataset("folder", path=str(tmp_path / "flat"), test_fraction=0.5)
    x = torch.cat([deep.x_train, deep.x_test])
    assert (x == 1.0).float().mean() < 0.01  # was 91% clipped to 1.0
    assert 0 < x.max() <= 4095 / 65535 + 1e-6  # scaled by the bit depth
    # same pictures, same contrast: the 16-bit decode is the 8-bit one rescaled (up to the 4 dropped bits)
    x8 = torch.cat([flat.x_train, flat.x_test])
    assert np.corrcoef(x.flatten(), x8.flatten())[0, 1] > 0.999


@pytest.mark.parametrize("mode, dtype, scale", [("I", np.int32, 2.0 ** 31 - 1), ("F", np.float32, 1.0)])
def test_deep_integer_and_float_images_are_scaled_by_their_mode(tmp_path, mode, dtype, scale):
    from PIL import Image

    values = np.arange(64, dtype=np.float64).reshape(8, 8) / 64
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            img = Image.fromarray((values * (1 << 20 if mode == "I" else 1)).astype(dtype))
            assert img.mode == mode
            img.save(tmp_path / cls / f"{i}.tif")
    ds = load_dataset("folder", path=str(tmp_path), test_fraction=0.5)
    expected = values * (1 << 20 if mode == "I" else 1) / scale
    np.testing.assert_allclose(ds.x_train[0, 0].numpy(), expected, rtol=1e-5)


def write_pgm16(path, values):
    """A binary 16-bit PGM (P5, maxval 65535, big-endian samples)."""
    h, w = values.shape
    path.write_bytes(f"P5 {w} {h} 65535\n".encode() + values.astype(">u2").tobytes())


def test_sixteen_bit_pgm_images_are_scaled_by_65535(tmp_path):
    values = np.arange(64, dtype=np.float64).reshape(8, 8) * 1000  # up to 63,000 of 65,535
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            write_pgm16(tmp_path / cls / f"{i}.pgm", values)
    assert Image.open(tmp_path / "a" / "0.pgm").mode == "I"  # what Pillow makes of them: 32-bit integers
    ds = load_dataset("folder", path=str(tmp_path), test_fraction=0.5)
    np.testing.assert_allclose(ds.x_train[0, 0].numpy(), values / 65535, rtol=1e-5)  # was / (2^31 - 1): black


def test_a_truncated_image_fails_with_one_line_naming_it(tmp_path):
    root = write_digit_pngs(tmp_path / "imgs", classes=(0, 1), per_class=4)
    png = root / "one" / "cut.png"
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(png)
    png.write_bytes(png.read_bytes()[:2000])  # the header opens; the pixels are cut off
    with Image.open(png) as img, pytest.raises(OSError):  # Pillow finds it only when it reads the pixels
        img.load()
    with pytest.raises(ConfigError, match=r"could not read image .*cut.png: ") as exc:
        load_dataset("folder", path=str(root))
    assert "\n" not in str(exc.value)


def test_a_damaged_cache_file_is_decoded_again(tmp_path):
    root = write_digit_pngs(tmp_path / "imgs", classes=(0, 1), per_class=4)
    first = load_dataset("folder", path=str(root), test_fraction=0.5)
    [cache] = (tmp_path / "cache").glob("imagefolder-*.pt")
    cache.write_bytes(b"not a torch file")
    again = load_dataset("folder", path=str(root), test_fraction=0.5)
    torch.testing.assert_close(again.x_train, first.x_train)
    assert cache.stat().st_size > 100 and not list((tmp_path / "cache").glob("*.tmp*"))


def test_a_file_rewritten_with_its_old_size_and_time_is_decoded_anew(tmp_path):
    import os

    root = write_digit_pngs(tmp_path / "imgs", classes=(0, 1), per_class=4)
    first = load_dataset("folder", path=str(root), test_fraction=0.5)
    bmp = [root / c / f"{i}.bmp" for c in ("one", "zero") for i in range(2)]
    for f in bmp:  # fixed-size files: a new picture keeps the size; the old time is put back
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(f)
    before = load_dataset("folder", path=str(root), test_fraction=0.5)
    stat = bmp[0].stat()
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(bmp[0])
    os.utime(bmp[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert bmp[0].stat().st_size == stat.st_size
    after = load_dataset("folder", path=str(root), test_fraction=0.5)
    x_before, x_after = (torch.cat([d.x_train, d.x_test]) for d in (before, after))
    assert len(x_before) == len(first.x_train) + len(first.x_test) + 4
    assert float(x_after.max()) == 1.0 and not torch.equal(x_before, x_after)


def test_cifar10_image_folders_label_the_test_split_by_class_name(tmp_path):
    rng = np.random.default_rng(0)
    for split, classes in (("train", ("airplane", "automobile", "bird")), ("test", ("automobile", "bird"))):
        for c in classes:
            (tmp_path / "CIFAR10" / split / c).mkdir(parents=True)
            for i in range(3):
                Image.fromarray((rng.random((4, 4, 3)) * 255).astype(np.uint8)).save(
                    tmp_path / "CIFAR10" / split / c / f"{i}.png")
    ds = load_dataset("cifar10", root=str(tmp_path), download=False)
    assert ds.class_names == ("airplane", "automobile", "bird")
    assert ds.y_test.tolist() == [1, 1, 1, 2, 2, 2]  # automobile, bird; not airplane, automobile


def test_folder_single_layout_is_split_resized_and_decoded_once(tmp_path, monkeypatch):
    root = write_digit_pngs(tmp_path / "imgs")
    ds = load_dataset("folder", image_size=16, path=str(root))
    assert ds.class_names == ("one", "two", "zero") and ds.x_train.shape[1:] == (1, 16, 16)
    assert len(ds.y_train) + len(ds.y_test) == 120 and len(ds.y_test) == 40
    assert 0.0 <= float(ds.x_train.min()) and float(ds.x_train.max()) <= 1.0
    assert class_index("zero", ds.class_names) == 2

    def no_decoding(*args):
        raise AssertionError("images decoded twice")

    monkeypatch.setattr(datasets_module, "_decode", no_decoding)
    again = load_dataset("folder", image_size=16, path=str(root))
    torch.testing.assert_close(again.x_train, ds.x_train)
    (root / "zero" / "extra.png").write_bytes((root / "zero" / "000.png").read_bytes())
    with pytest.raises(AssertionError, match="decoded twice"):  # a changed folder is decoded anew
        load_dataset("folder", image_size=16, path=str(root))


def test_a_changed_folder_replaces_its_cache_file(tmp_path, monkeypatch):
    # one decode kept per folder, size and mode: a folder changed (or copied, touched) again and again does not
    # fill the cache with its old decodes; a decode read within a day is kept (machines sharing a cache folder)
    import os
    import time

    root = write_digit_pngs(tmp_path / "imgs", classes=(0, 1), per_class=10)

    def caches():
        return sorted((tmp_path / "cache").glob("imagefolder-*.pt"))

    def add_image(n):
        (root / "zero" / f"extra{n}.png").write_bytes((root / "zero" / "000.png").read_bytes())

    load_dataset("folder", image_size=8, path=str(root))
    load_dataset("folder", image_size=16, path=str(root))  # another size: a decode of its own
    assert len(caches()) == 2
    for n in range(2):
        for f in caches():  # not read for two days
            os.utime(f, (time.time() - 2 * 86_400,) * 2)
        add_image(n)
        ds = load_dataset("folder", image_size=8, path=str(root))
        assert len(ds.y_train) + len(ds.y_test) == 21 + n
        assert len(caches()) == 2
    add_image(2)
    load_dataset("folder", image_size=8, path=str(root))
    assert len(caches()) == 3  # the decode before the change was read lately: kept

    def no_decoding(*args):
        raise AssertionError("images decoded twice")

    monkeypatch.setattr(datasets_module, "_decode", no_decoding)
    again = load_dataset("folder", image_size=8, path=str(root))  # read from the cache
    assert len(again.y_train) + len(again.y_test) == 23


def test_decodes_in_the_one_key_naming_are_deleted_when_stale(tmp_path):
    # decodes named imagefolder-<16 hex>.pt (before the folder key was split off) are read by no version now: a
    # new decode deletes those not read for a day; a recent one, and files of other names, are left alone
    import os
    import time

    cache = tmp_path / "cache"
    cache.mkdir()
    old, recent = cache / "imagefolder-0123456789abcdef.pt", cache / "imagefolder-fedcba9876543210.pt"
    other = cache / "imagefolder-notes.pt"
    for f in (old, recent, other):
        f.write_bytes(b"x")
    for f in (old, other):
        os.utime(f, (time.time() - 2 * 86_400,) * 2)
    load_dataset("folder", image_size=8, path=str(write_digit_pngs(tmp_path / "imgs", classes=(0, 1), per_class=10)))
    assert not old.exists() and recent.exists() and other.exists()
    assert len(list(cache.glob("imagefolder-*-*.pt"))) == 1


def test_images_in_sub_folders_of_a_class_folder_belong_to_that_class(tmp_path):
    root = write_digit_pngs(tmp_path / "imgs", classes=(0, 1), per_class=30)
    (root / "one" / "more").mkdir()
    for f in sorted((root / "one").glob("*.png"))[:10]:
        f.rename(root / "one" / "more" / f.name)
    ds = load_dataset("folder", path=str(root))
    assert ds.class_names == ("one", "zero")
    assert len(ds.y_train) + len(ds.y_test) == 60 and (np.concatenate([ds.y_train, ds.y_test]) == 0).sum() == 30


def test_folder_train_test_layout_keeps_the_given_splits(tmp_path):
    write_digit_pngs(tmp_path / "d" / "train", classes=(0, 1, 2), per_class=20)
    write_digit_pngs(tmp_path / "d" / "test", classes=(0, 3), per_class=5)
    ds = load_dataset("folder", image_size=8, path=str(tmp_path / "d"))
    assert ds.class_names == ("one", "three", "two", "zero")
    assert len(ds.y_train) == 60 and len(ds.y_test) == 10
    assert sorted(set(ds.y_train.tolist())) == [0, 2, 3] and sorted(set(ds.y_test.tolist())) == [1, 3]


def _write(path, frame):
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("make, options, message", [
    (lambda p: _write(p, breast_cancer_frame()), {"label_column": "label"},
     "has no label column 'label'; its columns: mean radius, "),
    (lambda p: _write(p, breast_cancer_frame().assign(site="x")), {"label_column": "diagnosis"},
     "feature column\\(s\\) 'site' are not numeric"),
    (lambda p: _write(p, breast_cancer_frame().assign(**{"mean area": lambda f: f["mean area"].where(f.index != 5)})),
     {"label_column": "diagnosis"}, "1 row\\(s\\) hold NaN or infinite values \\(column\\(s\\) 'mean area'\\)"),
    (lambda p: _write(p, breast_cancer_frame()), {"label_column": "diagnosis", "feature_columns": ["nope"]},
     "has no column 'nope'"),
    (lambda p: _write(p, breast_cancer_frame().assign(diagnosis=lambda f: (f.diagnosis == "malignant").astype(int))),
     {"label_column": "diagnosis", "feature_columns": ["diagnosis", "mean radius"]},
     "data.feature_columns lists the label column 'diagnosis' \\(data.label_column\\): the label cannot be a"),
    (lambda p: _write(p, breast_cancer_frame().iloc[:0]), {"label_column": "diagnosis"}, "holds no rows"),
    (lambda p: breast_cancer_frame().sort_values("diagnosis").reset_index(drop=True).to_csv(p) or str(p),
     {"label_column": "diagnosis"}, r"column 'Unnamed: 0' has no header, as a row index saved by pandas' to_csv "
     r"\(without index=False\) has"),  # sorted by class: the index would leak the label
    (lambda p: breast_cancer_frame().sort_values("diagnosis").iloc[::3].to_csv(p) or str(p),  # an index of a subset
     {"label_column": "diagnosis"}, r"column 'Unnamed: 0' has no header"),
    (lambda p: breast_cancer_frame().to_csv(p, sep=";", index=False) or str(p), {"label_column": "diagnosis"},
     r"has no label column 'diagnosis'; its columns: mean radius;.* \(one column: the file must be comma-separated\)"),
    (lambda p: str(p), {}, "CSV file .* does not exist"),
    (lambda p: _write(p, breast_cancer_frame()), {"label_column": "diagnosis", "test_fraction": 1.5},
     "test_fraction=1.5 is not allowed"),
    (lambda p: _write(p, breast_cancer_frame().sort_values("diagnosis").iloc[356:]), {"label_column": "diagnosis"},
     "class 'benign' has a single sample; a stratified train/test split needs at least 2 per class"),
])
def test_bad_tables_fail_with_one_clear_line(tmp_path, make, options, message):
    path = make(tmp_path / "t.csv")
    with pytest.raises(ConfigError, match=message) as exc:
        load_dataset("csv", path=path, **options)
    assert "\n" not in str(exc.value)


def test_bad_folders_and_options_fail_with_one_clear_line(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "cat" / "notes.txt").write_text("no image")
    cases = [
        (dict(name="folder", path=str(tmp_path / "empty")), "holds no images"),
        (dict(name="folder", path=str(tmp_path / "absent")), "does not exist"),
        (dict(name="folder"), "data=folder needs data.path="),
        (dict(name="csv"), "data=csv needs data.path="),
        (dict(name="mnist", label_column="y"), "data.label_column is not used by data=mnist"),
        (dict(name="breast_cancer", image_size=8), "data.image_size is not used by data=breast_cancer"),
        (dict(name="digits", image_size=16), "data.image_size is not used by data=digits"),  # was ignored
    ]
    (tmp_path / "broken" / "cat").mkdir(parents=True)
    (tmp_path / "broken" / "cat" / "a.png").write_text("not a png")
    cases.append((dict(name="folder", path=str(tmp_path / "broken")), "could not read image .*a.png"))
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            load_dataset(**kwargs)
    with pytest.raises(ConfigError, match=r"normal_class='dog' is not a class of this data set; allowed: a class "
                                          r"name \(benign, malignant\) or an index 0..1"):
        class_index("dog", ("benign", "malignant"))


def test_label_columns_of_two_kinds_fail_with_one_line(tmp_path):
    frame = breast_cancer_frame().assign(diagnosis=lambda f: (f.diagnosis == "malignant").astype(int))
    train, test = _write(tmp_path / "train.csv", frame.iloc[::2]), _write(tmp_path / "test.csv", breast_cancer_frame())
    with pytest.raises(ConfigError, match=r"label column 'diagnosis' mixes numbers and text \(int64 in CSV file "
                                          r".*train.csv, str in the test table\): class labels must be all numbers"):
        load_dataset("csv", path=train, test_path=test, label_column="diagnosis")


# -- through the runner -----------------------------------------------------------------------------

def run(tmp_path, *overrides):
    register()
    _register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"out_dir={tmp_path / 'out'}", "progress=false", "device=cpu",
                                           *overrides])
    return execute(cfg, tmp_path / "out" / "run", multirun=False)


def test_runner_on_a_csv_table(tmp_path):
    path = _write(tmp_path / "cancer.csv", breast_cancer_frame())
    rec = run(tmp_path, "data=csv", f"data.path={path}", "data.label_column=diagnosis", "normal_class=benign",
              "n_train=150", "n_labels=10", "train.epochs=5", "train.batch_size=32")
    assert rec["status"] == "ok" and rec["normal_class_name"] == "benign" and rec["n_test"] == 190
    assert rec["test_auc"] > 0.5
    assert json.loads((tmp_path / "out" / "run" / "result.json").read_text())["data"] == "csv"


def test_runner_on_an_image_folder(tmp_path):
    root = write_digit_pngs(tmp_path / "imgs", per_class=60)
    rec = run(tmp_path, "data=folder", f"data.path={root}", "normal_class=zero", "data.image_size=8",
              "data.network.channels=[4]", "n_train=40", "n_labels=4", "train.epochs=3", "train.batch_size=20")
    assert rec["status"] == "ok" and rec["normal_class_name"] == "zero" and rec["n_test"] == 60
    assert rec["config"]["data"]["image_size"] == 8


@pytest.mark.parametrize("overrides, message", [
    (["data=csv"], "data=csv needs data.path="),
    (["data=csv", "data.path=CSV", "data.label_column=target"], "has no label column 'target'"),
    (["data=folder", "data.path=EMPTY"], "holds no images"),
    (["data=breast_cancer", "normal_class=dog"], "normal_class='dog' is not a class of this data set"),
    (["data=breast_cancer", "normal_class=1.5"], "normal_class=1.5 is not a class of this data set"),
    (["data=csv", "data.path=CSV", "data.test_path=MALIGNANT", "data.label_column=diagnosis", "normal_class=benign",
      "n_train=150", "n_labels=10"],
     "the test split of csv holds no samples of the normal class benign (100 test samples): ROC AUC needs normals "
     "and anomalies"),
    (["data=csv", "data.path=CSV", "data.test_path=MALIGNANT", "data.label_column=diagnosis",
      "data.test_fraction=0.5"],
     "data.test_fraction=0.5 is not allowed: a test table (data.test_path) gives the test split; leave "
     "data.test_fraction unset"),
    (["data=folder", "data.path=CSV"], "is a file, not a folder"),
    (["data=folder", "data.path=TRAINONLY"], "has a train/ sub-folder but no test/"),
])
def test_runner_bad_own_data_exits_2_with_one_line_and_no_record(tmp_path, capsys, overrides, message):
    (tmp_path / "empty" / "x").mkdir(parents=True)
    csv = _write(tmp_path / "t.csv", breast_cancer_frame())
    frame = breast_cancer_frame()
    malignant = _write(tmp_path / "m.csv", frame[frame.diagnosis == "malignant"].iloc[:100])
    (tmp_path / "trainonly" / "train" / "good").mkdir(parents=True)
    overrides = [o.replace("CSV", csv).replace("EMPTY", str(tmp_path / "empty")).replace("MALIGNANT", malignant)
                 .replace("TRAINONLY", str(tmp_path / "trainonly")) for o in overrides]
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, *overrides)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not list((tmp_path / "out").rglob("result.json"))


def test_a_data_file_added_with_config_dir_names_its_data_set_and_sets_its_defaults(tmp_path):
    """A user's data file (``--config-dir``) is a data set of its own: folders, records and tables name it by its
    option, its own values (and those of the files its defaults list names) are its defaults (not in the
    method's name; its n_labels is Fig. 3's), and a multirun beside the built-in breast_cancer keeps them
    apart. A model file of one's own is no data set: its changes stay in the method's name."""
    table = _write(tmp_path / "cancer.csv", breast_cancer_frame())
    conf = tmp_path / "conf"
    (conf / "data").mkdir(parents=True)
    (conf / "model").mkdir()
    (conf / "data" / "cancer.yaml").write_text(
        "# @package _global_\n"
        f"data: {{name: csv, path: {table}, label_column: diagnosis,\n"
        "       network: {kind: mlp, hidden: [16], rep_dim: 8}}\n"
        "n_train: 150\nn_labels: 8\ntrain: {epochs: 3, batch_size: 32, lr: 0.002}\n")
    # a group-package file that takes the built-in breast_cancer's values and changes one
    (conf / "data" / "bc8.yaml").write_text("defaults: [breast_cancer, _self_]\nn_classes: 3\n")
    (conf / "model" / "sq.yaml").write_text("name: svdd\nsquared: true\n")
    out = tmp_path / "out"
    common = ["normal_class=benign", "train.epochs=3", "n_train=150", "n_labels=8", f"out_dir={out}",
              "progress=false", "plots=false", "threads=1"]
    for args in (["-m", "data=cancer,breast_cancer", "train.weight_decay=0.001"], ["data=bc8"],
                 ["data=breast_cancer", "model=sq"]):
        done = subprocess.run([sys.executable, "-m", "elite_exp", "--config-dir", str(conf), *args, *common],
                              cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    records = {(r["data"], r["method"]): r for r in map(json.loads, map(Path.read_text, out.rglob("result.json")))}
    assert set(records) == {("cancer", "elite_svdd+train.weight_decay=0.001"), ("bc8", "elite_svdd"),
                            ("breast_cancer", "elite_svdd+train.weight_decay=0.001"),
                            ("breast_cancer", "elite_svdd+model.squared=true")}
    mine = records["cancer", "elite_svdd+train.weight_decay=0.001"]
    assert mine["run_dir"].startswith(str(out / "cancer" / "elite_svdd+train.weight_decay=0.001"))
    assert mine["n_labels_default"] == 8 and mine["config"]["data"]["name"] == "csv"
    assert records["breast_cancer", "elite_svdd+train.weight_decay=0.001"]["n_labels_default"] == 10
    assert records["bc8", "elite_svdd"]["n_labels_default"] == 10

    report = subprocess.run([sys.executable, "-m", "elite_exp.report", str(out), "--out", str(tmp_path / "rep"),
                             "--only", "fig3"], cwd=REPO, capture_output=True, text=True)
    assert report.returncode == 0, report.stderr[-2000:]
    fig3 = pd.read_csv(tmp_path / "rep" / "fig3.csv")
    assert set(fig3["data"]) == {"cancer"}  # the others ran with 8 labels, not their default 10
