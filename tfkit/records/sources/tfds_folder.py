"""A prepared tensorflow-datasets folder as a source (``tfds.builder_from_directory``), read in order.

Image features (tf_flowers, cassava, oxford_flowers102: images of varying size) are kept encoded: their JPEG or PNG
bytes are copied as they are stored, never decoded, with -1 in the schema's shape where sizes vary.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tfkit.errors import UserError
from tfkit.records.schema import Feature
from tfkit.records.sources.source import INT64_MAX_VALUES, pick_label, select_features


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
        self.encoded = [name for name, item in builder.info.features.items() if type(item).__name__ == "Image"]
        first = builder.as_dataset(split=f"{split}[:1]", decoders=self._decoders())
        spec = first.element_spec
        if not isinstance(spec, dict):
            raise UserError(f"tensorflow-datasets '{directory}' yields {type(spec).__name__}; expected a dict.")
        if names:
            spec = select_features(spec, names, where=directory)
        self.label = pick_label(list(spec), label)
        self.features: dict[str, Feature] = {}
        sample: dict[str, Any] = next(first.as_numpy_iterator(), {}) if self.encoded else {}
        for name, item in spec.items():
            if name in self.encoded:
                self.features[name] = _image_feature(builder.info.features[name], sample.get(name, b""))
                continue
            if not hasattr(item, "shape") or not item.shape.is_fully_defined():
                raise UserError(
                    f"tensorflow-datasets feature '{name}' has no fixed shape ({getattr(item, 'shape', item)}); "
                    "expected fixed-shape tensors. Pick features with --features."
                )
            shape = tuple(item.shape.as_list())
            if item.dtype.name == "string":
                self.features[name] = Feature(dtype="string", shape=(), encoding="string")
            elif item.dtype.is_integer and math.prod(shape) <= INT64_MAX_VALUES:
                classes = getattr(builder.info.features[name], "num_classes", None)
                self.features[name] = Feature(dtype="int64", shape=shape, encoding="int64", num_classes=classes)
            else:
                self.features[name] = Feature(dtype=item.dtype.name, shape=shape, encoding="raw")
        self.example_bytes = max(1, sum(feature.example_bytes for feature in self.features.values()))

    def _builder(self) -> Any:
        import tensorflow_datasets as tfds  # an optional dependency: tfkit[tfds]

        return tfds.builder_from_directory(self.directory)

    def _decoders(self) -> dict[str, Any] | None:
        """Image features read as their encoded bytes (``SkipDecoding``), not decoded pixels."""
        if not self.encoded:
            return None
        import tensorflow_datasets as tfds  # an optional dependency: tfkit[tfds]

        return {name: tfds.decode.SkipDecoding() for name in self.encoded}

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
            dataset = builder.as_dataset(
                split=f"{self.split}[{int(run[0])}:{int(run[-1]) + 1}]", shuffle_files=False, decoders=self._decoders()
            )
            for example in dataset.as_numpy_iterator():
                yield {name: example[name] for name in self.features}


def _image_feature(info: Any, first: bytes) -> Feature:
    """An encoded image feature: its format from the dataset's info or the first image's bytes, -1 where sizes vary."""
    shape = tuple(-1 if size is None else int(size) for size in info.shape)
    encoding = getattr(info, "encoding_format", None) or ("png" if first.startswith(b"\x89PNG") else "jpeg")
    if encoding not in ("jpeg", "png"):
        raise UserError(f"a tensorflow-datasets image feature is encoded as {encoding}; expected jpeg or png.")
    return Feature(dtype="uint8", shape=shape, encoding=encoding)
