from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import DIGITS_CONFIG, read_scalars

import tfkit.train
from tfkit import distribute, loop, losses, optimizers
from tfkit.config import DistributeConfig

FIRST_STEPS = 20


def step_losses(tmp_path, name, overrides):
    workdir = tmp_path / name
    tfkit.train.run(
        DIGITS_CONFIG, workdir=workdir, overrides=["train.epochs=1", "train.steps_per_execution=1", *overrides]
    )
    losses = read_scalars(workdir / "logs" / "train", "loss")
    return np.array([losses[step] for step in range(1, FIRST_STEPS + 1)])


def test_the_same_global_batch_gives_the_same_losses_on_1_2_and_4_replicas(tmp_path):
    one = step_losses(tmp_path, "one", [])
    two = step_losses(tmp_path, "two", ["distribute.cpu_replicas=2"])
    four = step_losses(tmp_path, "four", ["distribute.cpu_replicas=4"])
    assert one[-1] < one[0] and np.ptp(one) > 1e-2  # the weights move, so agreeing to 1e-5 means something
    np.testing.assert_allclose(two, one, atol=1e-5, rtol=0)
    np.testing.assert_allclose(four, one, atol=1e-5, rtol=0)


def test_accumulating_two_half_batches_matches_one_full_batch(tmp_path):
    full = step_losses(tmp_path, "full", [])
    accumulated = step_losses(tmp_path, "accumulated", ["train.grad_accum_steps=2", "distribute.cpu_replicas=2"])
    np.testing.assert_allclose(accumulated, full, atol=1e-5, rtol=0)


def test_clipping_applies_to_the_global_gradient_not_each_replicas_share():
    strategy = distribute.select(DistributeConfig(strategy="mirrored", cpu_replicas=2)).strategy
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    weights = np.ones(8, np.float32)
    clip_norm = 0.01
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
        optimizer = keras.optimizers.SGD(learning_rate=1.0)
        optimizer.build(model.trainable_variables)
    before = [v.numpy() for v in model.trainable_variables]
    loss_fn = losses.per_example_loss("sparse_categorical_crossentropy", from_logits=True)

    # The reference: the gradient of the mean loss over all 8 examples on one device, clipped to clip_norm.
    with tf.GradientTape() as tape:
        reference_loss = tf.reduce_mean(loss_fn(y, model(x)))
    gradient = tape.gradient(reference_loss, model.trainable_variables)
    clipped, norm = tf.clip_by_global_norm(gradient, clip_norm)
    assert float(norm) > 10 * clip_norm  # clipping really bites
    expected = [w - g.numpy() for w, g in zip(before, clipped, strict=True)]

    train = loop.make_train_function(
        strategy=strategy,
        model=model,
        optimizer=optimizer,
        loss_fn=loss_fn,
        metrics={},
        settings=loop.StepSettings(global_batch_size=8, clip_norm=clip_norm),
    )
    dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(8))
    loss = train(iter(dataset), tf.constant(1))
    assert float(loss) == pytest.approx(float(reference_loss), abs=1e-6)
    for after, want in zip(model.trainable_variables, expected, strict=True):
        np.testing.assert_allclose(after.numpy(), want, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_learns_on_cpu_and_leaves_the_global_policy_alone(tmp_path, policy):
    workdir = tmp_path / policy
    summary = tfkit.train.run(DIGITS_CONFIG, workdir=workdir, overrides=[f"precision={policy}", "train.epochs=4"])
    assert summary["precision"] == policy
    with (workdir / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"]) / 2
    assert summary["metrics"]["accuracy"] > 0.6  # chance is 0.1
    scales = read_scalars(workdir / "logs" / "train", "loss_scale")
    if policy == "mixed_float16":
        assert min(scales.values()) > 1.0  # dynamic loss scaling is active
    else:
        assert set(scales.values()) == {1.0}  # bfloat16 needs none
    assert keras.config.dtype_policy().name == "float32"


def test_the_schedule_serialises_for_saved_optimizers():
    schedule = optimizers.WarmupSchedule(peak=0.1, warmup_steps=3, total_steps=30, decay="cosine")
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert float(restored(tf.constant(7))) == pytest.approx(float(schedule(tf.constant(7))))


def test_a_users_loss_with_python_control_flow_on_tensors_trains_and_evaluates(tmp_path):
    # The train and eval steps call user losses, so they keep AutoGraph, which turns this ``if`` into a tf.cond; the
    # predict step calls only the model, which Keras never converts, and runs without it.
    code = tmp_path / "branchy_loss.py"
    code.write_text(
        "import tensorflow as tf\n"
        "def branchy(labels, outputs):\n"
        "    errors = tf.square(outputs[:, 0] - tf.cast(labels, tf.float32))\n"
        "    if tf.reduce_mean(errors) > 1e9:\n"
        "        return tf.sqrt(errors)\n"
        "    return errors\n"
    )
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    optimizer.build(model.trainable_variables)
    loss_fn = losses.per_example_loss(f"{code}:branchy", from_logits=False)
    x = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
    y = np.array([1.0, 0.0], np.float32)
    batches = tf.data.Dataset.from_tensor_slices((x, y, np.ones(2, np.float32))).batch(2).repeat()
    expected = float(tf.reduce_mean(tf.square(model(x)[:, 0] - y)))
    train = loop.make_train_function(
        strategy=strategy,
        model=model,
        optimizer=optimizer,
        loss_fn=loss_fn,
        metrics={},
        settings=loop.StepSettings(global_batch_size=2),
    )
    assert float(train(iter(batches), tf.constant(1))) == pytest.approx(expected, rel=1e-6)
    mean = keras.metrics.Mean()
    evaluate = loop.make_eval_function(strategy=strategy, model=model, loss_fn=loss_fn, loss_metric=mean, metrics={})
    evaluate(iter(batches), tf.constant(2))
    assert float(mean.result()) == pytest.approx(float(tf.reduce_mean(tf.square(model(x)[:, 0] - y))), rel=1e-6)
