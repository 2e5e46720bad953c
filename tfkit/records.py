"""Writing TFRecord shards with a schema that lets any reader decode them without code.

A split is a folder holding ``SPLIT-00000-of-0000N.tfrecord`` shards and a ``schema.json``:

.. code-block:: json

    {"format": "tfkit.records/1", "split": "train", "compression": null, "records": 1437,
     "features": {"image": {"dtype": "float32", "shape": [8, 8, 1], "encoding": "raw"},
                  "label": {"dtype": "int64", "shape": [], "encoding": "int64", "num_classes": 10}},
     "shards": [{"file": "train-00000-of-00004.tfrecord", "records": 360, "bytes": 191520}]}

Arrays are stored as raw bytes (``encoding: raw``), not as ``FloatList``, which is about 50x slower to write. Shards
are written under a temporary name and renamed when complete, and the schema is written last, so an interrupted write
never leaves a folder that looks complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfkit.errors import UserError

SCHEMA_FILE = "schema.json"
FORMAT = "tfkit.records/1"
ENCODINGS = ("raw", "int64")


@dataclasses.dataclass(frozen=True)
class Feature:
    """One feature of a record.

    Attributes:
        dtype: A numpy dtype name, e.g. ``float32`` or ``int64``.
        shape: The shape of one example's value; ``()`` for a scalar.
        encoding: ``raw`` (array bytes in a BytesList) or ``int64`` (an Int64List).
        num_classes: For labels, how many classes there are; None otherwise.
    """

    dtype: str
    shape: tuple[int, ...]
    encoding: str = "raw"
    num_classes: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Returns the schema entry for this feature."""
        entry: dict[str, Any] = {"dtype": self.dtype, "shape": list(self.shape), "encoding": self.encoding}
        if self.num_classes is not None:
            entry["num_classes"] = self.num_classes
        return entry


@dataclasses.dataclass(frozen=True)
class Schema:
    """A split's schema: its features, shards and record counts."""

    split: str
    features: dict[str, Feature]
    shards: tuple[dict[str, Any], ...]
    records: int
    compression: str | None = None

    def files(self, folder: str | os.PathLike[str]) -> list[str]:
        """Returns the shard paths, in order, under ``folder``."""
        return [os.path.join(os.fspath(folder), shard["file"]) for shard in self.shards]


def shard_name(split: str, index: int, count: int) -> str:
    """Returns ``SPLIT-00000-of-00016.tfrecord``-style names."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def write_split(
    examples: Iterable[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    *,
    split: str,
    features: Mapping[str, Feature],
    num_shards: int,
) -> Schema:
    """Writes examples into ``num_shards`` shards and a schema, streaming.

    Example ``i`` goes to shard ``i % num_shards``, so the shards stay balanced without knowing the count up front.

    Args:
        examples: Mappings from feature name to a value of that feature's dtype and shape.
        out_dir: The split's folder; created if missing.
        split: The split name used in the shard names.
        features: The schema of each example.
        num_shards: How many shard files to write.

    Returns:
        The schema written to ``out_dir/schema.json``.

    Raises:
        UserError: An example does not match the schema, or there are no examples.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SCHEMA_FILE).unlink(missing_ok=True)  # the folder is incomplete until the schema is back
    names = [shard_name(split, index, num_shards) for index in range(num_shards)]
    temporary = [out / f".{name}.tmp" for name in names]
    writers = [tf.io.TFRecordWriter(str(path)) for path in temporary]
    counts = [0] * num_shards
    try:
        for index, example in enumerate(examples):
            record = encode(example, features)
            writers[index % num_shards].write(record)
            counts[index % num_shards] += 1
    finally:
        for writer in writers:
            writer.close()
    if sum(counts) == 0:
        for path in temporary:
            path.unlink(missing_ok=True)
        raise UserError(f"no examples were given for split '{split}'; expected at least one. Check the source.")
    shards = []
    for name, path, count in zip(names, temporary, counts, strict=True):
        os.replace(path, out / name)
        shards.append({"file": name, "records": count, "bytes": (out / name).stat().st_size})
    schema = Schema(split=split, features=dict(features), shards=tuple(shards), records=sum(counts))
    _write_schema(schema, out)
    return schema


def encode(example: Mapping[str, Any], features: Mapping[str, Feature]) -> bytes:
    """Serialises one example as a ``tf.train.Example``.

    Raises:
        UserError: A feature is missing, extra, or of the wrong shape.
    """
    if set(example) != set(features):
        raise UserError(
            f"example has features {sorted(example)}; expected exactly {sorted(features)} as in the schema."
        )
    encoded = {}
    for name, spec in features.items():
        value = np.asarray(example[name], dtype=spec.dtype)
        if value.shape != tuple(spec.shape):
            raise UserError(f"feature '{name}' has shape {value.shape}; expected {tuple(spec.shape)} as in the schema.")
        if spec.encoding == "raw":
            encoded[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.tobytes()]))
        else:
            encoded[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=value.reshape(-1).tolist()))
    return tf.train.Example(features=tf.train.Features(feature=encoded)).SerializeToString()


def read_schema(folder: str | os.PathLike[str]) -> Schema:
    """Reads a split's schema, locally or on ``gs://``.

    Raises:
        UserError: The folder or its schema is missing or malformed.
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, SCHEMA_FILE)
    if not tf.io.gfile.exists(path):
        if not tf.io.gfile.exists(folder):
            raise UserError(f"data folder '{folder}' does not exist; expected a folder of TFRecords. Check the path.")
        raise UserError(
            f"data folder '{folder}' has no {SCHEMA_FILE}; expected one written by tfkit.records (an interrupted "
            "write leaves none). Write the data again."
        )
    try:
        raw = json.loads(tf.io.gfile.GFile(path).read())
        features = {
            name: Feature(
                dtype=entry["dtype"],
                shape=tuple(entry["shape"]),
                encoding=entry["encoding"],
                num_classes=entry.get("num_classes"),
            )
            for name, entry in raw["features"].items()
        }
        schema = Schema(
            split=raw["split"],
            features=features,
            shards=tuple(raw["shards"]),
            records=int(raw["records"]),
            compression=raw.get("compression"),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"schema '{path}' is malformed ({error}); expected a tfkit.records schema.") from None
    for name, feature in schema.features.items():
        if feature.encoding not in ENCODINGS:
            raise UserError(
                f"schema '{path}': feature '{name}' has encoding '{feature.encoding}'; expected one of {ENCODINGS}."
            )
    return schema


def _write_schema(schema: Schema, out: Path) -> None:
    body = {
        "format": FORMAT,
        "split": schema.split,
        "compression": schema.compression,
        "records": schema.records,
        "features": {name: feature.to_json() for name, feature in schema.features.items()},
        "shards": list(schema.shards),
    }
    temporary = out / f".{SCHEMA_FILE}.tmp"
    temporary.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(temporary, out / SCHEMA_FILE)
