"""Data: loading benchmark data sets into memory and drawing the polluted splits."""

from elite_exp.data.datasets import DATASETS, ArrayDataset, load_dataset
from elite_exp.data.protocol import Split, check_protocol, make_split

__all__ = ["DATASETS", "ArrayDataset", "Split", "check_protocol", "load_dataset", "make_split"]
