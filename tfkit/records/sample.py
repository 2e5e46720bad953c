"""A split's first record, decoded by its schema into numpy values without TensorFlow (for ``inspect``).

Raw arrays are read with numpy, int64 lists from the Example's wire format, images with Pillow. Training decodes
records with TensorFlow instead (tfkit.data); both follow the same schema.
"""

from __future__ import annotations

import os

import numpy as np

from tfkit.errors import UserError
from tfkit.records.example import parse
from tfkit.records.framing import read_records
from tfkit.records.images import decode_image
from tfkit.records.schema import IMAGE_ENCODINGS, Feature, Schema


def first_example(folder: str | os.PathLike[str], schema: Schema) -> dict[str, np.ndarray]:
    """The first record of a split, decoded by its schema (every feature), as numpy values.

    Strings come back as 0-d object arrays holding the bytes.

    Raises:
        UserError: The split holds no records, or its first record does not match the schema.
    """
    for path in schema.files(folder)[:1]:
        for serialized in read_records(path, schema.compression):
            values = parse(serialized)
            return {name: _decode(name, values.get(name, []), feature) for name, feature in schema.features.items()}
    raise UserError(f"'{os.fspath(folder)}' holds no records; expected at least one. Write the data again.")


def _decode(name: str, values: list[bytes] | list[int] | list[float], feature: Feature) -> np.ndarray:
    if feature.encoding in ("int64", "float"):
        numbers = np.asarray(values, dtype=np.int64 if feature.encoding == "int64" else np.float32)
        if numbers.size != np.prod(feature.shape, dtype=np.int64):
            raise UserError(f"feature '{name}' holds {numbers.size} numbers; expected shape {list(feature.shape)}.")
        return numbers.reshape(feature.shape).astype(feature.dtype)
    if len(values) != 1 or not isinstance(values[0], bytes):
        raise UserError(f"feature '{name}' holds {len(values)} value(s); expected one bytes value as in the schema.")
    data = values[0]
    if feature.encoding == "raw":
        if len(data) != feature.example_bytes:
            raise UserError(
                f"feature '{name}' holds {len(data)} bytes; expected {feature.example_bytes} for "
                f"{feature.dtype} {list(feature.shape)} as in the schema."
            )
        return np.frombuffer(data, dtype=feature.dtype).reshape(feature.shape)
    if feature.encoding in IMAGE_ENCODINGS:
        return decode_image(data, channels=feature.shape[-1])
    return np.array(data, dtype=object)
