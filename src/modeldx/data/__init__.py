"""Data set loaders and adapters."""

from modeldx.data.arrays import ArrayDataset, SplitDataset, TorchDatasetAdapter, as_dataset
from modeldx.data.datasets import (
    available,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_idx_dataset,
    load_mnist,
)
from modeldx.data.download import cache_dir, download_file
from modeldx.data.idx import IDXFormatError, read_idx
from modeldx.data.ptb import PTBCorpus, load_ptb
from modeldx.data.reuters import ReutersCorpus, load_reuters
from modeldx.data.root import data_root
from modeldx.data.text import STOP_WORDS, Vocabulary, count_matrix, tokenize

__all__ = [
    "ArrayDataset", "SplitDataset", "TorchDatasetAdapter", "as_dataset", "available",
    "load_dataset", "load_digits", "load_fashion_mnist", "load_idx_dataset", "load_mnist",
    "cache_dir", "download_file", "IDXFormatError", "read_idx", "data_root",
    "PTBCorpus", "load_ptb", "ReutersCorpus", "load_reuters",
    "STOP_WORDS", "Vocabulary", "count_matrix", "tokenize",
]
