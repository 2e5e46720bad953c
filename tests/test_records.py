from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from tfkit import records
from tfkit.errors import UserError

FEATURES = {
    "image": records.Feature(dtype="float32", shape=(3, 2), encoding="raw"),
    "label": records.Feature(dtype="int64", shape=(), encoding="int64", num_classes=5),
}


def examples(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [{"image": rng.standard_normal((3, 2)).astype(np.float32), "label": np.int64(i % 5)} for i in range(count)]


def test_write_split_names_shards_balances_them_and_writes_the_schema_last(tmp_path):
    schema = records.write_split(examples(10), tmp_path, split="train", features=FEATURES, num_shards=4)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["schema.json", *(f"train-0000{i}-of-00004.tfrecord" for i in range(4))]
    assert [shard["records"] for shard in schema.shards] == [3, 3, 2, 2]
    on_disk = json.loads((tmp_path / "schema.json").read_text())
    assert on_disk["records"] == 10
    assert on_disk["features"]["image"] == {"dtype": "float32", "shape": [3, 2], "encoding": "raw"}
    assert on_disk["features"]["label"]["num_classes"] == 5
    assert records.read_schema(tmp_path) == schema


def test_arrays_round_trip_byte_identical(tmp_path):

    written = examples(7, seed=3)
    schema = records.write_split(written, tmp_path, split="train", features=FEATURES, num_shards=1)
    read = []
    for raw in tf.data.TFRecordDataset(schema.files(tmp_path)):
        example = tf.train.Example.FromString(raw.numpy())
        image = np.frombuffer(example.features.feature["image"].bytes_list.value[0], np.float32).reshape(3, 2)
        read.append((image, example.features.feature["label"].int64_list.value[0]))
    for original, (image, label) in zip(written, read, strict=True):
        assert image.tobytes() == original["image"].tobytes()
        assert label == original["label"]


def test_an_example_that_does_not_match_the_schema_is_named_and_leaves_no_schema(tmp_path):
    bad = [*examples(2), {"image": np.zeros((2, 2), np.float32), "label": np.int64(0)}]
    with pytest.raises(UserError, match=r"feature 'image' has shape \(2, 2\); expected \(3, 2\)"):
        records.write_split(bad, tmp_path, split="train", features=FEATURES, num_shards=2)
    assert not (tmp_path / "schema.json").exists()
    assert not list(tmp_path.glob("train-*.tfrecord"))  # only hidden temporaries, never a complete-looking shard


def test_an_empty_source_is_an_error(tmp_path):
    with pytest.raises(UserError, match="no examples were given for split 'train'"):
        records.write_split([], tmp_path, split="train", features=FEATURES, num_shards=2)
    assert not (tmp_path / "schema.json").exists()


def test_reading_a_missing_folder_or_schema_says_what_to_do(tmp_path):
    with pytest.raises(UserError, match="does not exist; expected a folder of TFRecords"):
        records.read_schema(tmp_path / "nowhere")
    with pytest.raises(UserError, match=r"has no schema\.json; expected one written by tfkit\.records"):
        records.read_schema(tmp_path)


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
