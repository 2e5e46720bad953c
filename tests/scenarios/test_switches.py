"""The usual switches: the moving average of the weights, and early stopping that keeps the best weights."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import DIGITS_CONFIG

import tfkit.train
from tfkit import averaging, checkpoint, export, loop, losses

DECAY = 0.8


def test_the_moving_average_matches_numpy_and_checkpoints_hold_it_in_the_models_place(tmp_path):
    strategy = tf.distribute.get_strategy()
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    optimizer = keras.optimizers.SGD(learning_rate=0.5)
    averaging.enable(optimizer, DECAY)
    optimizer.build(model.trainable_variables)
    average = averaging.WeightAverage(optimizer)
    batches = [(rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 3, 8)) for _ in range(5)]
    dataset = tf.data.Dataset.from_tensor_slices(
        (np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]), np.ones(40, np.float32))
    ).batch(8)
    train = loop.make_train_function(
        strategy=strategy,
        model=model,
        optimizer=optimizer,
        loss_fn=losses.per_example_loss("sparse_categorical_crossentropy", from_logits=True),
        metrics={},
        settings=loop.StepSettings(global_batch_size=8),
    )
    iterator = iter(dataset)
    expected = None
    for _ in batches:
        train(iterator, tf.constant(1))
        weights = [w.numpy() for w in model.trainable_variables]
        # Keras starts the average at the weights after the first step.
        expected = (
            weights
            if expected is None
            else [DECAY * e + (1 - DECAY) * w for e, w in zip(expected, weights, strict=True)]
        )
    for got, want in zip(average.averages, expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)

    raw = [w.numpy() for w in model.trainable_variables]
    state = checkpoint.RunState(
        model=model,
        optimizer=optimizer,
        metrics=[],
        directory=tmp_path / "checkpoints",
        keep=2,
        identity={},
        batch=(8, 1),
        learning_rate_scale=tf.Variable(1.0),
        average=average,
    )
    state.save(step=5, elapsed=0.0, best=1.0)
    for weight, kept in zip(model.trainable_variables, raw, strict=True):
        assert weight.numpy().tobytes() == kept.tobytes()  # saving swaps back
    # What export restores (the best checkpoint's model) is the average.
    fresh = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    tf.train.Checkpoint(model=fresh).restore(str(tmp_path / "checkpoints" / "best" / "ckpt-5")).expect_partial()
    for got, want in zip(fresh.trainable_variables, average.averages, strict=True):
        assert got.numpy().tobytes() == want.numpy().tobytes()
    # A restore puts the weights training continues from back into the model.
    for weight in model.trainable_variables:
        weight.assign(np.zeros(weight.shape, np.float32))
    assert state.restore()
    for weight, kept in zip(model.trainable_variables, raw, strict=True):
        assert weight.numpy().tobytes() == kept.tobytes()
    assert int(average.swapped.numpy()) == 0


def history(workdir):
    with (workdir / "history.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_early_stopping_ends_the_run_as_completed_and_keeps_the_best_weights(tmp_path, capsys):
    run = tmp_path / "run"
    # val_loss falls every early epoch; monitored as if higher were better, it never improves after the first.
    overrides = [
        "train.epochs=8",
        "train.early_stopping_patience=2",
        "checkpoint.monitor=val_loss",
        "checkpoint.monitor_mode=max",
        "train.ema_decay=0.5",
    ]
    summary = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=overrides)
    rows = history(run)
    losses_by_epoch = [float(row["val_loss"]) for row in rows]
    assert losses_by_epoch == sorted(losses_by_epoch, reverse=True)  # the premise: it never improves
    steps_per_epoch = int(rows[0]["step"])
    assert summary["status"] == "completed" and len(rows) == 3 and summary["steps"] == 3 * steps_per_epoch
    assert summary["early_stopped"] == {"epoch": 3, "best_step": steps_per_epoch, "patience": 2}
    assert summary["best"]["step"] == steps_per_epoch
    assert "stopping early (train.early_stopping_patience=2)" in capsys.readouterr().out
    _, path = export.restore_model(run)
    assert path.endswith(f"best/ckpt-{steps_per_epoch}")
    again = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=overrides)
    assert again["steps"] == summary["steps"]  # a finished run is not trained further
