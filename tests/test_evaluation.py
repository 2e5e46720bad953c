"""Eval input: every pipeline yields the same whole number of steps, each record once, the padding with weight 0."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow as tf

from tfkit import config as config_lib
from tfkit import data, records

FEATURES = {"image": records.Feature("float32", (2,), "raw"), "label": records.Feature("int64", (), "int64")}


@pytest.fixture
def uneven(tmp_path):
    """37 records in 5 shards: pipelines of 2 get 3 and 2 shards, so different record counts."""
    rows = ({"image": np.array([i, -i], np.float32), "label": np.int64(i)} for i in range(37))
    schema = records.write_split(rows, tmp_path, split="eval", features=FEATURES, num_shards=5)
    return str(tmp_path), schema


@pytest.mark.parametrize(("pipelines", "replicas", "batch"), [(1, 1, 8), (1, 4, 4), (1, 8, 3), (2, 2, 5), (2, 8, 2)])
def test_every_pipeline_yields_whole_steps_and_every_record_once(uneven, pipelines, replicas, batch):
    folder, schema = uneven
    config = config_lib.DataConfig(train=folder, features="image", label="label")
    steps = data.eval_steps(schema, per_replica_batch_size=batch, pipelines=pipelines, replicas=replicas)
    seen, padding = [], 0.0
    for index in range(pipelines):
        make = data.dataset_fn(folder, schema, config, per_replica_batch_size=batch, training=False, seed=0, epoch=0)
        context = tf.distribute.InputContext(
            num_input_pipelines=pipelines, input_pipeline_id=index, num_replicas_in_sync=replicas
        )
        batches = list(make(context))
        assert len(batches) == steps * replicas // pipelines  # no partial step, no pipeline ending early
        for _, labels, weights in batches:
            seen += [int(label) for label, weight in zip(labels.numpy(), weights.numpy(), strict=True) if weight]
            padding += float((weights.numpy() == 0).sum())
    assert collections.Counter(seen) == collections.Counter(range(37))
    assert padding == steps * replicas * batch - 37


def test_eval_reads_records_in_file_order(uneven):
    folder, schema = uneven
    config = config_lib.DataConfig(train=folder, features="image", label="label")
    make = data.dataset_fn(folder, schema, config, per_replica_batch_size=4, training=False, seed=0, epoch=0)
    order = [int(label) for _, labels, weights in make(tf.distribute.InputContext()) for label in labels[weights > 0]]
    in_files = [
        int(label)
        for label in tf.data.TFRecordDataset(schema.files(folder)).map(
            lambda record: tf.io.parse_single_example(record, {"label": tf.io.FixedLenFeature([], tf.int64)})["label"]
        )
    ]
    assert order == in_files
