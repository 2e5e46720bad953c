"""Whether records match a schema: each feature present, of its kind and length, images in their format and size.

Checked in Python on parsed records (no TensorFlow), so a schema a person edited, or one inferred from a sample, fails
with one line naming the file, the record and the fix, before a training step meets the record.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from tfkit.errors import UserError
from tfkit.records.example import parse
from tfkit.records.framing import read_records
from tfkit.records.infer import encoded_image_shape
from tfkit.records.schema import IMAGE_ENCODINGS, Feature, Schema

_MAGIC = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}
_FIX = "Fix the schema (python -m tfkit.records schema GLOB --out FILE writes one from the data) or the data."


def check_record(
    example: dict[str, Any], schema: Schema, *, file: str, record: int, names: Sequence[str] | None = None
) -> None:
    """Checks one parsed record (``tfkit.records.parse``) against the schema's features (or only ``names``).

    Raises:
        UserError: The first mismatch, naming the file, the record and the fix.
    """
    for name in names if names is not None else list(schema.features):
        feature = schema.features[name]
        where = f"{file}: record {record}: feature '{name}'"
        if name not in example:
            raise UserError(f"{where} is missing; the schema expects it. {_FIX}")
        problem = _mismatch(example[name], feature)
        if problem:
            raise UserError(f"{where} {problem}. {_FIX}")


def check_sample(
    schema: Schema,
    folder: str | os.PathLike[str] | Sequence[str],
    *,
    names: Sequence[str] | None = None,
    records: int = 8,
) -> None:
    """Checks the first ``records`` records of the first shard, and the first record of every other local shard.

    Raises:
        UserError: The first mismatch, naming the file, the record and the fix.
    """
    for index, path in enumerate(schema.files(folder)):
        if index and "://" in path:
            break  # a remote shard costs a request to open; the first one speaks for them
        if not os.path.exists(path) and "://" not in path:
            raise UserError(f"{path}: the schema lists it, and it does not exist. {_FIX}")
        for number, serialized in enumerate(read_records(path, schema.compression)):
            check_record(parse(serialized), schema, file=path, record=number, names=names)
            if number + 1 >= (records if index == 0 else 1):
                break


def _mismatch(values: list[Any], feature: Feature) -> str | None:
    """What is wrong with one feature's values, in words; None when they match."""
    if feature.encoding in ("int64", "float"):
        kind = int if feature.encoding == "int64" else float
        if values and not isinstance(values[0], kind):
            return f"holds {_kind(values)} values; the schema says {feature.encoding} ({feature.dtype})"
        expected = math.prod(feature.shape)
        if expected >= 0 and len(values) != expected:
            return f"holds {len(values)} value(s); the schema says shape {list(feature.shape)} ({expected})"
        return None
    if values and not isinstance(values[0], bytes):
        return f"holds {_kind(values)} values; the schema says {feature.encoding} bytes"
    if feature.encoding == "string":
        return None
    if len(values) != 1:
        return f"holds {len(values)} bytes values; the schema says one ({feature.encoding})"
    data = values[0]
    if feature.encoding == "raw":
        if feature.example_bytes and len(data) != feature.example_bytes:
            return (
                f"holds {len(data)} bytes; the schema's {feature.dtype} {list(feature.shape)} needs "
                f"{feature.example_bytes}"
            )
        return None
    if feature.encoding in IMAGE_ENCODINGS:
        if not data.startswith(_MAGIC[feature.encoding]):
            return f"is not a {feature.encoding.upper()} image; the schema says {feature.encoding}"
        shape = encoded_image_shape(data, "image")
        for axis, (found, declared) in enumerate(zip(shape[:2], feature.shape[:2], strict=True)):
            if declared >= 0 and found != declared:
                side = ("height", "width")[axis]
                return (
                    f"is an image of {shape[0]}x{shape[1]}; the schema says {side} {declared} (set it to -1 for "
                    "images of varying size, with data.image_size to resize them)"
                )
    return None


def _kind(values: list[Any]) -> str:
    return {bytes: "bytes", int: "int64", float: "float"}.get(type(values[0]), type(values[0]).__name__)
