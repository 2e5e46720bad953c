"""task.weight_feature: per-example weights read from the data, in the gradient, in eval, on 1 and 2 replicas."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from conftest import assert_refused, file_hashes, read_scalars, tfkit_process

import tfkit.train
from tfkit import config as config_lib
from tfkit import data, loop, losses, models, records, recovery
from tfkit.data import checks
from tfkit.errors import UserError

FEATURES = {
    "x": records.Feature(dtype="float32", shape=(4,), encoding="raw"),
    "label": records.Feature(dtype="int64", shape=(), encoding="int64", num_classes=3),
    "w": records.Feature(dtype="float32", shape=(), encoding="raw"),
    "count": records.Feature(dtype="int64", shape=(), encoding="int64"),
    "pair": records.Feature(dtype="float32", shape=(2,), encoding="raw"),
    "name": records.Feature(dtype="string", shape=(), encoding="string"),
}


def weight(index: int) -> float:
    return (index % 5) * 0.5  # 0, 0.5, 1, 1.5, 2: a zero weight among them


def write(folder, *, count, split="train", weights=weight, shards=2):
    rows = (
        {
            "x": np.array([index, -index, index % 3, 1.0], np.float32) / count,
            "label": np.int64(index % 3),
            "w": np.float32(weights(index)),
            "count": np.int64(index % 4),
            "pair": np.zeros(2, np.float32),
            "name": f"example-{index}".encode(),
        }
        for index in range(count)
    )
    records.write_split(rows, folder, split=split, features=FEATURES, num_shards=shards)
    return str(folder)


def section(folder, **overrides):
    return config_lib.DataConfig(train=folder, features="x", label="label", shuffle_buffer=0, **overrides)


def batches(folder, *, weight_feature="w", batch=8, replicas=1):
    schema = data.load_schema(folder, section(folder), weight_feature=weight_feature)
    make = data.dataset_fn(
        folder,
        schema,
        section(folder),
        per_replica_batch_size=batch,
        training=False,
        seed=0,
        epoch=0,
        weight_feature=weight_feature,
    )
    return list(make(tf.distribute.InputContext(num_replicas_in_sync=replicas)))


def test_the_weight_feature_is_each_examples_weight_and_eval_padding_keeps_weight_zero(tmp_path):
    folder = write(tmp_path / "split", count=20, shards=1)
    read = batches(folder, replicas=4)  # 3 batches of records and one of padding: one step of 4 replicas
    assert len(read) == 4
    assert all(x.shape == (8, 4) for x, _, _ in read)  # only data.features reaches the model
    weights = np.concatenate([w.numpy() for _, _, w in read])
    np.testing.assert_array_equal(weights[:20], [weight(index) for index in range(20)])
    np.testing.assert_array_equal(weights[20:], np.zeros(12))  # a weight feature cannot turn padding back on
    unweighted = np.concatenate([w.numpy() for _, _, w in batches(folder, weight_feature=None, replicas=4)])
    np.testing.assert_array_equal(unweighted, [1.0] * 20 + [0.0] * 12)


def test_integer_and_float_list_weights_are_read_as_float32(tmp_path):
    folder = write(tmp_path / "split", count=10, shards=1)
    weights = np.concatenate([w.numpy() for _, _, w in batches(folder, weight_feature="count")])
    np.testing.assert_array_equal(weights[:10], [index % 4 for index in range(10)])
    # A FloatList weight, as records written by TensorFlow elsewhere (a competition's .tfrec files) hold.
    path = tmp_path / "foreign" / "a.tfrec"
    path.parent.mkdir()
    with tf.io.TFRecordWriter(str(path)) as writer:
        for index in range(6):
            feature = {
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=[index, 0.0, 1.0, 2.0])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[index % 3])),
                "w": tf.train.Feature(float_list=tf.train.FloatList(value=[index / 4])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    weights = np.concatenate([w.numpy() for _, _, w in batches(str(path.parent / "*.tfrec"))])
    np.testing.assert_array_equal(weights[:6], [index / 4 for index in range(6)])


def test_feature_weights_change_the_gradient_exactly_as_the_hand_computed_weighted_loss(tmp_path):
    folder = write(tmp_path / "split", count=8, shards=1)
    ((x, y, weights),) = batches(folder)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    table = losses.class_weight_table({0: 2.0, 2: 0.5}, num_classes=3)  # combines with class weights: a product
    loss_fn = losses.per_example_loss("sparse_categorical_crossentropy", from_logits=True, class_weights=table)
    pass_ = loop.make_forward_backward(
        model=model,
        optimizer=keras.optimizers.SGD(),
        loss_fn=loss_fn,
        settings=loop.StepSettings(global_batch_size=8),
        replicas=1,
    )
    loss, gradients, _ = pass_(x, y, weights)

    # By hand: each example's cross-entropy times its class's weight times its own, over the batch of 8.
    per_example = np.array([weight(index) for index in range(8)], np.float32)
    per_class = np.array([2.0, 1.0, 0.5], np.float32)[np.arange(8) % 3]
    with tf.GradientTape() as tape:
        entropy = keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True)
        expected_loss = tf.reduce_sum(entropy * per_class * per_example) / 8
    expected = tape.gradient(expected_loss, model.trainable_variables)
    assert float(loss) == pytest.approx(float(expected_loss), rel=1e-6)
    for got, want in zip(gradients, expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-7)
    unweighted = pass_(x, y, tf.ones(8))[1]
    assert not np.allclose(unweighted[0].numpy(), gradients[0].numpy())


RUN = {
    "model": {"name": "mlp"},
    "data": {"features": "x", "label": "label", "shuffle_buffer": 64},
    "task": {"weight_feature": "w", "class_weights": {1: 3.0}},
    "train": {"epochs": 1, "global_batch_size": 16, "steps_per_execution": 1},
    "optimizer": {"base_learning_rate": 0.05, "base_batch_size": 16, "schedule": "constant"},
    "precision": "float32",
    "seed": 0,
}


def run_losses(workdir, train, evaluation, overrides=()):
    config = {**RUN, "data": {**RUN["data"], "train": train, "eval": evaluation}}
    tfkit.train.run(config, workdir=workdir, overrides=list(overrides))
    steps = read_scalars(workdir / "logs" / "train", "loss")
    validation = read_scalars(workdir / "logs" / "eval", "loss")
    return np.array([steps[step] for step in sorted(steps)]), np.array(list(validation.values()))


def first_step_loss_by_hand(train):
    """The weighted loss of the run's first batch under its initial model, computed here from the records."""
    config = config_lib.load(values=RUN, overrides=[f"data.train={train}"])
    schema = data.load_schema(train, config.data)
    make = data.dataset_fn(
        train, schema, config.data, per_replica_batch_size=16, training=True, seed=0, epoch=0, weight_feature="w"
    )
    x, y, per_example = next(iter(make(tf.distribute.InputContext())))
    keras.utils.set_random_seed(0)  # as tfkit.parts builds the model
    model = models.build(config.model, input_shape=(4,), num_classes=3)
    entropy = keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True)
    per_class = tf.gather([1.0, 3.0, 1.0], y)
    return float(tf.reduce_sum(entropy * per_class * per_example) / 16)


