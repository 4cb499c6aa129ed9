"""MNIST from standard IDX files (gzip or raw), with no network access.

Where the files are looked for, in order:

1. the folder in the environment variable ``MNIST_DIR`` (only there, when it is set);
2. ``data/mnist/`` in the project;
3. ``../shared/datasets/mnist`` beside the project root.

Each split is two files, ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` with or without
``.gz``. Every problem (missing file, wrong magic number, wrong dimensions, truncated data,
images and labels of different lengths) raises :class:`MnistError` with a one-line message
that names the file and every place that was searched.

A small sample of the test set (``data/mnist_sample/``, 500 digits cut from the real files and
committed) lets the tests run on a machine without the data set: :func:`load_sample`.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["MnistError", "mnist_dir", "search_dirs", "load_mnist", "load_sample", "read_idx",
           "write_idx", "SAMPLE_DIR", "PROJECT_ROOT"]

#: The project root (the folder holding ``apps/``).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The committed sample of the test set.
SAMPLE_DIR = PROJECT_ROOT / "data" / "mnist_sample"

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: Magic numbers of the IDX format: 0x00 0x00, type 0x08 (unsigned byte), number of dimensions.
_MAGIC_IMAGES = 0x00000803
_MAGIC_LABELS = 0x00000801


class MnistError(Exception):
    """The data set is missing or a file is not a valid MNIST IDX file (one-line message)."""


def search_dirs() -> list[Path]:
    """Folders searched for the IDX files, in order (only ``MNIST_DIR`` when it is set)."""
    env = os.environ.get("MNIST_DIR")
    if env:
        return [Path(env).expanduser()]
    return [PROJECT_ROOT / "data" / "mnist", PROJECT_ROOT.parent / "shared" / "datasets" / "mnist"]


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        p = folder / name
        if p.is_file():
            return p
    return None


def mnist_dir(split: str | None = None) -> Path:
    """The first searched folder that holds the IDX files (of ``split``, or all four).

    Parameters
    ----------
    split : {"train", "test"}, optional
        Only the two files of this split need to be there.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    MnistError
        Naming the first missing file and every folder looked in.
    """
    dirs = search_dirs()
    if split is not None and split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    stems = list(_FILES[split]) if split else [s for pair in _FILES.values() for s in pair]
    for d in dirs:
        if all(_find(d, s) for s in stems):
            return d
    # Report the file missing in the most promising folder (the one with most files present).
    best = max(dirs, key=lambda d: sum(_find(d, s) is not None for s in stems))
    missing = next(s for s in stems if _find(best, s) is None)
    raise MnistError(f"MNIST file {missing}[.gz] not found; looked in "
                     + ", ".join(str(d) for d in dirs) + " (set MNIST_DIR to a folder with the IDX files)")


def read_idx(path, expect_magic: int, expect_dims: tuple[int | None, ...]) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzip or raw) and check its header.

    Parameters
    ----------
    path : path-like
        The file; a ``.gz`` suffix means gzip.
    expect_magic : int
        ``0x803`` for images (3 dimensions), ``0x801`` for labels (1 dimension).
    expect_dims : tuple of int or None
        Expected sizes after the first; None accepts any.

    Returns
    -------
    numpy.ndarray of uint8, shape (N, *dims)

    Raises
    ------
    MnistError
        If the file cannot be read, or its magic number, dimensions or length are wrong.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise MnistError(f"cannot read MNIST file {path}: {exc}") from None
    ndim = expect_magic & 0xFF
    header_bytes = 4 + 4 * ndim
    if len(raw) < header_bytes:
        raise MnistError(f"MNIST file {path} is truncated: {len(raw)} bytes, header needs {header_bytes}")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expect_magic:
        raise MnistError(f"MNIST file {path} has magic number {magic:#010x}, expected {expect_magic:#010x}")
    dims = [int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim)]
    for k, want in enumerate(expect_dims, start=1):
        if want is not None and dims[k] != want:
            raise MnistError(f"MNIST file {path} has dimensions {dims}, expected {['N', *expect_dims]}")
    n_bytes = int(np.prod(dims))
    if len(raw) - header_bytes != n_bytes:
        raise MnistError(f"MNIST file {path} holds {len(raw) - header_bytes} data bytes, "
                         f"its header {dims} says {n_bytes}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(dims).copy()


def write_idx(path, data: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip when ``path`` ends in ``.gz``)."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    header = (0x800 | data.ndim).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
    payload = header + data.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        # mtime=0 so that rewriting the same data gives the same bytes (clean diffs).
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


def _load_pair(folder: Path, split: str, limit: int | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    img_stem, lbl_stem = _FILES[split]
    paths = []
    for stem in (img_stem, lbl_stem):
        p = _find(folder, stem)
        if p is None:
            raise MnistError(f"MNIST file {stem}[.gz] not found; looked in {where}")
        paths.append(p)
    images = read_idx(paths[0], _MAGIC_IMAGES, (28, 28))
    labels = read_idx(paths[1], _MAGIC_LABELS, ())
    if images.shape[0] != labels.shape[0]:
        raise MnistError(f"MNIST {split} files disagree: {paths[0]} has {images.shape[0]} images, "
                         f"{paths[1]} has {labels.shape[0]} labels")
    if labels.size and labels.max() > 9:
        raise MnistError(f"MNIST file {paths[1]} holds label {int(labels.max())} (must be 0..9)")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def _check_args(split: str, limit) -> None:
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, not {limit!r}")


def load_mnist(split: str = "test", limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST split from the first folder that holds the data set.

    Parameters
    ----------
    split : {"train", "test"}
        60,000 training or 10,000 test digits.
    limit : int, optional
        Keep only the first ``limit`` digits.

    Returns
    -------
    images : numpy.ndarray of uint8, shape (N, 28, 28)
        Pixel intensities 0..255 (0 = background).
    labels : numpy.ndarray of uint8, shape (N,)

    Raises
    ------
    MnistError
        Missing or corrupt files (one line naming the file and the folders searched).
    ValueError
        For a bad ``split`` or ``limit``.
    """
    _check_args(split, limit)
    folder = mnist_dir(split)
    return _load_pair(folder, split, limit, str(folder))


def load_sample(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The committed sample of the test set (``data/mnist_sample/``): the first 500 test digits.

    Returns
    -------
    images : numpy.ndarray of uint8, shape (N, 28, 28)
    labels : numpy.ndarray of uint8, shape (N,)
    """
    _check_args("test", limit)
    return _load_pair(SAMPLE_DIR, "test", limit, str(SAMPLE_DIR))


def _make_sample(n: int = 500) -> None:
    """Cut the sample from the real test files (run once; the result is committed)."""
    images, labels = load_mnist("test", limit=n)
    SAMPLE_DIR.mkdir(parents=True, exist_ok=True)
    write_idx(SAMPLE_DIR / "t10k-images-idx3-ubyte.gz", images)
    write_idx(SAMPLE_DIR / "t10k-labels-idx1-ubyte.gz", labels)


if __name__ == "__main__":
    _make_sample()
