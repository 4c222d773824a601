"""Run records: atomic writes of result.json / CSV files and the environment facts they hold."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

RESULT_FILE = "result.json"
# what a record's numbers mean; a record of another format is never taken as done.
# 1: scored with BatchNorm's running averages; 2: with statistics recomputed on the training data
RECORD_FORMAT = 2


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# the permissions of a file this process makes with open() (its umask when elite_exp was imported): a temporary file
# is made 0600, and kept so by the rename
NEW_FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` by ``write(file)`` into a unique temporary file in its folder (made if missing), synced, then
    renamed: readers never see half a file, concurrent writers never share a temporary file, and a failed write
    leaves none behind. The file gets the permissions of any new file (:data:`NEW_FILE_MODE`: others on a shared
    folder can read it, as the umask allows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            try:
                os.fchmod(fh.fileno(), NEW_FILE_MODE)
            except (AttributeError, OSError):  # no fchmod (Windows), or a mount that refuses it: as made
                pass
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """``text`` to ``path`` (UTF-8) by :func:`atomic_write`."""
    atomic_write(path, lambda fh: fh.write(text.encode()))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` by :func:`atomic_write`."""
    import torch

    atomic_write(path, lambda fh: torch.save(obj, fh))


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to one level with dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# what every record holds (the runner writes them first): a record without one of them is unreadable
RECORD_KEYS = ("method", "data", "normal_class", "status")


def missing_keys(record) -> list[str]:
    """Of :data:`RECORD_KEYS`, those ``record`` (parsed JSON) lacks; ``["a JSON object"]`` if it is none."""
    if not isinstance(record, dict):
        return ["a JSON object"]
    return [k for k in RECORD_KEYS if k not in record]


def read_record(run_dir: Path) -> dict | None:
    """The run's record, or None if it has none (or an unreadable one: not JSON, not an object, or without one of
    :data:`RECORD_KEYS`)."""
    try:
        record = json.loads((Path(run_dir) / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return None if missing_keys(record) else record


def is_finished(run_dir: Path, identity: dict | None = None) -> bool:
    """The folder holds an ``ok`` record; with ``identity``, one made with exactly that identity
    (record format, config hash, data fingerprint: see ``runner.run_identity``)."""
    rec = read_record(run_dir)
    return rec is not None and rec.get("status") == "ok" and (identity is None or rec.get("identity") == identity)


def record_format(rec: dict) -> int:
    """The format a record was written in (records before formats were numbered are 1)."""
    return int(rec.get("identity", {}).get("format", 1))


def utc_now() -> str:
    """The time now in UTC, ISO 8601 to the second (``2026-12-01T12:30:05+00:00``): a record's ``finished_at``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def environment(device: str) -> dict[str, Any]:
    import numpy
    import sklearn
    import torch

    env = {"device": device, "python": platform.python_version(), "platform": platform.platform(),
           "torch": torch.__version__, "numpy": numpy.__version__, "sklearn": sklearn.__version__,
           "pandas": pd.__version__, "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env
