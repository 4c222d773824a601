"""Data: loading benchmark data sets into memory and drawing the polluted splits."""

from elite_exp.data.datasets import DATASETS, ArrayDataset, load_dataset
from elite_exp.data.protocol import (
    Split,
    check_label_ratio,
    check_normal_class,
    check_protocol,
    class_index,
    labels_from_ratio,
    make_split,
)

__all__ = ["DATASETS", "ArrayDataset", "Split", "check_label_ratio", "check_normal_class", "check_protocol",
           "class_index", "labels_from_ratio", "load_dataset", "make_split"]
