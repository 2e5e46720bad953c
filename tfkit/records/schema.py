"""What a split holds: its features, its shards and their record counts, as written in its ``schema.json``."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

SCHEMA_FILE = "schema.json"
FORMAT = "tfkit.records/1"
ENCODINGS = ("raw", "int64", "float", "jpeg", "png", "string")  # float: a FloatList, as foreign records have
IMAGE_ENCODINGS = ("jpeg", "png")
COMPRESSIONS = ("GZIP", "ZLIB")


@dataclasses.dataclass(frozen=True)
class NonFinite:
    """How many NaN or infinite values a float feature holds, counted by ``records write`` over every record.

    Attributes:
        count: Non-finite values in the whole split (0: every value is finite).
        first_record: The index in the split (shards in order) of the first record holding one; None when none does.
    """

    count: int
    first_record: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Returns the schema entry, ``{"count": N, "first_record": i}``."""
        entry: dict[str, Any] = {"count": self.count}
        if self.first_record is not None:
            entry["first_record"] = self.first_record
        return entry

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> NonFinite:
        """Reads a schema entry written by ``to_json``.

        Raises:
            KeyError, TypeError, ValueError: The entry is malformed.
        """
        first = entry.get("first_record")
        return cls(count=int(entry["count"]), first_record=None if first is None else int(first))


@dataclasses.dataclass(frozen=True)
class Feature:
    """One feature of a record.

    Attributes:
        dtype: A numpy dtype name of the decoded value, e.g. ``float32``, ``int64``, ``uint8``; ``string`` for bytes.
        shape: The shape of one example's decoded value; ``()`` for a scalar; -1 where images vary.
        encoding: One of ``ENCODINGS``.
        num_classes: For labels, how many classes there are; None otherwise.
        classes: For labels, the class names in index order, when known.
        nonfinite: For float features written by ``records write``, the NaN/inf count; None when not counted
            (data written elsewhere, which training checks on its first batches instead).
    """

    dtype: str
    shape: tuple[int, ...]
    encoding: str = "raw"
    num_classes: int | None = None
    classes: tuple[str, ...] | None = None
    nonfinite: NonFinite | None = None

    def to_json(self) -> dict[str, Any]:
        """Returns the schema entry for this feature."""
        entry: dict[str, Any] = {"dtype": self.dtype, "shape": list(self.shape), "encoding": self.encoding}
        if self.num_classes is not None:
            entry["num_classes"] = self.num_classes
        if self.classes is not None:
            entry["classes"] = list(self.classes)
        if self.nonfinite is not None:
            entry["nonfinite"] = self.nonfinite.to_json()
        return entry

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Feature:
        """Reads a schema entry written by ``to_json``.

        Raises:
            KeyError, TypeError, ValueError: The entry is malformed.
        """
        return cls(
            dtype=entry["dtype"],
            shape=tuple(entry["shape"]),
            encoding=entry["encoding"],
            num_classes=entry.get("num_classes"),
            classes=tuple(entry["classes"]) if entry.get("classes") else None,
            nonfinite=NonFinite.from_json(entry["nonfinite"]) if entry.get("nonfinite") is not None else None,
        )

    @property
    def example_bytes(self) -> int:
        """Bytes of one decoded value (0 when its size varies)."""
        if self.dtype == "string" or any(size < 0 for size in self.shape):
            return 0
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    @property
    def is_float(self) -> bool:
        """Whether the decoded values are floating point numbers, which can be NaN or infinite."""
        if self.encoding != "raw" or self.dtype == "string":
            return False
        try:
            return np.dtype(self.dtype).kind == "f"
        except TypeError:  # a dtype numpy does not know without its extensions (bfloat16): not counted
            return False


@dataclasses.dataclass(frozen=True)
class Shard:
    """One shard file of a split.

    Attributes:
        file: The file's name in the split's folder, or an absolute path (a glob's match, a repaired copy).
        records: How many records it holds.
        bytes: Its size on disk; 0 when not known.
    """

    file: str
    records: int
    bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """Returns the schema entry for this shard."""
        return {"file": self.file, "records": self.records, "bytes": self.bytes}

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Shard:
        """Reads a schema entry written by ``to_json``.

        Raises:
            KeyError, TypeError, ValueError: The entry is malformed.
        """
        return cls(file=str(entry["file"]), records=int(entry["records"]), bytes=int(entry.get("bytes", 0)))


@dataclasses.dataclass(frozen=True)
class Schema:
    """A split's schema: its features, shards and record counts.

    ``skipped`` lists records a reader with ``data.skip_corrupt`` leaves out (see tfkit.data); it is never written.
    ``inferred`` holds, for a schema inferred from foreign records, the body to keep in the run's workdir (the
    schema before a reader resized images or repaired shards); None otherwise.
    """

    split: str
    features: dict[str, Feature]
    shards: tuple[Shard, ...]
    records: int
    compression: str | None = None
    skipped: tuple[dict[str, Any], ...] = ()
    inferred: dict[str, Any] | None = dataclasses.field(default=None, compare=False, repr=False)

    def files(self, folder: str | os.PathLike[str] | Sequence[str]) -> list[str]:
        """Returns the shard paths, in order, under ``folder`` (a shard's own absolute path is kept).

        ``folder`` may be a list of globs (``data.train``): the shards of such a schema hold their own paths.
        """
        base = os.fspath(folder) if isinstance(folder, (str, os.PathLike)) else ""
        return [os.path.join(base, shard.file) for shard in self.shards]

    @property
    def bytes(self) -> int:
        """Bytes of all shards on disk."""
        return sum(shard.bytes for shard in self.shards)

    def to_json(self) -> dict[str, Any]:
        """Returns the body of ``schema.json``."""
        return {
            "format": FORMAT,
            "split": self.split,
            "compression": self.compression,
            "records": self.records,
            "features": {name: feature.to_json() for name, feature in self.features.items()},
            "shards": [shard.to_json() for shard in self.shards],
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Schema:
        """Reads the body of a ``schema.json``.

        Raises:
            KeyError, TypeError, ValueError: The body is malformed.
        """
        return cls(
            split=body["split"],
            features={name: Feature.from_json(entry) for name, entry in body["features"].items()},
            shards=tuple(Shard.from_json(entry) for entry in body["shards"]),
            records=int(body["records"]),
            compression=body.get("compression"),
        )


def shard_name(split: str, index: int, count: int) -> str:
    """Returns ``SPLIT-00000-of-00016.tfrecord``-style names."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"
