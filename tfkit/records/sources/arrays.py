"""Arrays as a source: ``.npy`` files, the arrays of an ``.npz``, and the datasets of an HDF5 file."""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfkit.errors import UserError
from tfkit.records.schema import Feature
from tfkit.records.sources.source import INT64_MAX_VALUES, pick_label, select_features

_ROWS_PER_READ = 256


def _array_feature(name: str, array: Any, *, label: str | None) -> Feature:
    shape = tuple(int(size) for size in array.shape[1:])
    dtype = np.dtype(array.dtype)
    if dtype.kind in "iub" and math.prod(shape) <= INT64_MAX_VALUES:
        num_classes = None
        if name == label and shape == () and len(array):
            values = np.asarray(array[...])
            negative = np.flatnonzero(values < 0)
            if len(negative):
                raise UserError(
                    f"label '{name}' is {values[negative[0]]} in record {negative[0]} ({len(negative)} record(s) hold "
                    "a negative label); expected class numbers 0 to num_classes-1. Fix those labels."
                )
            num_classes = int(np.max(values)) + 1
        return Feature(dtype="int64", shape=shape, encoding="int64", num_classes=num_classes)
    if dtype.kind not in "iufb":
        raise UserError(f"feature '{name}' has dtype {dtype}; expected numbers (int, uint, float or bool arrays).")
    return Feature(dtype=dtype.name, shape=shape, encoding="raw")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _load(path: str) -> dict[str, Any]:
    """The arrays of one ``.npz`` (read whole) or ``.npy`` (memory-mapped), by feature name.

    Raises:
        UserError: The file is empty, truncated, corrupt, or holds Python objects.
    """
    kind = "an .npz archive" if path.endswith(".npz") else "an .npy file"
    try:
        if path.endswith(".npz"):
            with np.load(path) as archive:
                return {name: archive[name] for name in archive.files}
        return {Path(path).stem: np.load(path, mmap_mode="r")}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        reason = _first_line(error)
        if "allow_pickle" in reason:
            reason = "it holds Python objects (object dtype), which tfkit does not unpickle"
        raise UserError(
            f"'{path}' cannot be read as {kind} ({reason}); expected arrays of numbers saved with numpy "
            "(np.save/np.savez). Save the data again."
        ) from None


class ArraySource:
    """``.npy`` files (one feature each, named by the file's stem) or the arrays of one ``.npz``.

    ``.npy`` files are memory-mapped, so a file larger than RAM converts.
    """

    parallel = True

    def __init__(self, paths: Sequence[str], *, names: Sequence[str] | None = None, label: str | None = None) -> None:
        self.paths = [str(path) for path in paths]
        self._arrays: dict[str, Any] | None = None
        arrays = self.arrays()
        if names:
            self._arrays = arrays = select_features(arrays, names, where=self.describe())
        if not arrays:
            raise UserError(f"{self.describe()} holds no arrays; expected one array of examples per feature.")
        lengths = {name: len(array) for name, array in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise UserError(
                f"the arrays of {self.describe()} have different numbers of rows ({lengths}); expected one example "
                "per row in every array. Pick the ones that belong together with --features."
            )
        self.label = pick_label(list(arrays), label)
        self.features = {name: _array_feature(name, array, label=self.label) for name, array in arrays.items()}
        self.length = next(iter(lengths.values()))

    def arrays(self) -> dict[str, Any]:
        """The arrays, opened lazily in each process."""
        if self._arrays is None:
            arrays: dict[str, Any] = {}
            for path in self.paths:
                arrays.update(_load(path))
            self._arrays = arrays
        return self._arrays

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": None}

    def __len__(self) -> int:
        return self.length

    @property
    def example_bytes(self) -> int:
        """Bytes of one example."""
        return sum(feature.example_bytes for feature in self.features.values())

    def describe(self) -> str:
        """The source in words, for messages."""
        return ", ".join(self.paths)

    def read(self, indices: np.ndarray) -> Iterator[dict[str, Any]]:
        """Yields the examples at ascending ``indices``."""
        arrays = self.arrays()
        for start in range(0, len(indices), _ROWS_PER_READ):
            chunk = indices[start : start + _ROWS_PER_READ]
            if chunk[-1] - chunk[0] + 1 == len(chunk):  # a contiguous run: one slice (h5py's fancy indexing is slow)
                rows: Any = slice(int(chunk[0]), int(chunk[-1]) + 1)
            else:
                rows = chunk
            block = {name: np.asarray(arrays[name][rows]) for name in self.features}
            for row in range(len(chunk)):
                yield {name: values[row] for name, values in block.items()}


class HDF5Source(ArraySource):
    """The datasets of an HDF5 file that share a first dimension, read in chunks through h5py.

    Only a chunk of rows is in memory at a time, so a file larger than RAM converts.
    """

    def __init__(self, path: str, *, names: Sequence[str] | None = None, label: str | None = None) -> None:
        super().__init__([path], names=names, label=label)

    def arrays(self) -> dict[str, Any]:
        """The file's datasets, opened lazily in each process."""
        if self._arrays is None:
            import h5py  # an optional dependency: tfkit[hdf5]

            try:
                handle = h5py.File(self.paths[0], "r")
            except OSError as error:
                raise UserError(
                    f"HDF5 file '{self.paths[0]}' cannot be read ({_first_line(error)}); expected an intact HDF5 "
                    "file. Write or copy it again."
                ) from None
            found: dict[str, Any] = {}

            def visit(name: str, item: Any) -> None:  # a callback that returned a value would stop the walk
                if isinstance(item, h5py.Dataset):
                    found[name] = item

            handle.visititems(visit)
            if not found:
                raise UserError(f"HDF5 file '{self.paths[0]}' holds no datasets; expected arrays of examples.")
            # Scalar datasets are attributes of the file, not examples; every other one must have a row per example
            # (ArraySource checks that, naming the lengths).
            self._arrays = {name: item for name, item in found.items() if item.shape}
        return self._arrays
