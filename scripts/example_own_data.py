"""ELITE on your own data, from Python: a table and an image folder (runs offline in about a minute).

    python scripts/example_own_data.py

1. A table: scikit-learn's breast cancer data written to a CSV file, read back with the same
   loader ``data=csv`` uses; benign rows are normal, 10% of the training rows are malignant
   (unlabeled pollution), and 10 rows are labeled.
2. An image folder: scikit-learn's 8x8 digits written as PNG files into ``<folder>/<digit>/``;
   digit 0 is normal.

Each prints the test ROC AUC (anomaly = positive class).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.metrics import roc_auc_score

from elite_exp import EliteDetector
from elite_exp.data import class_index, load_dataset, make_split


def polluted_with_few_labels(ds, normal: int, r_p: float, n_train: int, n_labels: int):
    """The fit() input: ``n_train`` unlabeled samples (a share ``r_p`` anomalies, y=-1) and
    ``n_labels`` labeled ones (half normal y=0, half anomalies y=1)."""
    split = make_split(ds.y_train, normal, r_p, n_train, n_labels, seed=0, dataset=ds.name)
    X = np.concatenate([ds.x_train[split.unlabeled].numpy(), ds.x_train[split.labeled].numpy()])
    y = np.concatenate([np.full(len(split.unlabeled), -1), split.labeled_anomaly])
    return X, y


def table_example(workdir: Path) -> float:
    bunch = load_breast_cancer(as_frame=True)
    table = bunch.data.assign(diagnosis=bunch.target_names[bunch.target.to_numpy()])
    table.to_csv(workdir / "breast_cancer.csv", index=False)

    ds = load_dataset("csv", path=str(workdir / "breast_cancer.csv"), label_column="diagnosis")
    normal = class_index("benign", ds.class_names)
    X, y = polluted_with_few_labels(ds, normal, r_p=0.1, n_train=200, n_labels=10)
    detector = EliteDetector(score="svdd", network={"kind": "mlp", "hidden": [32, 16], "rep_dim": 8},
                             epochs=30, batch_size=32, lr=1e-3, device="cpu")
    detector.fit(X, y)
    return roc_auc_score(ds.y_test != normal, detector.decision_function(ds.x_test))


def image_folder_example(workdir: Path) -> float:
    digits = load_digits()
    for k in range(10):
        (workdir / "digits" / str(k)).mkdir(parents=True)
        for i, img in enumerate(digits.images[digits.target == k]):
            Image.fromarray((img * 255 / 16).astype(np.uint8)).save(workdir / "digits" / str(k) / f"{i}.png")

    ds = load_dataset("folder", image_size=16, path=str(workdir / "digits"))  # (N, 1, 16, 16) in [0, 1]
    normal = class_index("0", ds.class_names)
    X, y = polluted_with_few_labels(ds, normal, r_p=0.1, n_train=100, n_labels=10)
    detector = EliteDetector(score="svdd", network={"kind": "conv", "channels": [8, 4], "rep_dim": 16},
                             epochs=30, batch_size=32, lr=1e-3, device="cpu")
    detector.fit(X, y)
    detector.save(workdir / "elite_digits.pt")  # EliteDetector.load(path) gives the same scores
    return roc_auc_score(ds.y_test != normal, detector.decision_function(ds.x_test))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["ELITE_CACHE_DIR"] = str(workdir / "cache")  # decoded images of this throwaway folder
        print(f"table (breast cancer CSV, benign normal): ROC AUC {table_example(workdir):.3f}")
        print(f"image folder (digits PNGs, 0 normal):     ROC AUC {image_folder_example(workdir):.3f}")


if __name__ == "__main__":
    main()
