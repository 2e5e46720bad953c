"""Verifying a split: every record's framing and CRCs, the record counts its schema promises, and NaN/inf values."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from tfkit.records import files
from tfkit.records.example import parse
from tfkit.records.framing import Problem, read_records, scan
from tfkit.records.schema import Feature, Schema
from tfkit.records.schema_file import read_schema


@dataclasses.dataclass(frozen=True)
class NonFiniteRecord:
    """A record holding NaN or infinite values: its shard, its index there and in the split, and the counts."""

    file: str
    record: int
    split_record: int
    counts: dict[str, int]

    def describe(self) -> str:
        """``train-00000-of-00002.tfrecord: record 17 (record 17 of the split): feature 'x' holds 3 NaN/inf``."""
        held = ", ".join(f"feature '{name}' holds {count} NaN/inf" for name, count in self.counts.items())
        return f"{self.file}: record {self.record} (record {self.split_record} of the split): {held}"


def count_nonfinite(example: Mapping[str, Any], features: Mapping[str, Feature]) -> dict[str, int]:
    """NaN and infinite values in each float feature of one example (features with none are left out).

    Args:
        example: Feature name to value: a numpy array (what a source yields) or the raw bytes of a parsed record.
        features: The schema's features; only float features are counted.
    """
    counts = {}
    for name, feature in features.items():
        if not feature.is_float or name not in example:
            continue
        value = example[name]
        if isinstance(value, list):  # a parsed record: one bytes value
            value = value[0] if len(value) == 1 and isinstance(value[0], bytes) else b""
        if isinstance(value, (bytes, bytearray, memoryview)):
            size = np.dtype(feature.dtype).itemsize
            value = np.frombuffer(value, dtype=feature.dtype, count=len(value) // size)
        count = int(np.count_nonzero(~np.isfinite(np.asarray(value, dtype=feature.dtype))))
        if count:
            counts[name] = count
    return counts


def verify(folder: str | os.PathLike[str]) -> tuple[Schema, list[Problem], list[int]]:
    """Verifies every shard of a split: framing, CRCs, and the record counts the schema promises.

    Returns:
        The schema, every problem found, and the good records counted per shard.

    Raises:
        UserError: The folder or its schema is missing or malformed.
    """
    schema = read_schema(folder)
    problems: list[Problem] = []
    counts = []
    for shard, path in zip(schema.shards, schema.files(folder), strict=True):
        if not files.exists(path):
            problems.append(Problem(shard.file, 0, 0, "missing: the schema lists it, the folder does not have it"))
            counts.append(0)
            continue
        good, found, _ = scan(path, schema.compression)
        problems += found
        counts.append(good)
        if not found and good != shard.records:
            problems.append(Problem(shard.file, good, 0, f"holds {good} records; the schema says {shard.records}"))
    return schema, problems, counts


def nonfinite_records(folder: str | os.PathLike[str], schema: Schema) -> Iterator[NonFiniteRecord]:
    """Yields every record of a split whose float features hold NaN or infinite values, in order.

    Shards that are missing or corrupt are passed over (``verify`` names them); their records still count in the
    split's record numbers by what the schema says they hold.
    """
    floats = {name: feature for name, feature in schema.features.items() if feature.is_float}
    offset = 0
    for shard, path in zip(schema.shards, schema.files(folder), strict=True):
        if floats and files.exists(path) and not scan(path, schema.compression)[1]:
            for index, serialized in enumerate(read_records(path, schema.compression)):
                counts = count_nonfinite(parse(serialized), floats)
                if counts:
                    yield NonFiniteRecord(shard.file, index, offset + index, counts)
        offset += shard.records
