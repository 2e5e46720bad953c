"""Sources that ``tfkit.records.write`` converts: numpy, HDF5, image folders and tensorflow-datasets.

Every source has a known length, its features (a ``tfkit.records.Feature`` each) and ``read(indices)``, which yields
one example dict per index, for ascending indices. A source holds paths, never open files, so writer processes can
each open it again; nothing reads the whole dataset into memory (an ``.npz`` member is the exception: numpy cannot map
it, so use ``.npy`` files for data larger than RAM).

A Python iterator of dicts is written with ``tfkit.records.write_split`` instead.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfkit.errors import UserError
from tfkit.records import Feature

_LABEL_NAMES = ("label", "labels", "y", "target")
_IMAGE_SUFFIXES = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}
_INT64_MAX_VALUES = 16  # integer features this small are stored as an Int64List; larger ones as raw bytes
_HDF5_ROWS_PER_READ = 256


def _array_feature(name: str, array: Any, *, label: str | None) -> Feature:
    shape = tuple(int(size) for size in array.shape[1:])
    dtype = np.dtype(array.dtype)
    if dtype.kind in "iub" and math.prod(shape) <= _INT64_MAX_VALUES:
        num_classes = None
        if name == label and shape == ():
            num_classes = int(np.max(array[...])) + 1 if len(array) else None
        return Feature(dtype="int64", shape=shape, encoding="int64", num_classes=num_classes)
    if dtype.kind not in "iufb":
        raise UserError(f"feature '{name}' has dtype {dtype}; expected numbers (int, uint, float or bool arrays).")
    return Feature(dtype=dtype.name, shape=shape, encoding="raw")


def _select(available: dict[str, Any], names: Sequence[str], *, where: str) -> dict[str, Any]:
    """The entries ``--features`` names, in its order.

    Raises:
        UserError: A name the source does not hold.
    """
    missing = [name for name in names if name not in available]
    if missing:
        raise UserError(
            f"--features names {', '.join(missing)}, which {where} does not hold; expected some of "
            f"{', '.join(available)}."
        )
    return {name: available[name] for name in names}


def _pick_label(names: Sequence[str], label: str | None) -> str | None:
    if label is not None:
        if label not in names:
            raise UserError(f"--label received '{label}', which is not a feature; expected one of {', '.join(names)}.")
        return label
    return next((name for name in _LABEL_NAMES if name in names), None)


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
            self._arrays = arrays = _select(arrays, names, where=self.describe())
        lengths = {name: len(array) for name, array in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise UserError(
                f"the arrays of {self.describe()} have different lengths ({lengths}); expected one example per row "
                "in every array."
            )
        self.label = _pick_label(list(arrays), label)
        self.features = {name: _array_feature(name, array, label=self.label) for name, array in arrays.items()}
        self.length = next(iter(lengths.values()))

    def arrays(self) -> dict[str, Any]:
        """The arrays, opened lazily in each process."""
        if self._arrays is None:
            arrays: dict[str, Any] = {}
            for path in self.paths:
                if path.endswith(".npz"):
                    with np.load(path) as archive:
                        arrays.update({name: archive[name] for name in archive.files})
                else:
                    arrays[Path(path).stem] = np.load(path, mmap_mode="r")
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
        for start in range(0, len(indices), _HDF5_ROWS_PER_READ):
            chunk = indices[start : start + _HDF5_ROWS_PER_READ]
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

            handle = h5py.File(self.paths[0], "r")
            found: dict[str, Any] = {}

            def visit(name: str, item: Any) -> None:  # a callback that returned a value would stop the walk
                if isinstance(item, h5py.Dataset):
                    found[name] = item

            handle.visititems(visit)
            if not found:
                raise UserError(f"HDF5 file '{self.paths[0]}' holds no datasets; expected arrays of examples.")
            leading = max((len(item) for item in found.values() if item.shape), default=0)
            self._arrays = {name: item for name, item in found.items() if item.shape and len(item) == leading}
        return self._arrays


class ImageFolderSource:
    """A folder of images in class subfolders (``root/cat/001.jpg``); JPEG and PNG are kept encoded.

    Features: ``image`` (``jpeg`` or ``png``, its shape read from the headers; -1 where sizes vary) and ``label``
    (the class index, with the class names in the schema).
    """

    parallel = True

    def __init__(self, root: str) -> None:
        self.root = root
        classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
        if not classes:
            raise UserError(f"image folder '{root}' has no class subfolders; expected root/CLASS/IMAGE.jpg.")
        self.files: list[tuple[str, int]] = []
        for label, name in enumerate(classes):
            folder = Path(root) / name
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in _IMAGE_SUFFIXES:
                    self.files.append((str(path), label))
        if not self.files:
            raise UserError(f"image folder '{root}' has no .jpg, .jpeg or .png files in its class subfolders.")
        kinds = {_IMAGE_SUFFIXES[Path(path).suffix.lower()] for path, _ in self.files}
        if len(kinds) > 1:
            raise UserError(
                f"image folder '{root}' mixes JPEG and PNG files; expected one format. Convert them to one first."
            )
        shapes = {_image_shape(path) for path, _ in self.files}
        channels = {shape[2] for shape in shapes}
        shape = tuple(
            sizes.pop() if len(sizes) == 1 else -1 for sizes in ({s[0] for s in shapes}, {s[1] for s in shapes})
        )
        self.features = {
            "image": Feature(dtype="uint8", shape=(*shape, max(channels)), encoding=kinds.pop()),
            "label": Feature(
                dtype="int64", shape=(), encoding="int64", num_classes=len(classes), classes=tuple(classes)
            ),
        }
        self.example_bytes = max(1, sum(os.path.getsize(path) for path, _ in self.files) // len(self.files))

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> str:
        """The source in words, for messages."""
        return f"image folder '{self.root}'"

    def read(self, indices: np.ndarray) -> Iterator[dict[str, Any]]:
        """Yields the examples at ``indices``: the file's bytes, unchanged, and the class index."""
        for index in indices.tolist():
            path, label = self.files[index]
            yield {"image": Path(path).read_bytes(), "label": np.int64(label)}


