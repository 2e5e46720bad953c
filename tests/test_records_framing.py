"""TFRecord framing: what the shard writer writes, TensorFlow reads; the scanner and reader check every CRC."""

from __future__ import annotations

import pytest
import tensorflow as tf

from tfkit import records
from tfkit.errors import UserError


@pytest.mark.parametrize("compression", [None, "GZIP", "ZLIB"])
def test_the_shard_writer_is_read_back_by_tensorflow(tmp_path, compression):
    path = str(tmp_path / "shard.tfrecord")
    payloads = [bytes([index]) * (index * 1000) for index in range(20)]
    with records.ShardWriter(path, compression) as writer:
        for payload in payloads:
            writer.write(payload)
    read = [bytes(r.numpy()) for r in tf.data.TFRecordDataset(path, compression_type=compression or "")]
    assert read == payloads
    good, problems, _ = records.scan(path, compression)
    assert (good, problems) == (20, [])


def test_read_records_yields_each_payload_and_names_the_first_corrupt_one(tmp_path):
    path = tmp_path / "shard.tfrecord"
    payloads = [bytes([index]) * 100 for index in range(5)]
    with records.ShardWriter(str(path), "GZIP") as writer:
        for payload in payloads:
            writer.write(payload)
    assert list(records.read_records(str(path), "GZIP")) == payloads
    plain = tmp_path / "plain.tfrecord"
    with records.ShardWriter(str(plain)) as writer:
        for payload in payloads:
            writer.write(payload)
    raw = bytearray(plain.read_bytes())
    raw[2 * (12 + 100 + 4) + 12 + 50] ^= 0xFF  # inside record 2's data
    plain.write_bytes(bytes(raw))
    read = records.read_records(str(plain))
    assert [next(read), next(read)] == payloads[:2]
    with pytest.raises(UserError, match=r"plain\.tfrecord: record 2 \(byte 232\): the data's CRC does not match"):
        next(read)
