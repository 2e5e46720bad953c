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
    image = {"dtype": "float32", "shape": [3, 2], "encoding": "raw", "nonfinite": {"count": 0}}
    assert on_disk["features"]["image"] == image
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


def test_nan_and_inf_are_counted_per_float_feature_with_the_first_record_in_split_order(tmp_path):
    rows = examples(10)
    rows[6]["image"][0, 0] = np.nan  # round robin over 4 shards: shard 2, its record 1; split order 3 + 3 + 1 = 7
    rows[9]["image"][1] = np.inf  # shard 1, its record 2: split order 3 + 2 = 5
    schema = records.write_split(rows, tmp_path, split="train", features=FEATURES, num_shards=4)
    assert schema.features["image"].nonfinite == records.schema.NonFinite(count=3, first_record=5)
    assert schema.features["label"].nonfinite is None  # integers are never NaN
    on_disk = json.loads((tmp_path / "schema.json").read_text())
    assert on_disk["features"]["image"]["nonfinite"] == {"count": 3, "first_record": 5}
    assert records.read_schema(tmp_path) == schema
    found = list(records.verification.nonfinite_records(tmp_path, schema))
    assert [(record.file, record.record, record.split_record) for record in found] == [
        ("train-00001-of-00004.tfrecord", 2, 5),
        ("train-00002-of-00004.tfrecord", 1, 7),
    ]
    assert [record.counts for record in found] == [{"image": 2}, {"image": 1}]


def test_a_source_write_counts_nan_in_its_shuffled_order(tmp_path):
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    x[13, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "label.npy", np.arange(20) % 2)
    source = records.open_source([str(tmp_path / "x.npy"), str(tmp_path / "label.npy")])
    schema = records.write(source, tmp_path / "out", shuffle_seed=3, min_shards=3)
    first = schema.features["x"].nonfinite.first_record
    found = list(records.verification.nonfinite_records(tmp_path / "out", schema))
    assert schema.features["x"].nonfinite.count == 1 and [record.split_record for record in found] == [first]


def _hashes(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_staged_folder_refuses_an_existing_output_without_force_and_a_file(tmp_path):
    records.write_split(examples(4), tmp_path / "old", split="train", features=FEATURES, num_shards=2)
    refused = pytest.raises(UserError, match=r"already holds files.*--force")
    with refused, records.staging.staged_folder(tmp_path / "old"):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=r"'.*file' is a file"), records.staging.staged_folder(tmp_path / "file"):
        pass
    (tmp_path / "empty").mkdir()
    with records.staging.staged_folder(tmp_path / "empty") as staging:
        records.write_split(examples(4), staging, split="train", features=FEATURES, num_shards=2)
    assert (tmp_path / "empty" / "schema.json").exists()


@pytest.mark.parametrize("rows", [[], [{"image": np.zeros((2, 2), np.float32), "label": np.int64(0)}], None])
def test_a_failed_or_empty_write_with_force_leaves_the_old_split_byte_identical(tmp_path, rows):
    old = tmp_path / "data"
    records.write_split(examples(4), old, split="train", features=FEATURES, num_shards=2)
    before = _hashes(old)
    with pytest.raises(UserError), records.staging.staged_folder(old, force=True) as staging:
        if rows is not None:
            records.write_split(rows, staging, split="train", features=FEATURES, num_shards=2)
    assert _hashes(old) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]  # no staged or set-aside folder left


def test_force_replaces_the_old_split_only_when_the_new_one_is_complete(tmp_path):
    old = tmp_path / "data"
    records.write_split(examples(4), old, split="train", features=FEATURES, num_shards=2)
    with records.staging.staged_folder(old, force=True) as staging:
        records.write_split(examples(9), staging, split="train", features=FEATURES, num_shards=3)
        assert records.read_schema(old).records == 4  # still the old data while the new one is written
    assert records.read_schema(old).records == 9
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]


def test_a_write_killed_between_the_swaps_renames_gets_its_old_data_back(tmp_path):
    old = tmp_path / "data"
    records.write_split(examples(4), old, split="train", features=FEATURES, num_shards=2)
    before = _hashes(old)
    dead = 2**22 + 12345  # above Linux's default pid_max: no live process has it
    old.rename(tmp_path / f".data.old-{dead}")
    (tmp_path / f".data.tmp-{dead}").mkdir()  # the staged folder it left
    with records.staging.staged_folder(old, force=True) as staging:
        assert _hashes(old) == before  # put back before anything else happens
        records.write_split(examples(9), staging, split="train", features=FEATURES, num_shards=3)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]
