"""data.augment: called with a seed from the run's seed, the epoch and the batch; a seedless function is refused."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import model_file

from tfkit import config as config_lib
from tfkit import data, records
from tfkit.data.augment import augment_seed
from tfkit.errors import UserError

NOISE = """
import tensorflow as tf

def noise(x, y, seed):
    return x + tf.random.stateless_uniform(tf.shape(x), seed), y

def seedless(x, y):
    return x, y
"""


@pytest.fixture
def split(tmp_path):
    features = {"image": records.Feature("float32", (2,), "raw"), "label": records.Feature("int64", (), "int64")}
    rows = ({"image": np.array([i, i], np.float32), "label": np.int64(i)} for i in range(48))
    schema = records.write_split(rows, tmp_path / "split", split="train", features=features, num_shards=4)
    return str(tmp_path / "split"), schema, model_file(tmp_path, NOISE, name="augment.py")


def batches(split, function, *, seed=0, epoch=0, skip=0):
    folder, schema, path = split
    config = config_lib.DataConfig(train=folder, augment=f"{path}:{function}")
    make = data.dataset_fn(
        folder, schema, config, per_replica_batch_size=6, training=True, seed=seed, epoch=epoch, skip_batches=skip
    )
    return [x.numpy() for x, _, _ in make(tf.distribute.InputContext())]


def test_the_same_seed_and_epoch_augment_alike_and_a_resume_at_batch_k_augments_as_before(split):
    first = batches(split, "noise")
    assert all((a == b).all() for a, b in zip(first, batches(split, "noise"), strict=True))
    resumed = batches(split, "noise", skip=3)
    assert all((a == b).all() for a, b in zip(first[3:], resumed, strict=True))
    noise = [batch - np.floor(batch) for batch in first]
    assert not any((noise[0] == other).all() for other in noise[1:])  # each batch its own draw
    other_epoch = batches(split, "noise", epoch=1)
    other_seed = batches(split, "noise", seed=1)
    assert not (first[0] == other_epoch[0]).all() and not (first[0] == other_seed[0]).all()


def test_a_function_without_a_seed_is_refused_in_one_line_saying_how_to_take_it(split):
    with pytest.raises(UserError, match=r"takes \(features, labels\); expected \(features, labels, seed\)") as caught:
        batches(split, "seedless")
    assert "stateless_random_flip_left_right(features, seed)" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_batch_seeds_differ_across_pipelines_and_are_int32_pairs():
    seeds = {
        tuple(augment_seed(7, batch=tf.constant(batch, tf.int64), pipeline=pipeline, pipelines=2).numpy())
        for batch in range(5)
        for pipeline in range(2)
    }
    assert len(seeds) == 10
    assert augment_seed(7, batch=tf.constant(0, tf.int64), pipeline=0, pipelines=1).dtype == tf.int32
