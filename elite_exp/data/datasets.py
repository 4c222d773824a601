"""Benchmark data sets, decoded once into in-memory float tensors.

Every loader returns an :class:`ArrayDataset` whose ``x_*`` tensors are ready for the
networks: images as ``(N, C, H, W)`` float32, vectors as ``(N, D)`` float32.
Pre-processing (see README): MNIST / Fashion-MNIST scaled to [0, 1]; CIFAR-10 scaled to
[0, 1] then normalised per channel with the train split's mean and std; digits scaled
to [0, 1]; tabular data standardised with train-split statistics. Your own data:
``folder`` (an image folder) and ``csv`` (a table), split by :func:`split_train_test` when
they come as one folder / one file.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from elite_exp.errors import ConfigError
from elite_exp.records import atomic_torch_save

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


def _missing(name: str, searched: list[Path], download: bool) -> ConfigError:
    where = ", ".join(str(p) for p in searched)
    where_to = "set data.root or ELITE_DATA_DIR to the folder that holds it"
    if download:
        return ConfigError(f"data set {name!r} not found (searched {where}) and the download failed (offline?); "
                           f"{where_to}")
    return ConfigError(f"data set {name!r} not found (searched {where}); {where_to}, or data.download=true "
                       "to fetch it when online")


@contextmanager
def _tidy_failed_download(folder: Path, download: bool) -> Iterator[None]:
    """On an error inside the block, remove the empty folders that did not exist before it on the way to
    ``folder`` (deepest first): a failed download leaves no data folder behind, e.g. at a mistyped path."""
    created = []
    p = folder.absolute()
    while download and not p.exists() and p.parent != p:
        created.append(p)
        p = p.parent
    try:
        yield
    except BaseException:
        for d in created:
            try:
                d.rmdir()
            except FileNotFoundError:  # not created by the block: its parent may have been
                continue
            except OSError:  # not empty: it holds what the download wrote
                break
        raise


def _resize(x: torch.Tensor, image_size: int | None) -> torch.Tensor:
    if image_size is None or x.shape[-1] == image_size:
        return x
    return F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)


def check_idx_file(path: Path) -> None:
    """An IDX file (MNIST's format: magic 0 0 8 ndim, ndim big-endian sizes, then the bytes) whose
    length differs from what its header says is a ConfigError naming it; a missing file passes
    (the loader then downloads it or says it is missing)."""
    if not path.is_file():
        return
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(4)
        ndim = head[3] if len(head) == 4 and head[:3] == b"\0\0\x08" else 0
        dims = np.frombuffer(fh.read(4 * ndim), dtype=">u4") if ndim else np.zeros(0)
    expected = 4 + 4 * ndim + int(np.prod(dims)) if ndim and len(dims) == ndim else None
    if expected != size:
        what = (f"{size} bytes where its header says {expected}" if expected is not None
                else "no valid IDX header")
        raise ConfigError(f"{path} is corrupt or truncated ({what}); delete it (data.download=true fetches it "
                          "again when online) or replace it with the original file")


def _load_mnist_like(name: str, cls_name: str, root: Path, download: bool, image_size: int | None) -> ArrayDataset:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        check_idx_file(root / cls_name / "raw" / stem)
    try:
        with _tidy_failed_download(root / cls_name / "raw", download):
            train = cls(root=str(root), train=True, download=download)
            test = cls(root=str(root), train=False, download=download)
    except RuntimeError as err:  # torchvision: "Dataset not found. You can use download=True ..."
        raise _missing(cls_name, [root / cls_name / "raw"], download) from err
    except OSError as err:  # download attempted without a network
        raise ConfigError(f"could not download {cls_name} into {root}: {err}") from err

    def prep(ds):
        x = ds.data.float().div_(255.0).unsqueeze(1)
        return _resize(x, image_size), ds.targets.numpy().astype(np.int64)

    x_tr, y_tr = prep(train)
    x_te, y_te = prep(test)
    return ArrayDataset(name, x_tr, y_tr, x_te, y_te, tuple(train.classes))


def load_mnist(root: Path, download: bool = True, image_size: int | None = None) -> ArrayDataset:
    return _load_mnist_like("mnist", "MNIST", root, download, image_size)


def load_fmnist(root: Path, download: bool = True, image_size: int | None = None) -> ArrayDataset:
    return _load_mnist_like("fmnist", "FashionMNIST", root, download, image_size)


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def _image_files(folder: Path) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """Class names (sorted sub-folders) and ``(image file, class index)`` pairs under ``folder/<class>/``
    (images in sub-folders of a class folder belong to that class; files and folders named with a leading
    dot are skipped, and so are symbolic links to folders inside a class folder)."""
    if not folder.is_dir():
        raise ConfigError(f"image folder {folder} {'is a file, not a folder' if folder.exists() else 'does not exist'}")
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    files = [(f, k) for k, c in enumerate(classes) for f in sorted((folder / c).rglob("*"))
             if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
             and not any(part.startswith(".") for part in f.relative_to(folder).parts)]
    if not files:
        raise ConfigError(f"image folder {folder} holds no images (expected {folder}/<class>/<image files> "
                          f"with extensions {' '.join(IMAGE_EXTENSIONS)})")
    return classes, files


# single-channel image modes deeper than 8 bits (Pillow's names) and the value that maps to 1.0:
# 16-bit unsigned, 32-bit signed integer, 32-bit float (taken as already scaled)
DEEP_MODES = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0, "I": 2.0 ** 31 - 1, "F": 1.0}
GREY_MODES = ("L", "1", "LA", "La", *DEEP_MODES)


def full_scale(img) -> float:
    """The value that maps to 1.0 for an image in one of :data:`DEEP_MODES`: 65535 for 16-bit PGM / PPM, which
    Pillow opens as 32-bit integers ``I`` holding 0..65535 (whatever the file's maxval: Pillow rescales it),
    else the mode's own full scale."""
    return 65535.0 if img.mode == "I" and img.format == "PPM" else DEEP_MODES[img.mode]


def _pixels(img, grey: bool, size: tuple[int, int]) -> np.ndarray:
    """One image as float32 ``(H, W, C)`` scaled by its bit depth: 8-bit modes / 255, 16-bit / 65535 (PNG, TIFF,
    PGM / PPM), 32-bit integer / (2^31 - 1), float as it is; grey (``C = 1``) or RGB (``C = 3``, a deep grey
    image repeated), resized bilinearly to ``size`` = (W, H)."""
    from PIL import Image

    if img.mode in DEEP_MODES:  # Pillow's convert() would clip these to 8 bits
        channel = Image.fromarray(np.asarray(img, dtype=np.float32) / np.float32(full_scale(img)))
        if channel.size != size:
            channel = channel.resize(size, Image.BILINEAR)
        a = np.asarray(channel, dtype=np.float32)[..., None]
        return a if grey else np.repeat(a, 3, axis=2)
    img = img.convert("L" if grey else "RGB")
    if img.size != size:
        img = img.resize(size, Image.BILINEAR)
    return np.asarray(img, dtype=np.float32).reshape(size[1], size[0], -1) / np.float32(255.0)


def _decode(files: list[tuple[Path, int]], image_size: int | None, mode: str | None) -> tuple[torch.Tensor, np.ndarray]:
    """Decode every image to ``(N, C, H, W)`` in [0, 1] (see :func:`_pixels`): uint8 (value / 255) when
    every image has 8 bits per channel, else float32."""
    from PIL import Image, UnidentifiedImageError

    def open_image(path: Path):
        try:
            return Image.open(path)
        except (UnidentifiedImageError, OSError) as err:
            raise ConfigError(f"could not read image {path}: {err}") from err

    with open_image(files[0][0]) as first:
        mode = mode or ("L" if first.mode in GREY_MODES else "RGB")
        size = (image_size, image_size) if image_size else first.size
    # uint8 (value x 255, exact for 8-bit images) until a deeper image turns the buffer into float32
    arrays = np.empty((len(files), size[1], size[0], 1 if mode == "L" else 3), dtype=np.uint8)
    for i, (path, _) in enumerate(files):
        with open_image(path) as img:
            try:
                pixels = _pixels(img, mode == "L", size)
            except (OSError, ValueError, SyntaxError) as err:  # Pillow reads the pixels only now
                raise ConfigError(f"could not read image {path}: {err}") from err
            if img.mode in DEEP_MODES and arrays.dtype == np.uint8:
                arrays = arrays.astype(np.float32) / np.float32(255.0)
            arrays[i] = pixels if arrays.dtype == np.float32 else np.rint(pixels * 255.0)
    labels = np.array([k for _, k in files], dtype=np.int64)
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous(), labels


def as_unit_float(x: torch.Tensor) -> torch.Tensor:
    """Decoded images as float32 in [0, 1]: uint8 / 255, float as it is."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def read_image_folder(folder: Path, image_size: int | None = None,
                      mode: str | None = None) -> tuple[torch.Tensor, np.ndarray, tuple[str, ...]]:
    """Decode ``folder/<class>/*`` into a tensor ``(N, C, H, W)`` (uint8 for 8-bit images, float32 in
    [0, 1] when any is deeper: :func:`_decode`), labels and class names.

    Classes are the sub-folders in sorted order (as ``torchvision.datasets.ImageFolder``).
    Images are converted to ``mode`` (``L`` grey or ``RGB``; default: grey if the first image
    is grey, else RGB) and, when ``image_size`` is given or sizes differ, resized (bilinear)
    to a square ``image_size`` (default: the first image's size).
    """
    classes, files = _image_files(folder)
    x, y = _decode(files, image_size, mode)
    return x, y, classes


def _listing(folder: Path, files: list[tuple[Path, int]], local: bool = False) -> list[tuple]:
    """Every image file's name under ``folder``, size and modification time; ``local`` adds its inode and
    status-change time, which no copy keeps and no ``touch -d`` / ``os.utime`` sets: the decode cache's key (a
    file rewritten with its old size and time is decoded again), not the records' fingerprint (a copy of the
    folder is the same data)."""
    stats = ((f, f.stat()) for f, _ in files)
    if local:
        return [(str(f.relative_to(folder)), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) for f, st in stats]
    return [(str(f.relative_to(folder)), st.st_size, st.st_mtime_ns) for f, st in stats]


def data_fingerprint(name: str, *, root: str | None = None, path: str | None = None, test_path: str | None = None,
                     **_) -> str | None:
    """A digest of the files behind your own data (``folder``: every image's name, size and time;
    ``csv``: the bytes of the table(s)), so a record made from other files is not taken as done; for
    CIFAR-10, which of its two layouts under ``root`` (:func:`cifar10_layout`) gives the pixels (two copies in
    the image-folder layout, e.g. JPEGs of two qualities, are not told apart); ``None`` for the other
    benchmark data sets, or for your own data when its files are missing (loading then says so)."""
    import hashlib

    if name == "cifar10":
        return f"cifar10:{cifar10_layout(data_root(root))}"
    try:
        if name == "folder" and path:
            root = Path(path).expanduser()
            split = (root / "train").is_dir() and (root / "test").is_dir()
            parts = [root / "train", root / "test"] if split else [root]
            body = repr([_listing(p, _image_files(p)[1]) for p in parts]).encode()
        elif name == "csv" and path:
            body = b"".join(Path(p).expanduser().read_bytes() + b"\0" for p in (path, test_path) if p)
        else:
            return None
    except (ConfigError, OSError):
        return None
    return hashlib.sha1(body).hexdigest()[:16]


# part of the cache key: 2 = images deeper than 8 bits scaled by their bit depth (1 clipped them to 8 bits);
# 3 = 16-bit PGM / PPM scaled by 65535 (2 divided them by 2^31 - 1)
DECODE_VERSION = 3


def _digest(body) -> str:
    """16 hex digits of the SHA-1 of ``repr(body)``."""
    import hashlib

    return hashlib.sha1(repr(body).encode()).hexdigest()[:16]


def _cache_dir() -> Path:
    return Path(os.environ.get("ELITE_CACHE_DIR", Path.home() / ".cache" / "elite_exp")).expanduser()


def _cached_image_folder(folder: Path, image_size: int | None = None,
                         mode: str | None = None) -> tuple[torch.Tensor, np.ndarray, tuple[str, ...]]:
    """``read_image_folder`` with the decoded tensors cached in ``$ELITE_CACHE_DIR``: images are
    decoded once. A decode is ``imagefolder-<folder key>-<files key>.pt``: the folder key covers the folder, the
    size and the mode, the files key :data:`DECODE_VERSION` and every file's name, size, times and inode, so a
    changed folder is decoded again, and its old decode is then deleted (:func:`_remove_stale`)."""
    classes, files = _image_files(folder)
    prefix = f"imagefolder-{_digest((str(folder.resolve()), image_size, mode))}-"
    cache = _cache_dir() / f"{prefix}{_digest((DECODE_VERSION, _listing(folder, files, local=True)))}.pt"
    if cache.exists():
        try:
            blob = torch.load(cache, weights_only=True)  # tensors and names only: no pickled code runs
        except Exception as err:  # a damaged cache file costs a decode, never the run
            log.warning("cache file %s is unreadable (%s: %s); decoding the images again", cache,
                        type(err).__name__, err)
        else:
            try:
                os.utime(cache)  # read now: not stale (_remove_stale)
            except OSError:  # a read-only cache folder
                pass
            return blob["x"], blob["y"].numpy(), tuple(blob["classes"])
    log.info("decoding %d images under %s (once: a decode that succeeds is cached at %s)", len(files), folder, cache)
    x, y = _decode(files, image_size, mode)
    try:
        atomic_torch_save({"x": x, "y": torch.from_numpy(y), "classes": list(classes)}, cache)
    except (OSError, RuntimeError) as err:  # a read-only or full disk must not stop the run
        log.warning("could not cache decoded images at %s: %s", cache, err)
    else:
        _remove_stale(cache, prefix)
    return x, y, classes


STALE_AFTER_S = 86_400  # a folder's other decode, not read for a day, is deleted (_remove_stale)


# a decode named by one key (``imagefolder-<16 hex>.pt``), as written before the folder key was split off: no
# present version reads it
UNREAD_NAME = re.compile(r"imagefolder-[0-9a-f]{16}\.pt")


def _remove_stale(cache: Path, prefix: str) -> None:
    """Delete the folder's other decodes (``<prefix>*.pt`` beside ``cache``: the folder before it changed, or
    decoded by an older :data:`DECODE_VERSION`), and any decode in the one-key naming (:data:`UNREAD_NAME`), not
    read for :data:`STALE_AFTER_S` seconds. One read within that time is kept: machines that share a cache folder,
    each with its own copy of the data at one path (another files key: other inodes), do not delete each other's
    decodes."""
    now = time.time()
    for other in cache.parent.glob("imagefolder-*.pt"):
        if not (other.name.startswith(prefix) or UNREAD_NAME.fullmatch(other.name)):
            continue
        try:
            if other != cache and now - other.stat().st_mtime > STALE_AFTER_S:
                other.unlink()
        except FileNotFoundError:  # deleted meanwhile by another process
            pass
        except OSError as err:  # e.g. another user's file in a shared cache folder
            log.warning("could not delete the stale cache file %s: %s", other, err)


def cifar10_layout(root: Path) -> str:
    """The layout CIFAR-10 loads from under ``root``: ``image-folder`` when ``<root>/CIFAR10/{train,test}/``
    exist (e.g. a JPEG re-encoding, whose pixels differ from the original's), else ``torchvision`` (the
    original release as torchvision downloads it, ``cifar-10-batches-py``)."""
    folder = root / "CIFAR10"
    return "image-folder" if (folder / "train").is_dir() and (folder / "test").is_dir() else "torchvision"


def load_cifar10(root: Path, download: bool = True, image_size: int | None = None) -> ArrayDataset:
    """CIFAR-10 from torchvision's layout (``cifar-10-batches-py``) or an image-folder layout
    (``<root>/CIFAR10/{train,test}/<class>/*``), whichever is present (:func:`cifar10_layout`; the
    image folder when both are)."""
    import torchvision.datasets as tvd

    folder = root / "CIFAR10"
    if cifar10_layout(root) == "image-folder":
        x_tr, y_tr, x_te, y_te, classes = _train_test_folders(folder)
    else:
        if not download and not (root / "cifar-10-batches-py").is_dir():
            raise _missing("CIFAR10", [root / "cifar-10-batches-py", folder / "train"], download)
        try:
            with _tidy_failed_download(root, download):
                train = tvd.CIFAR10(root=str(root), train=True, download=download)
                test = tvd.CIFAR10(root=str(root), train=False, download=download)
        except (RuntimeError, OSError) as err:
            raise _missing("CIFAR10", [root / "cifar-10-batches-py", folder / "train"], download) from err
        x_tr = torch.from_numpy(train.data).permute(0, 3, 1, 2).contiguous()
        x_te = torch.from_numpy(test.data).permute(0, 3, 1, 2).contiguous()
        y_tr, y_te = np.asarray(train.targets, np.int64), np.asarray(test.targets, np.int64)
        classes = tuple(train.classes)
    x_tr, x_te = as_unit_float(x_tr), as_unit_float(x_te)
    mean = x_tr.mean(dim=(0, 2, 3), keepdim=True)
    std = x_tr.std(dim=(0, 2, 3), keepdim=True)
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    return ArrayDataset("cifar10", _resize(x_tr, image_size), y_tr, _resize(x_te, image_size), y_te, classes)


def load_digits_data() -> ArrayDataset:
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


DEFAULT_TEST_FRACTION = 1 / 3  # the share of each class an own data set without a test split tests on


TEST_TABLE = "a test table (data.test_path)"


def refuse_test_fraction(test_fraction: float | None, split: str) -> None:
    """ConfigError when ``test_fraction`` is given although ``split`` gives the test split."""
    if test_fraction is not None:
        raise ConfigError(f"data.test_fraction={test_fraction} is not allowed: {split} gives the test split; "
                          "leave data.test_fraction unset")


def split_train_test(labels: np.ndarray, test_fraction: float | None = None,
                     class_names: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The fixed train / test rule for data that comes as one table or one folder: a stratified
    split (every class keeps its share), ``test_fraction`` of each class to test (None:
    ``DEFAULT_TEST_FRACTION``), seed 0. ``class_names`` (by label index) name a class in errors."""
    from sklearn.model_selection import train_test_split

    if test_fraction is None:
        test_fraction = DEFAULT_TEST_FRACTION
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction={test_fraction} is not allowed; it must lie in (0, 1)")
    counts = np.bincount(labels)
    single = np.flatnonzero(counts == 1)
    if len(single):
        name = f"class {class_names[single[0]]!r}" if class_names is not None else f"class index {single[0]}"
        raise ConfigError(f"{name} has a single sample; a stratified train/test split needs "
                          "at least 2 per class (remove it or give a separate test set)")
    try:
        train, test = train_test_split(np.arange(len(labels)), test_size=test_fraction, stratify=labels,
                                       random_state=0)
    except ValueError as err:  # e.g. fewer test samples than classes
        raise ConfigError(f"cannot split {len(labels)} samples with test_fraction={test_fraction}: {err}") from err
    return np.sort(train), np.sort(test)


def _merge_classes(names_a: tuple[str, ...], y_a: np.ndarray, names_b: tuple[str, ...],
                   y_b: np.ndarray) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Relabel two splits that list their classes separately onto the sorted union of the names."""
    names = tuple(sorted(set(names_a) | set(names_b)))
    index = {c: i for i, c in enumerate(names)}
    return (names, np.array([index[c] for c in names_a], np.int64)[y_a],
            np.array([index[c] for c in names_b], np.int64)[y_b])


def _train_test_folders(folder: Path, image_size: int | None = None
                        ) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray, tuple[str, ...]]:
    """``folder/train/<class>/*`` and ``folder/test/<class>/*`` decoded (cached): the test images in the train
    images' mode (grey or RGB) and checked to have their shape, both splits' labels on the sorted union of
    their class names (a class only one split holds keeps its name, not another class's index)."""
    x_tr, y_tr, names_tr = _cached_image_folder(folder / "train", image_size)
    x_te, y_te, names_te = _cached_image_folder(folder / "test", image_size, "L" if x_tr.shape[1] == 1 else "RGB")
    if x_te.shape[1:] != x_tr.shape[1:]:
        raise ConfigError(f"train images under {folder} are {tuple(x_tr.shape[1:])} but test images "
                          f"{tuple(x_te.shape[1:])}; give images of one size (with data=folder, data.image_size "
                          f"resizes both)")
    classes, y_tr, y_te = _merge_classes(names_tr, y_tr, names_te, y_te)
    return x_tr, y_tr, x_te, y_te, classes


def load_folder(image_size: int | None = None, *, path: str | None = None,
                test_fraction: float | None = None) -> ArrayDataset:
    """Your own images, ``<path>/<class>/*`` or ``<path>/{train,test}/<class>/*``, scaled to [0, 1] by
    their bit depth (8-bit / 255, 16-bit / 65535, 32-bit integer / (2^31 - 1), float as is).

    With ``train/`` and ``test/`` sub-folders those are the splits (``test_fraction`` is then not
    allowed); otherwise the class folders are split by :func:`split_train_test` (``test_fraction``
    default 1/3). Images are decoded once (cached, see
    :func:`_cached_image_folder`), converted to grey or RGB after the first training image and
    resized to ``image_size`` x ``image_size``.
    """
    if not path:
        raise ConfigError("data=folder needs data.path=<folder> holding <class>/<images> "
                          "(or train/<class>/<images> and test/<class>/<images>)")
    folder = Path(path).expanduser()
    if (folder / "train").is_dir() != (folder / "test").is_dir():
        has, lacks = ("train", "test") if (folder / "train").is_dir() else ("test", "train")
        raise ConfigError(f"image folder {folder} has a {has}/ sub-folder but no {lacks}/: give both "
                          f"({folder}/train/<class>/, {folder}/test/<class>/) or only class folders")
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        refuse_test_fraction(test_fraction, f"the test/ sub-folder of {folder}")
        x_tr, y_tr, x_te, y_te, classes = _train_test_folders(folder, image_size)
    else:
        x, y, classes = _cached_image_folder(folder, image_size)
        train, test = split_train_test(y, test_fraction, classes)
        x_tr, y_tr, x_te, y_te = x[train], y[train], x[test], y[test]
    return ArrayDataset("folder", as_unit_float(x_tr), y_tr, as_unit_float(x_te), y_te, classes)


def _read_csv(path: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(Path(path).expanduser())
    except FileNotFoundError as err:
        raise ConfigError(f"CSV file {path} does not exist") from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as err:
        raise ConfigError(f"could not read {path} as CSV: {' '.join(str(err).split())}") from err
    if frame.empty:
        raise ConfigError(f"CSV file {path} holds no rows")
    return frame


def _table_features(frame: pd.DataFrame, where: str, label_column: str, feature_columns) -> np.ndarray:
    """The feature matrix of one table, every column checked (numeric, finite)."""
    missing = [c for c in (label_column, *feature_columns) if c not in frame.columns]
    if missing:
        raise ConfigError(f"{where} has no column {missing[0]!r}; its columns: {', '.join(map(str, frame.columns))}")
    if label_column in feature_columns:
        raise ConfigError(f"data.feature_columns lists the label column {label_column!r} (data.label_column): the "
                          "label cannot be a feature; list the other columns")
    non_numeric = [c for c in feature_columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise ConfigError(f"{where}: feature column(s) {', '.join(map(repr, non_numeric))} are not numeric; "
                          "drop them or list the numeric ones in data.feature_columns")
    x = frame[list(feature_columns)].to_numpy(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        cols = [feature_columns[j] for j in np.flatnonzero(bad.any(0))]
        raise ConfigError(f"{where}: {int(bad.any(1).sum())} row(s) hold NaN or infinite values "
                          f"(column(s) {', '.join(map(repr, cols))})")
    empty = int(frame[label_column].isna().sum())
    if empty:
        raise ConfigError(f"{where}: label column {label_column!r} is empty in {empty} row(s)")
    return x


def table_dataset(name: str, frame: pd.DataFrame, label_column: str, feature_columns=None,
                  test_frame: pd.DataFrame | None = None, test_fraction: float | None = None,
                  where: str = "the table") -> ArrayDataset:
    """A labeled table as an :class:`ArrayDataset` of standardised ``(N, D)`` vectors.

    Classes are the label column's values (sorted; their text is the class name). Without
    ``test_frame`` the rows are split by :func:`split_train_test` (``test_fraction`` default 1/3;
    with ``test_frame`` it is not allowed). Features are standardised
    with the mean and standard deviation of the train split only (constant columns become 0).
    """
    if label_column not in frame.columns:
        one = len(frame.columns) == 1 and any(sep in str(frame.columns[0]) for sep in ";\t")
        raise ConfigError(f"{where} has no label column {label_column!r}; its columns: "
                          f"{', '.join(map(str, frame.columns))}"
                          f"{' (one column: the file must be comma-separated)' if one else ''}")
    unnamed = [c for c in frame.columns if re.fullmatch(r"Unnamed: \d+", str(c))]
    if unnamed and not feature_columns:  # most often a row index, which can leak the label (rows sorted by class)
        raise ConfigError(f"{where}: column {unnamed[0]!r} has no header, as a row index saved by pandas' to_csv "
                          "(without index=False) has: drop it, name it, or list the features in data.feature_columns")
    features = list(feature_columns) if feature_columns else [c for c in frame.columns if c != label_column]
    if not features:
        raise ConfigError(f"{where} has no feature columns besides the label column {label_column!r}")
    x = _table_features(frame, where, label_column, features)
    labels = frame[label_column]
    if test_frame is not None:
        refuse_test_fraction(test_fraction, TEST_TABLE)
        x_te = _table_features(test_frame, "the test table", label_column, features)
        labels = pd.concat([labels, test_frame[label_column]], ignore_index=True)
    try:
        values = sorted(labels.unique().tolist())
    except TypeError as err:  # numbers in one table's label column, text in the other's
        kinds = (f"{frame[label_column].dtype} in {where}, {test_frame[label_column].dtype} in the test table"
                 if test_frame is not None else f"{labels.dtype}")
        raise ConfigError(f"label column {label_column!r} mixes numbers and text ({kinds}): class labels must be "
                          f"all numbers or all text") from err
    codes = pd.Categorical(labels, categories=values).codes.astype(np.int64)
    if test_frame is None:
        train, test = split_train_test(codes, test_fraction, [str(v) for v in values])
        x_tr, y_tr, x_te, y_te = x[train], codes[train], x[test], codes[test]
    else:
        x_tr, y_tr, y_te = x, codes[:len(x)], codes[len(x):]
    mean, std = x_tr.mean(0), x_tr.std(0)
    std[std < 1e-12] = 1.0
    x_tr, x_te = (torch.from_numpy(((a - mean) / std).astype(np.float32)) for a in (x_tr, x_te))
    return ArrayDataset(name, x_tr, y_tr, x_te, y_te, tuple(str(v) for v in values))


def load_csv(*, path: str | None = None, test_path: str | None = None, label_column: str = "label",
             feature_columns: list[str] | None = None, test_fraction: float | None = None) -> ArrayDataset:
    """Your own table: a CSV file with a header row, a label column and numeric feature columns
    (every other column, or ``feature_columns``); see :func:`table_dataset`."""
    if not path:
        raise ConfigError("data=csv needs data.path=<file.csv> (a header row, a label column, numeric features)")
    return table_dataset("csv", _read_csv(path), label_column, feature_columns,
                         _read_csv(test_path) if test_path else None, test_fraction, where=f"CSV file {path}")


def load_breast_cancer_data(*, test_fraction: float | None = None) -> ArrayDataset:
    """scikit-learn's bundled Wisconsin breast cancer table (569 rows, 30 features; classes
    ``benign`` / ``malignant``), split and standardised as a CSV table would be."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.data.assign(diagnosis=bunch.target_names[bunch.target.to_numpy()])
    return table_dataset("breast_cancer", frame, "diagnosis", test_fraction=test_fraction)


DATASETS: dict[str, Callable[..., ArrayDataset]] = {
    "mnist": load_mnist,
    "fmnist": load_fmnist,
    "cifar10": load_cifar10,
    "digits": load_digits_data,
    "breast_cancer": load_breast_cancer_data,
    "folder": load_folder,
    "csv": load_csv,
}


def check_data(name: str, image_size: int | None = None) -> None:
    """``name`` is a loader of :data:`DATASETS` and ``image_size`` None (the images' own size) or >= 1 for a
    loader of images; else ConfigError naming the value (as ``data.name`` / ``data.image_size``)."""
    if name not in DATASETS:
        raise ConfigError(f"data.name={name!r} is not a data set loader; allowed: {', '.join(sorted(DATASETS))} "
                          f"(your own data: data.name=csv or folder)")
    if image_size is not None and (isinstance(image_size, bool) or not image_size >= 1):
        raise ConfigError(f"data.image_size={image_size!r} is not allowed; it must be >= 1 (or null: the images' "
                          f"own size)")
    if image_size is not None and "image_size" not in inspect.signature(DATASETS[name]).parameters:
        raise ConfigError(f"data.image_size is not used by data={name}: its samples are vectors; leave it unset")


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True,
                 image_size: int | None = None, **options) -> ArrayDataset:
    """Load a registered data set by name (see ``DATASETS``). ``options`` are the loader's own
    keyword arguments (``path``, ``label_column``, ...); ``None`` means the loader's default. Raises
    ConfigError for an unknown name or a bad ``image_size`` (:func:`check_data`) or an option the loader
    does not take."""
    check_data(name, image_size)
    loader = DATASETS[name]
    accepted = inspect.signature(loader).parameters
    given = {k: v for k, v in {"image_size": image_size, **options}.items() if v is not None}
    unused = sorted(k for k in given if k not in accepted)
    if unused:
        allowed = ", ".join(f"data.{k}" for k in accepted if k not in ("root", "download")) or "none"
        raise ConfigError(f"data.{unused[0]} is not used by data={name}; its options: {allowed}")
    base = {"root": data_root(root), "download": download}
    return loader(**{k: v for k, v in base.items() if k in accepted}, **given)
