import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from elite_exp.data import load_dataset
from elite_exp.errors import ConfigError


def test_digits_offline(digits):
    assert digits.x_train.shape[1:] == (64,) and digits.x_train.dtype == torch.float32
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert 0.0 <= float(digits.x_train.min()) and float(digits.x_train.max()) <= 1.0
    assert set(np.unique(digits.y_test)) == set(range(10))


def test_mnist_from_the_data_folder(mnist):
    assert mnist.x_train.shape == (60000, 1, 28, 28) and mnist.x_test.shape == (10000, 1, 28, 28)
    assert float(mnist.x_train.max()) == 1.0 and float(mnist.x_train.min()) == 0.0
    assert np.bincount(mnist.y_test).tolist()[:2] == [980, 1135]


def test_missing_data_names_the_folder(tmp_path):
    with pytest.raises(ConfigError, match=f"searched {tmp_path}/MNIST/raw\\); set data.root or ELITE_DATA_DIR to "
                                          "the folder that holds it, or data.download=true to fetch it when online$"):
        load_dataset("mnist", tmp_path, download=False)
    with pytest.raises(ConfigError, match="CIFAR10"):
        load_dataset("cifar10", tmp_path, download=False)


@pytest.mark.parametrize("name,module", [("mnist", "mnist"), ("fmnist", "mnist"), ("cifar10", "cifar")])
def test_a_failed_download_leaves_no_folder_behind(tmp_path, monkeypatch, name, module):
    """A download that fails (offline) at a path that does not exist, e.g. a mistyped ELITE_DATA_DIR, is one error
    line and removes the folders it created; a folder that existed stays, and so does one the download wrote to."""
    import urllib.error

    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")
    monkeypatch.setattr(getattr(torchvision.datasets, module), "download_and_extract_archive", offline)
    root = tmp_path / "typo" / "data"
    with pytest.raises(ConfigError, match="download failed"):
        load_dataset(name, root, download=True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="download failed"):
        load_dataset(name, tmp_path, download=True)
    assert tmp_path.is_dir()
    kept = tmp_path / "kept"
    (kept / "MNIST" / "raw").mkdir(parents=True)
    (kept / "MNIST" / "raw" / "partial.gz").write_bytes(b"")
    with pytest.raises(ConfigError, match="download failed"):
        load_dataset(name, kept, download=True)
    assert (kept / "MNIST" / "raw" / "partial.gz").is_file()


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="data.name='svhn' is not a data set loader; allowed: .*cifar10, .*digits"):
        load_dataset("svhn")
    for size in (0, -5):
        with pytest.raises(ConfigError, match=f"data.image_size={size} is not allowed; it must be >= 1"):
            load_dataset("digits", image_size=size)


def _write_cifar_like(root, per_class=3):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("airplane", "bird", "cat"):
            folder = root / "CIFAR10" / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")


def test_cifar_image_folder_layout_is_decoded_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ELITE_CACHE_DIR", str(tmp_path / "cache"))
    _write_cifar_like(tmp_path / "data")
    ds = load_dataset("cifar10", tmp_path / "data", download=False)
    assert ds.x_train.shape == (9, 3, 32, 32) and ds.class_names == ("airplane", "bird", "cat")
    assert ds.y_train.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # standardised per channel with train statistics
    assert torch.allclose(ds.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2
    again = load_dataset("cifar10", tmp_path / "data", download=False)
    assert torch.equal(again.x_test, ds.x_test)


def test_image_size_resizes(tmp_path, monkeypatch):
    monkeypatch.setenv("ELITE_CACHE_DIR", str(tmp_path / "cache"))
    _write_cifar_like(tmp_path / "data", per_class=1)
    ds = load_dataset("cifar10", tmp_path / "data", download=False, image_size=16)
    assert ds.x_train.shape == (3, 3, 16, 16)


def test_truncated_mnist_file_is_named_as_corrupt(tmp_path, mnist):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    source = Path(os.environ["ELITE_DATA_DIR"]) / "MNIST" / "raw"
    for f in source.iterdir():
        (raw / f.name).write_bytes(f.read_bytes())
    cut = raw / "train-images-idx3-ubyte"
    cut.write_bytes(cut.read_bytes()[:1_000_000])
    with pytest.raises(ConfigError, match=r"train-images-idx3-ubyte is corrupt or truncated \(1000000 bytes where "
                                          r"its header says 47040016\)"):
        load_dataset("mnist", tmp_path, download=False)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"not an idx file")
    cut.write_bytes((source / cut.name).read_bytes())
    with pytest.raises(ConfigError, match="t10k-labels-idx1-ubyte is corrupt or truncated .no valid IDX header"):
        load_dataset("mnist", tmp_path, download=False)
