from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow as tf

from tfkit import config as config_lib
from tfkit import data, records
from tfkit.errors import UserError

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
