from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow as tf
from conftest import model_file

from tfkit import config as config_lib
from tfkit import data, records
from tfkit.errors import UserError

WINDOW = records.Feature("float32", (129, 200), "raw")

FEATURES = {
    "image": records.Feature(dtype="float32", shape=(2,), encoding="raw"),
    "label": records.Feature(dtype="int64", shape=(), encoding="int64"),
}


@pytest.fixture
def numbered(tmp_path):
    """103 records whose label is their id, in 6 shards."""
    rows = ({"image": np.array([i, -i], np.float32), "label": np.int64(i)} for i in range(103))
    schema = records.write_split(rows, tmp_path, split="train", features=FEATURES, num_shards=6)
    return str(tmp_path), schema


def ids(dataset: tf.data.Dataset) -> list[int]:
    seen = []
    for x, y, weights in dataset:
        np.testing.assert_array_equal(x.numpy()[:, 0], y.numpy().astype(np.float32))  # features match labels
        seen.extend(int(i) for i, w in zip(y.numpy(), weights.numpy(), strict=True) if w > 0)
    return seen


def pipeline(folder, schema, *, pipelines, index, training, epoch=0, seed=0, batch=8):
    make = data.dataset_fn(
        folder,
        schema,
        config_lib.DataConfig(train=folder, features="image", label="label", shuffle_buffer=64),
        per_replica_batch_size=batch,
        training=training,
        seed=seed,
        epoch=epoch,
    )
    return make(tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=index))


@pytest.mark.parametrize("pipelines", [1, 2, 3])
def test_every_record_is_seen_exactly_once_per_epoch_across_pipelines(numbered, pipelines):
    folder, schema = numbered
    seen = []
    for index in range(pipelines):
        seen += ids(pipeline(folder, schema, pipelines=pipelines, index=index, training=False))
    assert collections.Counter(seen) == collections.Counter(range(103))


def test_training_batches_are_static_shuffled_by_seed_and_epoch_and_never_repeat_a_record(numbered):
    folder, schema = numbered
    first = ids(pipeline(folder, schema, pipelines=2, index=0, training=True, epoch=0))
    again = ids(pipeline(folder, schema, pipelines=2, index=0, training=True, epoch=0))
    other_epoch = ids(pipeline(folder, schema, pipelines=2, index=0, training=True, epoch=1))
    other_worker = ids(pipeline(folder, schema, pipelines=2, index=1, training=True, epoch=0))
    assert first == again
    assert first != other_epoch
    assert len(set(first)) == len(first)
    assert not set(first) & set(other_worker)
    dataset = pipeline(folder, schema, pipelines=2, index=0, training=True)
    assert dataset.element_spec[0].shape.as_list() == [8, 2]  # drop_remainder: static for TPUs


def test_eval_pads_the_last_batch_to_a_static_shape_with_zero_weight(numbered):
    folder, schema = numbered
    batches = list(pipeline(folder, schema, pipelines=1, index=0, training=False, batch=10))
    assert all(x.shape == (10, 2) for x, _, _ in batches)
    assert sum(float(w.numpy().sum()) for _, _, w in batches) == 103
    assert batches[-1][2].numpy().tolist() == [1.0] * 3 + [0.0] * 7


def test_more_pipelines_than_files_is_an_error_with_advice(numbered):
    folder, schema = numbered
    with pytest.raises(UserError, match=r"has 6 shard file.* for 7 input pipelines.*more shards"):
        pipeline(folder, schema, pipelines=7, index=0, training=True)


def test_a_feature_missing_from_the_schema_is_named(numbered):
    folder, _ = numbered
    with pytest.raises(UserError, match=r"config key 'data.features': received 'pixels'.*expected one of image, label"):
        data.load_schema(folder, config_lib.DataConfig(train=folder, features="pixels"))


@pytest.fixture
def sixty(tmp_path):
    """60 records whose features are [id, id] and label is their id, in 4 shards."""
    features = {"image": records.Feature("float32", (2,), "raw"), "label": records.Feature("int64", (), "int64")}
    rows = ({"image": np.array([i, i], np.float32), "label": np.int64(i)} for i in range(60))
    schema = records.write_split(rows, tmp_path / "split", split="train", features=features, num_shards=4)
    return str(tmp_path / "split"), schema


def sixty_batches(folder, schema, config, *, training, epoch=0):
    make = data.dataset_fn(folder, schema, config, per_replica_batch_size=6, training=training, seed=0, epoch=epoch)
    return list(make(tf.distribute.InputContext()))


def test_the_augment_function_changes_training_batches_only(sixty, tmp_path):
    folder, schema = sixty
    path = model_file(tmp_path, "def shift(x, y, seed):\n    return x + 1000.0, y\n", name="augment.py")
    config = config_lib.DataConfig(train=folder, augment=f"{path}:shift")
    trained = sixty_batches(folder, schema, config, training=True)
    evaluated = sixty_batches(folder, schema, config, training=False)
    assert all((x.numpy() >= 1000).all() and (x.numpy()[:, 0] - 1000 == y.numpy()).all() for x, y, _ in trained)
    assert all((x.numpy() < 1000).all() for x, _, _ in evaluated)


def test_the_file_cache_serves_later_epochs_with_every_record_once(sixty, tmp_path):
    folder, schema = sixty
    config = config_lib.DataConfig(train=folder, cache=str(tmp_path / "cache" / "digits"))
    (tmp_path / "cache").mkdir()
    for epoch in (0, 1):
        epoch_batches = sixty_batches(folder, schema, config, training=True, epoch=epoch)
        seen = [int(v) for _, y, _ in epoch_batches for v in y.numpy()]
        assert len(seen) == 60 and collections.Counter(seen) == collections.Counter(range(60))
    assert list((tmp_path / "cache").glob("digits-train-0-of-1*.index"))


def test_the_shuffle_buffer_is_bounded_in_bytes():
    schema = records.Schema(split="train", features={"x": WINDOW}, shards=(), records=0)
    config = config_lib.DataConfig(train="x", shuffle_buffer=2048, shuffle_buffer_bytes="10MB")
    assert data.shuffle_examples(schema, config) == 10_000_000 // (129 * 200 * 4)  # 96 windows, not 2048
    small = config_lib.DataConfig(train="x", shuffle_buffer=50, shuffle_buffer_bytes="10MB")
    assert data.shuffle_examples(schema, small) == 50


def test_the_reader_takes_a_glob_with_a_schema_and_refuses_one_that_matches_nothing(tmp_path):
    features = {"image": records.Feature("float32", (2,), "raw"), "label": records.Feature("int64", (), "int64")}
    rows = ({"image": np.array([i, i], np.float32), "label": np.int64(i)} for i in range(40))
    records.write_split(rows, tmp_path / "split", split="train", features=features, num_shards=8)
    config = config_lib.DataConfig(train=str(tmp_path / "split" / "train-0000[0-3]-*"))
    schema = data.load_schema(config.train, config)
    assert schema.records == 20 and len(schema.shards) == 4
    make = data.dataset_fn(config.train, schema, config, per_replica_batch_size=5, training=False, seed=0, epoch=0)
    labels = [int(v) for _, y, _ in make(tf.distribute.InputContext()) for v in y.numpy()]
    assert sorted(labels) == [i for i in range(40) if i % 8 < 4]
    nothing = config_lib.DataConfig(train=str(tmp_path / "split" / "eval-*"))
    with pytest.raises(Exception, match=r"the glob '.*eval-\*' matches no files; expected TFRecord shards"):
        data.load_schema(nothing.train, nothing)
