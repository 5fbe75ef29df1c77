"""Named data sets: MNIST, Fashion-MNIST and scikit-learn's bundled digits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modeldx.data.arrays import ArrayDataset
from modeldx.data.download import cache_dir, download_file
from modeldx.data.idx import read_idx
from modeldx.data.root import ENV_VAR, data_root
from modeldx.errors import DataNotFoundError, InvalidParameterError


@dataclass(frozen=True)
class IDXSpec:
    """Where an IDX data set's files are published and how to normalise it."""

    folder: str
    files: dict[str, tuple[str, str]]  # split -> (images file, labels file)
    md5: dict[str, str]
    mirrors: list[str]
    classes: list[str]
    mean: float
    std: float
    extra: dict = field(default_factory=dict)


MNIST = IDXSpec(
    folder="mnist",
    files={
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    },
    md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    mirrors=[
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    classes=[str(i) for i in range(10)],
    mean=0.1307,
    std=0.3081,
)

FASHION_MNIST = IDXSpec(
    folder="fashion-mnist",
    files=MNIST.files,
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    mirrors=["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    classes=["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot"],
    mean=0.2860,
    std=0.3530,
)

IDX_DATASETS = {"mnist": MNIST, "fashion-mnist": FASHION_MNIST}
SPLITS = ("train", "test")


def _find_file(spec: IDXSpec, filename: str, root: Path, download: bool,
               base_urls: list[str] | None, progress: bool) -> Path:
    candidates = [root / spec.folder / filename, root / spec.folder / filename.removesuffix(".gz")]
    for path in candidates:
        if path.is_file():
            return path
    cached = cache_dir() / spec.folder / filename
    if cached.is_file():
        return cached
    if download:
        urls = [u + filename for u in (base_urls or spec.mirrors)]
        return download_file(urls, cached, spec.md5[filename], progress=progress)
    raise DataNotFoundError(
        f"{spec.folder} file {filename!r} not found in {root / spec.folder} (data root from "
        f"{'the argument' if root else ENV_VAR}) nor in the cache {cached.parent}. Put the "
        f"published files there, point {ENV_VAR} at a folder holding '{spec.folder}/', or "
        "pass download=True."
    )


def load_idx_dataset(
    name: str,
    split: str = "test",
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
    base_urls: list[str] | None = None,
    progress: bool = True,
) -> ArrayDataset:
    """Load MNIST or Fashion-MNIST as an :class:`ArrayDataset`.

    Files are looked for in ``<data root>/<name>/`` (gzipped or raw), then in the
    download cache; with ``download=True`` missing files are fetched and checked
    against their published MD5.

    Examples
    --------
    >>> ds = load_idx_dataset("mnist", "test")  # doctest: +SKIP
    >>> len(ds), ds.num_classes
    (10000, 10)
    """
    if name not in IDX_DATASETS:
        raise InvalidParameterError(
            f"The 'name' parameter must be one of {sorted(IDX_DATASETS)}. Got {name!r} instead."
        )
    if split not in SPLITS:
        raise InvalidParameterError(
            f"The 'split' parameter must be one of {list(SPLITS)}. Got {split!r} instead."
        )
    spec = IDX_DATASETS[name]
    base = data_root(root)
    images_file, labels_file = spec.files[split]
    images = read_idx(_find_file(spec, images_file, base, download, base_urls, progress))
    labels = read_idx(_find_file(spec, labels_file, base, download, base_urls, progress))
    if images.shape[0] != labels.shape[0]:
        raise DataNotFoundError(
            f"{name} {split}: {images.shape[0]} images but {labels.shape[0]} labels; the files "
            "do not belong together"
        )
    return ArrayDataset(images, labels, scale=1 / 255, mean=spec.mean, std=spec.std,
                        add_channel=True, classes=spec.classes, name=f"{name}-{split}",
                        split=split)


def load_mnist(split: str = "test", **kwargs) -> ArrayDataset:
    """MNIST ``split`` ("train" or "test"); see :func:`load_idx_dataset`."""
    return load_idx_dataset("mnist", split, **kwargs)


def load_fashion_mnist(split: str = "test", **kwargs) -> ArrayDataset:
    """Fashion-MNIST ``split`` ("train" or "test"); see :func:`load_idx_dataset`."""
    return load_idx_dataset("fashion-mnist", split, **kwargs)


def load_digits() -> ArrayDataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), as 1x8x8 images in [0, 1]."""
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    images = bunch.images.astype(np.float32)
    return ArrayDataset(images, bunch.target, scale=1 / 16, add_channel=True,
                        classes=[str(i) for i in range(10)], name="digits")


def load_dataset(name: str, split: str = "test", **kwargs) -> ArrayDataset:
    """Any named data set: ``mnist``, ``fashion-mnist`` or ``digits``."""
    if name == "digits":
        return load_digits()
    return load_idx_dataset(name, split, **kwargs)


def available() -> list[str]:
    """Names :func:`load_dataset` accepts."""
    return [*IDX_DATASETS, "digits"]
