"""The ``tf.train.Example`` wire format, written and read directly, without TensorFlow or a generated protobuf class.

Writing: a Python ``tf.train.Example`` costs more per record than the data's own copy, and its map order depends on
the process's hash seed unless asked to be deterministic; ``encode`` writes byte for byte what protobuf's
deterministic output is. Reading (``parse``) serves the checks at start, ``inspect``, ``verify`` and schema
inference, which must work without TensorFlow; training reads records with ``tf.io.parse_example`` (tfkit.data).
``parse`` reads with protobuf's C parser (``upb``, installed with tensorboard) through an ``Example`` class built
here from descriptors, about twice as fast as Python; a record protobuf refuses goes to the Python reader, which
names what is wrong.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from tfkit.errors import UserError
from tfkit.records.schema import Feature

# Wire types of the protobuf encoding.
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def encode(example: Mapping[str, Any], features: Mapping[str, Feature]) -> bytes:
    """Serialises one example as a ``tf.train.Example``, byte for byte what protobuf's deterministic output is.

    The array's bytes are copied once, into the result.

    Raises:
        UserError: A feature is missing, extra, or of the wrong shape.
    """
    if set(example) != set(features):
        raise UserError(
            f"example has features {sorted(example)}; expected exactly {sorted(features)} as in the schema."
        )
    pieces: list[Any] = []
    entries_length = 0
    for name in sorted(features):  # map entries in key order, as deterministic serialisation has them
        spec = features[name]
        value = example[name]
        if spec.encoding == "int64":
            array = np.asarray(value, dtype=spec.dtype)
            _check_shape(name, array, spec)
            packed = b"".join(_varint(int(item) & 0xFFFFFFFFFFFFFFFF) for item in array.reshape(-1).tolist())
            inner = [b"\x0a", _varint(len(packed)), packed] if packed else []  # Int64List.value, packed
            kind = b"\x1a"  # Feature.int64_list
        else:
            if spec.encoding == "raw":
                array = np.asarray(value, dtype=spec.dtype)
                _check_shape(name, array, spec)
                simple = array.size and array.ndim and array.flags.c_contiguous  # a view can be cast to bytes
                data: Any = array.data.cast("B") if simple else array.tobytes()
            else:
                data = value if isinstance(value, (bytes, bytearray, memoryview)) else bytes(np.asarray(value).item())
            inner = [b"\x0a", _varint(len(data)), data]  # BytesList.value
            kind = b"\x0a"  # Feature.bytes_list
        inner_length = sum(len(piece) for piece in inner)
        feature = [kind, _varint(inner_length), *inner]
        feature_length = sum(len(piece) for piece in feature)
        key = name.encode()
        entry = [b"\x0a", _varint(len(key)), key, b"\x12", _varint(feature_length), *feature]  # key, value
        entry_length = sum(len(piece) for piece in entry)
        pieces += [b"\x0a", _varint(entry_length), *entry]  # Features.feature
        entries_length += 1 + len(_varint(entry_length)) + entry_length
    return b"".join([b"\x0a", _varint(entries_length), *pieces])  # Example.features


def parse(serialized: bytes) -> dict[str, list[bytes] | list[int] | list[float]]:
    """Reads every feature of a serialized ``tf.train.Example``: its bytes, int64 or float values, as lists.

    Raises:
        UserError: The bytes are not an Example.
    """
    try:
        example = _example_class().FromString(serialized)
    except DecodeError:
        return _parse_python(serialized)  # which names what is wrong
    values: dict[str, list[bytes] | list[int] | list[float]] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values[name] = list(getattr(feature, kind).value) if kind else []
    return values


@functools.cache
def _example_class() -> Any:
    """``tf.train.Example``'s message class, built from its fields in a descriptor pool of its own.

    The wire format is all that matters, so the names live in a package of tfkit's, apart from TensorFlow's
    ``tensorflow.Example`` in protobuf's default pool.
    """
    proto = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="tfkit/records/example.proto", package="tfkit.wire", syntax="proto3")

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> descriptor_pb2.DescriptorProto:
        described = descriptor_pb2.DescriptorProto(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = described.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".tfkit.wire.{type_name}"
        return described

    repeated, optional = proto.LABEL_REPEATED, proto.LABEL_OPTIONAL
    file.message_type.extend(
        [
            message("BytesList", ("value", 1, proto.TYPE_BYTES, repeated, "")),
            message("FloatList", ("value", 1, proto.TYPE_FLOAT, repeated, "")),
            message("Int64List", ("value", 1, proto.TYPE_INT64, repeated, "")),
        ]
    )
    feature = message(
        "Feature",
        ("bytes_list", 1, proto.TYPE_MESSAGE, optional, "BytesList"),
        ("float_list", 2, proto.TYPE_MESSAGE, optional, "FloatList"),
        ("int64_list", 3, proto.TYPE_MESSAGE, optional, "Int64List"),
    )
    feature.oneof_decl.add(name="kind")
    for field in feature.field:
        field.oneof_index = 0
    features = message("Features", ("feature", 1, proto.TYPE_MESSAGE, repeated, "Features.FeatureEntry"))
    entry = message(
        "FeatureEntry",
        ("key", 1, proto.TYPE_STRING, optional, ""),
        ("value", 2, proto.TYPE_MESSAGE, optional, "Feature"),
    )
    entry.options.map_entry = True
    features.nested_type.append(entry)
    file.message_type.extend(
        [feature, features, message("Example", ("features", 1, proto.TYPE_MESSAGE, optional, "Features"))]
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    described = pool.FindMessageTypeByName("tfkit.wire.Example")
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.21
        return message_factory.GetMessageClass(described)
    return message_factory.MessageFactory(pool).GetPrototype(described)  # pragma: no cover - older protobuf


def _parse_python(serialized: bytes) -> dict[str, list[bytes] | list[int] | list[float]]:
    """``parse`` in Python: slower, and it says what is wrong with a record protobuf refuses."""
    features: dict[str, list[bytes] | list[int] | list[float]] = {}
    try:
        for field, value in _fields(serialized):
            if field != 1 or not isinstance(value, bytes):  # Example.features
                continue
            for entry_field, entry in _fields(value):
                if entry_field != 1 or not isinstance(entry, bytes):  # Features.feature, a map entry
                    continue
                parts = dict(_fields(entry))
                key, feature = parts.get(1, b""), parts.get(2, b"")
                if isinstance(key, bytes) and isinstance(feature, bytes):
                    features[key.decode()] = _values(feature)
    except (IndexError, struct.error, UnicodeDecodeError) as error:
        raise UserError(
            f"a record is not a tf.train.Example ({error}); expected one written by tfkit.records."
        ) from None
    return features


def _values(feature: bytes) -> list[bytes] | list[int] | list[float]:
    """The values of one ``Feature``: its BytesList (1), FloatList (2) or Int64List (3)."""
    for kind, listed in _fields(feature):
        if not isinstance(listed, bytes):
            continue
        items = [value for field, value in _fields(listed) if field == 1]
        if kind == 1:
            return [value for value in items if isinstance(value, bytes)]
        if kind == 2:  # packed (one run of little-endian floats) or one fixed32 per value
            data = b"".join(value if isinstance(value, bytes) else struct.pack("<I", value) for value in items)
            return list(struct.unpack(f"<{len(data) // 4}f", data))
        if kind == 3:  # packed (one run of varints) or one varint per value
            numbers: list[int] = []
            for value in items:
                packed = isinstance(value, bytes)
                numbers += [number for _, number in _fields(value, packed=True)] if packed else [value]
            return [number - (1 << 64) if number >= 1 << 63 else number for number in numbers]
    return []


def _fields(data: bytes, *, packed: bool = False) -> Iterator[tuple[int, Any]]:
    """Yields ``(field number, value)``: an int for varints and fixed32, bytes for length-delimited and fixed64.

    With ``packed``, ``data`` is a run of bare varints, each yielded with field number 0.
    """
    position = 0
    while position < len(data):
        if packed:
            number, position = _read_varint(data, position)
            yield 0, number
            continue
        tag, position = _read_varint(data, position)
        field, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            number, position = _read_varint(data, position)
            yield field, number
        elif wire == _LENGTH_DELIMITED:
            length, position = _read_varint(data, position)
            if position + length > len(data):
                raise IndexError("a field runs past the end of its message")
            yield field, data[position : position + length]
            position += length
        elif wire == _FIXED32:
            yield field, struct.unpack_from("<I", data, position)[0]
            position += 4
        elif wire == _FIXED64:
            yield field, data[position : position + 8]
            position += 8
        else:
            raise IndexError(f"wire type {wire} is not one a tf.train.Example uses")


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    number, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        number |= (byte & 0x7F) << shift
        if byte < 0x80:
            return number, position
        shift += 7


def _check_shape(name: str, array: np.ndarray, spec: Feature) -> None:
    if array.shape != tuple(spec.shape):
        raise UserError(f"feature '{name}' has shape {array.shape}; expected {tuple(spec.shape)} as in the schema.")


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
