"""Everything a run builds under the strategy's scope: the model, the optimizer and its schedule, the metrics.

Built once per session, before the batch is final: the batch finder's trials run the real model with the optimizer's
slots already built, so a trial needs the memory a real step needs. The schedule is retargeted once the plan is.
"""

from __future__ import annotations

import collections
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfkit import averaging, data, losses, metric_builder, models, optimizers, precision
from tfkit.config import Config
from tfkit.faults import Faults


@dataclasses.dataclass(frozen=True)
class Parts:
    """What the strategy's scope holds for one run.

    Attributes:
        model: The Keras model; outputs are logits (or raw values for regression and masks).
        schedule: The learning-rate schedule, with the multiplier the NaN guard and the plateau schedule lower.
        optimizer: The built optimizer (a ``LossScaleOptimizer`` under float16).
        faults: The faults injected on purpose (none by default).
        loss_fn: The per-example loss.
        train_metrics: Metrics over the training batches of an epoch.
        eval_metrics: The same metrics over the eval split.
        train_loss: The epoch's mean of the per-call training losses.
        eval_loss: The eval split's mean loss.
        average: Swaps the moving average of the weights in and out (``train.ema_decay``), or None without one.
    """

    model: keras.Model
    schedule: optimizers.WarmupSchedule
    optimizer: keras.optimizers.Optimizer
    faults: Faults
    loss_fn: losses.PerExampleLoss
    train_metrics: dict[str, keras.metrics.Metric]
    eval_metrics: dict[str, keras.metrics.Metric]
    train_loss: keras.metrics.Mean
    eval_loss: keras.metrics.Mean
    average: averaging.WeightAverage | None = None


def build(
    config: Config,
    *,
    strategy: tf.distribute.Strategy,
    precision_name: str,
    learning_rate: float,
    total_steps: int,
    input_shape: tuple[int, ...],
    num_classes: int,
) -> Parts:
    """Builds the run's parts under ``strategy``'s scope, seeded by ``config.seed``.

    Args:
        config: The run config.
        strategy: The strategy in use.
        precision_name: The Keras dtype policy.
        learning_rate: The peak learning rate (the plan's; retargeted later with ``schedule.retarget``).
        total_steps: The run's optimizer steps, for the schedule.
        input_shape: One example's input shape.
        num_classes: Outputs of the head.
    """
    task = config.task
    with precision.policy(precision_name), strategy.scope():
        keras.utils.set_random_seed(config.seed)
        model = models.build(config.model, input_shape=input_shape, num_classes=num_classes)
        schedule = optimizers.schedule(config.optimizer, peak_learning_rate=learning_rate, total_steps=total_steps)
        inner = optimizers.build(config.optimizer, schedule)
        averaging.enable(inner, config.train.ema_decay)
        optimizer = precision.wrap_optimizer(inner, precision_name)
        # Every weight that will ever train has its slots, a frozen backbone's too (tfkit.freezing unfreezes it
        # later, and a built optimizer cannot take new variables).
        # Build the optimizer's slots under the scope before the first step; built lazily inside the step, they
        # become placeholders that Mirrored replicas cannot feed.
        optimizer.build(model.trainable_variables)
        faults = Faults(config.faults, iterations=optimizer.iterations)
        train_metrics, eval_metrics = (
            metric_builder.make_metrics(
                task.metrics,
                loss=task.loss,
                from_logits=task.from_logits,
                num_classes=num_classes,
                data_range=task.data_range,
            )
            for _ in range(2)
        )
        average = averaging.WeightAverage(optimizer) if config.train.ema_decay is not None else None
        train_loss = keras.metrics.Mean(name="loss")
        eval_loss = keras.metrics.Mean(name="loss")
    return Parts(
        model=model,
        schedule=schedule,
        optimizer=optimizer,
        faults=faults,
        loss_fn=losses.per_example_loss(
            task.loss, from_logits=task.from_logits, class_weights=_class_weights(config, num_classes=num_classes)
        ),
        train_metrics=train_metrics,
        eval_metrics=eval_metrics,
        train_loss=train_loss,
        eval_loss=eval_loss,
        average=average,
    )


def _class_weights(config: Config, *, num_classes: int) -> tf.Tensor | None:
    """``task.class_weights`` as one weight per class, or None."""
    weights = config.task.class_weights
    if weights is None:
        return None
    if weights == "balanced":
        weights = losses.balanced_weights(class_counts(config), num_classes=num_classes)
    return losses.class_weight_table(weights, num_classes=num_classes)


def class_counts(config: Config) -> dict[int, int]:
    """Examples of each class id in the training split, for ``task.class_weights: balanced``: one pass, at start."""
    schema = data.load_schema(config.data.train, config.data)
    make = data.dataset_fn(
        config.data.train, schema, config.data, per_replica_batch_size=1024, training=False, seed=0, epoch=0
    )
    counts: collections.Counter[int] = collections.Counter()
    for _, labels, weights in make(tf.distribute.InputContext()):
        real = np.asarray(labels)[np.asarray(weights) > 0]  # eval batches are padded with weight 0
        counts.update(int(label) for label in real.reshape(len(real), -1)[:, 0])
    return dict(counts)