@pytest.mark.slow  # three short runs of the trainer, about 30 s
def test_feature_weights_reach_training_and_eval_with_the_same_losses_on_1_and_2_replicas(tmp_path):
    train = write(tmp_path / "train", count=64, shards=2)
    evaluation = write(tmp_path / "eval", count=20, split="eval", shards=2)
    one, one_eval = run_losses(tmp_path / "one", train, evaluation)
    two, two_eval = run_losses(tmp_path / "two", train, evaluation, ["distribute.cpu_replicas=2"])
    assert len(one) == 4 and len(one_eval) == 1
    assert one[0] == pytest.approx(first_step_loss_by_hand(train), rel=1e-5)  # the feature's weights, in the step
    np.testing.assert_allclose(two, one, atol=1e-5, rtol=0)
    np.testing.assert_allclose(two_eval, one_eval, atol=1e-5, rtol=0)
    plain, plain_eval = run_losses(tmp_path / "plain", train, evaluation, ["task.weight_feature=null"])
    assert abs(plain[0] - one[0]) > 1e-3  # without the feature the figures differ: the weights reached the step
    assert abs(plain_eval[0] - one_eval[0]) > 1e-3  # and the eval


@pytest.mark.parametrize(
    ("name", "weights", "allow_nonfinite", "message"),
    [
        ("missing", weight, False, r"'task.weight_feature': received 'missing', which is not a feature of '.*'; "),
        ("pair", weight, False, r"received 'pair', a raw float32 \[2\] feature of .*; expected one number per example"),
        ("name", weight, False, r"received 'name', a string string \[\] feature of .*; expected one number per"),
        # Round robin over 2 shards: example 7 is shard 1's record 3.
        ("w", lambda index: -1.0 if index == 7 else 1.0, False, r"is -1.0 in '.*-00001-of-00002.tfrecord' record 3"),
        # NaN counted by records write (record 10 of the split), refused even where NaN features are allowed.
        ("w", lambda index: np.nan if index == 5 else 1.0, True, r"'w' \(task.weight_feature\) of .* is NaN/inf in"),
    ],
)
def test_a_weight_feature_that_is_missing_not_a_number_or_negative_is_refused_in_one_line(
    tmp_path, name, weights, allow_nonfinite, message
):
    folder = write(tmp_path / "split", count=12, weights=weights)
    with pytest.raises(UserError, match=message) as raised:
        data.load_schema(folder, section(folder, allow_nonfinite=allow_nonfinite), weight_feature=name)
    assert "\n" not in str(raised.value)
    assert "task.weight_feature" in str(raised.value)


