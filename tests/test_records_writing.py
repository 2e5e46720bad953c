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


def labels_in_file_order(folder) -> list[int]:
    """The label of every record of a split, read back by TensorFlow, shard by shard."""
    schema = records.read_schema(folder)
    return [
        tf.train.Example.FromString(raw.numpy()).features.feature["label"].int64_list.value[0]
        for path in schema.files(folder)
        for raw in tf.data.TFRecordDataset(path)
    ]


def test_write_split_names_shards_balances_them_and_writes_the_schema_last(tmp_path):
    schema = records.write_split(examples(10), tmp_path, split="train", features=FEATURES, num_shards=4)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["schema.json", *(f"train-0000{i}-of-00004.tfrecord" for i in range(4))]
    assert [shard.records for shard in schema.shards] == [3, 3, 2, 2]
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


def test_a_python_iterator_is_written_as_it_comes_in_shards_sized_by_bytes(tmp_path):
    features = {"x": records.Feature("float32", (256,), "raw"), "label": records.Feature("int64", (), "int64")}
    rows = ({"x": np.full(256, index, np.float32), "label": np.int64(index)} for index in range(100))
    schema = records.write_split(rows, tmp_path, split="train", features=features, shard_bytes=10_000)
    assert len(schema.shards) == 10 and schema.records == 100
    assert labels_in_file_order(tmp_path) == list(range(100))
