"""Edits to a serialised ``Event`` made on its protobuf wire bytes, so that every byte not edited stays as written.

Parsing an event and serialising it again can change its bytes (field order, packing, a writer's own quirks);
splicing the encoded fields cannot. Only three edits are needed: a new step (merge), a subset of the summary's
values (a tag filter), and plugin metadata added to a value that lost it (TF1 writes it on a tag's first event only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
_EVENT_WALL_TIME, _EVENT_STEP, _EVENT_SUMMARY = 1, 2, 5
_SUMMARY_VALUE = 1
_VALUE_METADATA = 9


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _varint(number: int) -> bytes:
    number &= (1 << 64) - 1  # negative int64 steps are ten bytes of two's complement, as protobuf writes them
    out = bytearray()
    while number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def fields(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """Each top-level field of a message as (number, its encoded bytes, its payload if length-delimited)."""
    found = []
    position = 0
    while position < len(data):
        start = position
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        payload = b""
        if wire_type == _VARINT:
            _, position = _read_varint(data, position)
        elif wire_type == _FIXED64:
            position += 8
        elif wire_type == _FIXED32:
            position += 4
        elif wire_type == _LENGTH:
            length, position = _read_varint(data, position)
            payload = data[position : position + length]
            position += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type} in an event record")
        found.append((number, data[start:position], payload))
    return found


def _length_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LENGTH) + _varint(len(payload)) + payload


def with_step(data: bytes, step: int) -> bytes:
    """The serialised event ``data`` with its step replaced; every other byte as it was."""
    parts = [segment for number, segment, _ in fields(data) if number != _EVENT_STEP]
    step_field = _varint(_EVENT_STEP << 3 | _VARINT) + _varint(step) if step else b""  # proto3 omits a zero
    numbers = [number for number, _, _ in fields(data) if number != _EVENT_STEP]
    where = numbers.index(_EVENT_WALL_TIME) + 1 if _EVENT_WALL_TIME in numbers else 0
    return b"".join([*parts[:where], step_field, *parts[where:]])


def with_values(data: bytes, kept: Sequence[int], metadata: Mapping[int, bytes]) -> bytes:
    """The serialised event ``data`` with only the summary values at indices ``kept``.

    Args:
        data: A serialised ``Event`` that holds a summary.
        kept: Indices of the values to keep, in the summary's order.
        metadata: Serialised ``SummaryMetadata`` to add to the value at an index (one that has none).

    Returns:
        The event's bytes: every kept value as written, plus the metadata given for it.
    """
    out = []
    index = 0
    for number, segment, payload in fields(data):
        if number != _EVENT_SUMMARY:
            out.append(segment)
            continue
        summary = []
        for value_number, value_segment, value_payload in fields(payload):
            if value_number != _SUMMARY_VALUE:
                summary.append(value_segment)
                continue
            if index in kept:
                extra = _length_field(_VALUE_METADATA, metadata[index]) if index in metadata else b""
                summary.append(_length_field(_SUMMARY_VALUE, value_payload + extra) if extra else value_segment)
            index += 1
        out.append(_length_field(_EVENT_SUMMARY, b"".join(summary)))
    return b"".join(out)