def test_a_negative_weight_past_the_first_records_stops_the_reader_with_the_line_the_trainer_maps(tmp_path):
    folder = write(tmp_path / "split", count=30, weights=lambda index: -2.0 if index == 25 else 1.0, shards=1)
    schema = data.load_schema(folder, section(folder))
    checks.check_first_records(folder, schema, section(folder), weight_feature="w", limit=20)  # not seen yet
    make = data.dataset_fn(
        folder, schema, section(folder), per_replica_batch_size=8, training=False, seed=0, epoch=0, weight_feature="w"
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=checks.LABEL_ERROR_PREFIX) as raised:
        list(make(tf.distribute.InputContext()))
    line = str(recovery.label_error(raised.value))
    assert line.startswith("weight feature 'w' holds a negative, NaN or infinite value past the records checked")
    assert line.endswith("or set task.weight_feature: null.") and "\n" not in line


def test_the_train_command_refuses_a_negative_weight_with_exit_2_and_one_line(tmp_path, outside_repo):
    folder = write(tmp_path / "split", count=12, weights=lambda index: -1.0 if index == 2 else 1.0)
    config = outside_repo / "run.yaml"
    body = {
        "model": "mlp",
        "data": {"train": folder, "features": "x", "label": "label"},
        "task": {"weight_feature": "w"},
        "train": {"epochs": 1, "global_batch_size": 4},
    }
    config.write_text(yaml.safe_dump(body))
    before = file_hashes(tmp_path)
    result = tfkit_process(["tfkit.train", "--config", str(config), "--workdir", "run"], cwd=outside_repo)
    line = assert_refused(result, before=before, roots=[tmp_path])
    assert "weight feature 'w' (task.weight_feature)" in line and "is -1.0 in" in line and "record 1" in line
    assert not (outside_repo / "run").exists()
