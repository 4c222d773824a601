"""Benchmark data sets, decoded once into in-memory float tensors.

Every loader returns an :class:`ArrayDataset` whose ``x_*`` tensors are ready for the
networks: images as ``(N, C, H, W)`` float32, vectors as ``(N, D)`` float32.
Pre-processing (see README): MNIST / Fashion-MNIST scaled to [0, 1]; CIFAR-10 scaled to
[0, 1] then normalised per channel with the train split's mean and std; digits scaled
to [0, 1]; tabular data standardised with train-split statistics.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from elite_exp.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArrayDataset:
    """A train and a test split held in memory."""

    name: str
    x_train: torch.Tensor
    y_train: np.ndarray
    x_test: torch.Tensor
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def data_root(root: str | os.PathLike | None) -> Path:
    """The data folder: ``root`` if given, else ``$ELITE_DATA_DIR``, else ``./data``."""
    if root:
        return Path(root).expanduser()
    return Path(os.environ.get("ELITE_DATA_DIR", "data")).expanduser()


def _missing(name: str, searched: list[Path]) -> ConfigError:
    where = ", ".join(str(p) for p in searched)
    return ConfigError(
        f"data set {name!r} not found (searched {where}); set data.root or ELITE_DATA_DIR "
        "to the folder that holds it, or allow data.download=true when online"
    )


def _resize(x: torch.Tensor, image_size: int | None) -> torch.Tensor:
    if image_size is None or x.shape[-1] == image_size:
        return x
    return F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)


def _load_mnist_like(cls_name: str, root: Path, download: bool, image_size: int | None) -> ArrayDataset:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    try:
        train = cls(root=str(root), train=True, download=download)
        test = cls(root=str(root), train=False, download=download)
    except RuntimeError as err:  # torchvision: "Dataset not found. You can use download=True ..."
        raise _missing(cls_name, [root / cls_name / "raw"]) from err
    except OSError as err:  # download attempted without a network
        raise ConfigError(f"could not download {cls_name} into {root}: {err}") from err

    def prep(ds):
        x = ds.data.float().div_(255.0).unsqueeze(1)
        return _resize(x, image_size), ds.targets.numpy().astype(np.int64)

    x_tr, y_tr = prep(train)
    x_te, y_te = prep(test)
    return ArrayDataset(cls_name.lower(), x_tr, y_tr, x_te, y_te, tuple(train.classes))


def load_mnist(root: Path, download: bool = True, image_size: int | None = None) -> ArrayDataset:
    ds = _load_mnist_like("MNIST", root, download, image_size)
    return ArrayDataset("mnist", ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.class_names)


def load_fmnist(root: Path, download: bool = True, image_size: int | None = None) -> ArrayDataset:
    ds = _load_mnist_like("FashionMNIST", root, download, image_size)
    return ArrayDataset("fmnist", ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.class_names)


def read_image_folder(folder: Path, image_size: int | None = None) -> tuple[torch.Tensor, np.ndarray, tuple[str, ...]]:
    """Decode ``folder/<class>/*`` into a uint8 tensor ``(N, C, H, W)``, labels and class names.

    Classes are the sub-folders in sorted order (as ``torchvision.datasets.ImageFolder``).
    Images are converted to the mode of the first image (grey or RGB) and, when
    ``image_size`` is given or sizes differ, resized to a square ``image_size``.
    """
    from PIL import Image

    if not folder.is_dir():
        raise ConfigError(f"image folder {folder} does not exist")
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    files = [(f, k) for k, c in enumerate(classes) for f in sorted((folder / c).iterdir()) if f.is_file()]
    if not files:
        raise ConfigError(f"image folder {folder} holds no images (expected {folder}/<class>/<image files>)")
    first = Image.open(files[0][0])
    mode = "L" if first.mode in ("L", "1", "I", "I;16") else "RGB"
    size = (image_size, image_size) if image_size else first.size
    arrays = np.empty((len(files), size[1], size[0], 1 if mode == "L" else 3), dtype=np.uint8)
    for i, (path, _) in enumerate(files):
        with Image.open(path) as img:
            img = img.convert(mode)
            if img.size != size:
                img = img.resize(size, Image.BILINEAR)
            arrays[i] = np.asarray(img).reshape(arrays.shape[1:])
    labels = np.array([k for _, k in files], dtype=np.int64)
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous(), labels, classes


def _cache_dir() -> Path:
    return Path(os.environ.get("ELITE_CACHE_DIR", Path.home() / ".cache" / "elite_exp")).expanduser()


def _cached_image_folder(folder: Path) -> tuple[torch.Tensor, np.ndarray, tuple[str, ...]]:
    """``read_image_folder`` with the decoded tensors cached (decoding 60k JPEGs takes a while)."""
    import hashlib

    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    cache = _cache_dir() / f"imagefolder-{key}.pt"
    if cache.exists() and cache.stat().st_mtime >= folder.stat().st_mtime:
        blob = torch.load(cache, weights_only=False)
        return blob["x"], blob["y"], tuple(blob["classes"])
    log.info("decoding images under %s (once; cached at %s)", folder, cache)
    x, y, classes = read_image_folder(folder)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        torch.save({"x": x, "y": y, "classes": list(classes)}, tmp)
        os.replace(tmp, cache)
    except OSError as err:  # a read-only home must not stop the run
        log.warning("could not cache decoded images at %s: %s", cache, err)
    return x, y, classes


def load_cifar10(root: Path, download: bool = True, image_size: int | None = None) -> ArrayDataset:
    """CIFAR-10 from torchvision's layout (``cifar-10-batches-py``) or an image-folder layout
    (``<root>/CIFAR10/{train,test}/<class>/*``), whichever is present."""
    import torchvision.datasets as tvd

    folder = root / "CIFAR10"
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        x_tr, y_tr, classes = _cached_image_folder(folder / "train")
        x_te, y_te, _ = _cached_image_folder(folder / "test")
    else:
        if not download and not (root / "cifar-10-batches-py").is_dir():
            raise _missing("CIFAR10", [root / "cifar-10-batches-py", folder / "train"])
        try:
            train = tvd.CIFAR10(root=str(root), train=True, download=download)
            test = tvd.CIFAR10(root=str(root), train=False, download=download)
        except (RuntimeError, OSError) as err:
            raise _missing("CIFAR10", [root / "cifar-10-batches-py", folder / "train"]) from err
        x_tr = torch.from_numpy(train.data).permute(0, 3, 1, 2).contiguous()
        x_te = torch.from_numpy(test.data).permute(0, 3, 1, 2).contiguous()
        y_tr, y_te = np.asarray(train.targets, np.int64), np.asarray(test.targets, np.int64)
        classes = tuple(train.classes)
    x_tr, x_te = x_tr.float().div_(255.0), x_te.float().div_(255.0)
    mean = x_tr.mean(dim=(0, 2, 3), keepdim=True)
    std = x_tr.std(dim=(0, 2, 3), keepdim=True)
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    return ArrayDataset("cifar10", _resize(x_tr, image_size), y_tr, _resize(x_te, image_size), y_te, classes)


def load_digits_data(root: Path | None = None, download: bool = True, image_size: int | None = None) -> ArrayDataset:
    """scikit-learn's bundled 8x8 digits as 64-d vectors in [0, 1]; a fixed stratified
    two-thirds / one-third train / test split (seed 0), so it runs offline."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.data.astype(np.float32) / 16.0
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=1 / 3, stratify=y, random_state=0)
    names = tuple(str(c) for c in bunch.target_names)
    return ArrayDataset("digits", torch.from_numpy(x_tr), y_tr, torch.from_numpy(x_te), y_te, names)


DATASETS: dict[str, Callable[..., ArrayDataset]] = {
    "mnist": load_mnist,
    "fmnist": load_fmnist,
    "cifar10": load_cifar10,
    "digits": load_digits_data,
}


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True,
                 image_size: int | None = None) -> ArrayDataset:
    """Load a registered data set by name (see ``DATASETS``)."""
    if name not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; allowed: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](data_root(root), download=download, image_size=image_size)
