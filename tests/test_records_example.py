"""The tf.train.Example wire format: written byte for byte as protobuf does, read back without TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfkit import records
from tfkit.errors import UserError
from tfkit.records import example as wire


@pytest.mark.parametrize(
    ("value", "feature"),
    [
        (np.arange(6, dtype=np.float32).reshape(3, 2), records.Feature("float32", (3, 2), "raw")),
        (np.float64(-2.5), records.Feature("float64", (), "raw")),
        (np.zeros((0, 4), np.uint8), records.Feature("uint8", (0, 4), "raw")),
        (np.array([-1, 0, 2**40, -(2**63)]), records.Feature("int64", (4,), "int64")),
        (np.int64(300), records.Feature("int64", (), "int64")),
        (np.zeros((0,), np.int64), records.Feature("int64", (0,), "int64")),
        (b"\xff\xd8 jpeg bytes" * 20, records.Feature("uint8", (5, 5, 3), "jpeg")),
        (b"", records.Feature("string", (), "string")),
    ],
)
def test_encode_writes_exactly_what_protobuf_serialises(value, feature):
    features = {"x": feature, "another": records.Feature("int64", (), "int64")}
    example = {"x": value, "another": np.int64(7)}
    if feature.encoding == "int64":
        proto = tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(value).reshape(-1).tolist()))
    elif feature.encoding == "raw":
        proto = tf.train.Feature(bytes_list=tf.train.BytesList(value=[np.asarray(value).tobytes()]))
    else:
        proto = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    expected = tf.train.Example(
        features=tf.train.Features(
            feature={"x": proto, "another": tf.train.Feature(int64_list=tf.train.Int64List(value=[7]))}
        )
    ).SerializeToString(deterministic=True)
    assert records.encode(example, features) == expected


def test_parse_reads_what_tensorflow_writes_without_tensorflow():
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"\x00\xff" * 300, b""])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[-1, 0, 2**40, -(2**63), 2**63 - 1])),
                "score": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5, -2.25])),
                "empty": tf.train.Feature(int64_list=tf.train.Int64List(value=[])),
            }
        )
    )
    assert records.parse(example.SerializeToString()) == {
        "image": [b"\x00\xff" * 300, b""],
        "label": [-1, 0, 2**40, -(2**63), 2**63 - 1],
        "score": [0.5, -2.25],
        "empty": [],
    }


def test_parse_reads_back_what_encode_writes():
    features = {"x": records.Feature("uint8", (2, 3), "raw"), "y": records.Feature("int64", (2,), "int64")}
    x = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert records.parse(records.encode({"x": x, "y": np.array([7, -7])}, features)) == {
        "x": [x.tobytes()],
        "y": [7, -7],
    }


def test_bytes_that_are_no_example_are_one_user_error():
    with pytest.raises(UserError, match=r"a record is not a tf\.train\.Example"):
        records.parse(b"\x0a\xff\xff\x01")


def _message(field: int, payload: bytes) -> bytes:
    return bytes([field << 3 | 2, len(payload)]) + payload


def test_protobuf_and_the_python_reader_see_the_same_values():
    # parse reads with protobuf and hands a record it refuses to the Python reader: both must agree on every record.
    rows = [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    "floats": tf.train.Feature(float_list=tf.train.FloatList(value=[index, np.nan, -np.inf, 1e-45])),
                    "ints": tf.train.Feature(int64_list=tf.train.Int64List(value=[index, -(2**63), 2**63 - 1])),
                    "bytes": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"", bytes(range(256))])),
                    "empty": tf.train.Feature(),
                }
            )
        ).SerializeToString()
        for index in range(3)
    ]
    # Lists written unpacked, one tagged value each, as some writers do: ints 5 and 300, floats 1.5 and -2.
    unpacked_ints = _message(3, b"\x08\x05\x08\xac\x02")
    unpacked_floats = _message(2, b"\x0d" + np.float32(1.5).tobytes() + b"\x0d" + np.float32(-2).tobytes())
    entries = _message(1, b"\x0a\x01a" + _message(2, unpacked_ints)) + _message(
        1, b"\x0a\x01b" + _message(2, unpacked_floats)
    )
    unpacked = _message(1, entries)
    for serialized in [*rows, unpacked, b""]:
        ours, python = records.parse(serialized), wire._parse_python(serialized)
        assert ours.keys() == python.keys()
        for name in ours:
            np.testing.assert_array_equal(np.asarray(ours[name]), np.asarray(python[name]))
    assert records.parse(unpacked) == {"a": [5, 300], "b": [1.5, -2.0]}
