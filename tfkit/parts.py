"""Everything a run builds under the strategy's scope: the model, the optimizer and its schedule, the metrics.

Built once per session, before the batch is final: the batch finder's trials run the real model with the optimizer's
slots already built, so a trial needs the memory a real step needs. The schedule is retargeted once the plan is.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from tfkit import loop, models, optimizers, precision
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
    """

    model: keras.Model
    schedule: optimizers.WarmupSchedule
    optimizer: keras.optimizers.Optimizer
    faults: Faults
    loss_fn: loop.PerExampleLoss
    train_metrics: dict[str, keras.metrics.Metric]
    eval_metrics: dict[str, keras.metrics.Metric]
    train_loss: keras.metrics.Mean
    eval_loss: keras.metrics.Mean


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
        optimizer = precision.wrap_optimizer(optimizers.build(config.optimizer, schedule), precision_name)
        # Build the optimizer's slots under the scope before the first step; built lazily inside the step, they
        # become placeholders that Mirrored replicas cannot feed.
        optimizer.build(model.trainable_variables)
        faults = Faults(config.faults, iterations=optimizer.iterations)
        train_metrics, eval_metrics = (
            loop.make_metrics(task.metrics, loss=task.loss, from_logits=task.from_logits, data_range=task.data_range)
            for _ in range(2)
        )
        train_loss = keras.metrics.Mean(name="loss")
        eval_loss = keras.metrics.Mean(name="loss")
    return Parts(
        model=model,
        schedule=schedule,
        optimizer=optimizer,
        faults=faults,
        loss_fn=loop.per_example_loss(task.loss, from_logits=task.from_logits),
        train_metrics=train_metrics,
        eval_metrics=eval_metrics,
        train_loss=train_loss,
        eval_loss=eval_loss,
    )