class TFDSSource:
    """A tensorflow-datasets dataset already prepared on disk (``tfds.builder_from_directory``), read in order."""

    parallel = True

    def __init__(
        self, directory: str, *, split: str = "train", label: str | None = None, names: Sequence[str] | None = None
    ) -> None:
        self.directory = directory
        self.split = split
        builder = self._builder()
        if split not in builder.info.splits:
            raise UserError(
                f"tensorflow-datasets folder '{directory}' has no split '{split}'; expected one of "
                f"{', '.join(builder.info.splits)}."
            )
        self.length = int(builder.info.splits[split].num_examples)
        spec = builder.as_dataset(split=f"{split}[:1]").element_spec
        if not isinstance(spec, dict):
            raise UserError(f"tensorflow-datasets '{directory}' yields {type(spec).__name__}; expected a dict.")
        if names:
            spec = _select(spec, names, where=directory)
        self.label = _pick_label(list(spec), label)
        self.features: dict[str, Feature] = {}
        for name, item in spec.items():
            if not hasattr(item, "shape") or not item.shape.is_fully_defined():
                raise UserError(
                    f"tensorflow-datasets feature '{name}' has no fixed shape ({getattr(item, 'shape', item)}); "
                    "expected fixed-shape tensors. Pick features with --features."
                )
            shape = tuple(item.shape.as_list())
            if item.dtype.name == "string":
                self.features[name] = Feature(dtype="string", shape=(), encoding="string")
            elif item.dtype.is_integer and math.prod(shape) <= _INT64_MAX_VALUES:
                classes = getattr(builder.info.features[name], "num_classes", None)
                self.features[name] = Feature(dtype="int64", shape=shape, encoding="int64", num_classes=classes)
            else:
                self.features[name] = Feature(dtype=item.dtype.name, shape=shape, encoding="raw")
        self.example_bytes = max(1, sum(feature.example_bytes for feature in self.features.values()))

    def _builder(self) -> Any:
        import tensorflow_datasets as tfds  # an optional dependency: tfkit[tfds]

        return tfds.builder_from_directory(self.directory)

    def __len__(self) -> int:
        return self.length

    def describe(self) -> str:
        """The source in words, for messages."""
        return f"tensorflow-datasets '{self.directory}' split {self.split}"

    def read(self, indices: np.ndarray) -> Iterator[dict[str, Any]]:
        """Yields the examples at ascending ``indices``, reading each contiguous run as a split slice."""
        builder = self._builder()
        runs = np.split(indices, np.flatnonzero(np.diff(indices) != 1) + 1) if len(indices) else []
        for run in runs:
            dataset = builder.as_dataset(split=f"{self.split}[{int(run[0])}:{int(run[-1]) + 1}]", shuffle_files=False)
            for example in dataset.as_numpy_iterator():
                yield {name: example[name] for name in self.features}


def open_source(
    paths: Sequence[str], *, features: Sequence[str] | None = None, label: str | None = None, tfds_split: str = "train"
) -> Any:
    """Opens what ``python -m tfkit.records write`` was given.

    Raises:
        UserError: A missing path, or one that is no known kind of source.
    """
    for path in paths:
        if not os.path.exists(path):
            raise UserError(f"source '{path}' does not exist; expected a file or folder to convert. Check the path.")
    first = paths[0]
    suffix = Path(first).suffix.lower()
    if all(Path(path).suffix.lower() == ".npy" for path in paths) or (len(paths) == 1 and suffix == ".npz"):
        return ArraySource(paths, names=features, label=label)
    if len(paths) > 1:
        raise UserError(f"received {len(paths)} sources; expected one, or several .npy files.")
    if suffix in (".h5", ".hdf5", ".he5", ".nc"):
        return HDF5Source(first, names=features, label=label)
    if os.path.isdir(first):
        if os.path.exists(os.path.join(first, "dataset_info.json")):
            return TFDSSource(first, split=tfds_split, label=label, names=features)
        return ImageFolderSource(first)
    raise UserError(
        f"source '{first}' is not a kind tfkit.records can read; expected .npy, .npz, .h5/.hdf5, a folder of images "
        "in class subfolders, or a prepared tensorflow-datasets folder (with dataset_info.json)."
    )


def _image_shape(path: str) -> tuple[int, int, int]:
    """(height, width, channels) from a JPEG's or PNG's header, without decoding it."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        width, height = struct.unpack(">II", head[16:24])
        color = head[25]
        return height, width, {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(color, 3)
    if head[:2] == b"\xff\xd8":
        offset = 2
        while offset + 9 < len(head):
            if head[offset] != 0xFF:
                break
            marker = head[offset + 1]
            (length,) = struct.unpack(">H", head[offset + 2 : offset + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", head[offset + 5 : offset + 9])
                return height, width, head[offset + 9]
            offset += 2 + length
    raise UserError(f"image '{path}' is not a readable JPEG or PNG; expected a valid file. Remove or re-save it.")
