"""Evaluating a model on a split: every record once, with the run's own loss and metrics.

Eval batches are padded to a static shape, and each input pipeline to a whole number of steps, with zero weight on
the padding (see tfkit.data.eval_steps), so padding counts for nothing in the loss or any metric and the metrics do
not depend on the number of replicas or workers. Like training, one compiled call runs several steps
(``train.steps_per_execution``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from tfkit import data, loop
from tfkit.config import Config
from tfkit.losses import PerExampleLoss
from tfkit.records import Schema


class Evaluator:
    """Evaluates one split with the run's eval loss and metrics.

    Args:
        config: The run config (the data section, the seed, ``train.steps_per_execution``).
        strategy: The strategy whose scope built the model and metrics.
        model: The model.
        loss_fn: The per-example loss.
        loss_metric: The mean of the loss over the split.
        metrics: The eval metrics.
        folder: The split's folder or glob.
        schema: The split's schema.
        pipelines: Input pipelines (worker hosts) the strategy creates.
        weight_feature: The feature whose values weigh each example's loss and metrics (``task.weight_feature``,
            for the run's own evals); None weighs every record 1.
    """

    def __init__(
        self,
        config: Config,
        *,
        strategy: tf.distribute.Strategy,
        model: keras.Model,
        loss_fn: PerExampleLoss,
        loss_metric: keras.metrics.Mean,
        metrics: dict[str, keras.metrics.Metric],
        folder: str | Sequence[str],
        schema: Schema,
        pipelines: int = 1,
        weight_feature: str | None = None,
    ) -> None:
        self.config = config
        self.strategy = strategy
        self.loss_metric = loss_metric
        self.metrics = metrics
        self.folder = folder
        self.schema = schema
        self.pipelines = pipelines
        self.weight_feature = weight_feature
        self.step = loop.make_eval_function(
            strategy=strategy, model=model, loss_fn=loss_fn, loss_metric=loss_metric, metrics=metrics
        )

    def __call__(
        self, *, per_replica_batch_size: int, between_calls: Callable[[], None] | None = None
    ) -> dict[str, float]:
        """Evaluates every record once; returns the loss and metrics.

        ``between_calls`` runs after each compiled call: ``tfkit.evaluate`` ends there on a signal.
        """
        for metric in (self.loss_metric, *self.metrics.values()):
            metric.reset_state()
        dataset = self.strategy.distribute_datasets_from_function(
            data.dataset_fn(
                self.folder,
                self.schema,
                self.config.data,
                per_replica_batch_size=per_replica_batch_size,
                training=False,
                seed=self.config.seed,
                epoch=0,
                weight_feature=self.weight_feature,
            )
        )
        steps = data.eval_steps(
            self.schema,
            per_replica_batch_size=per_replica_batch_size,
            pipelines=self.pipelines,
            replicas=self.strategy.num_replicas_in_sync,
        )
        iterator = iter(dataset)
        per_call = max(1, self.config.train.steps_per_execution)
        for done in range(0, steps, per_call):
            self.step(iterator, tf.constant(min(per_call, steps - done)))
            if between_calls is not None:
                between_calls()
        values = {"loss": float(self.loss_metric.result())}
        values.update({name: float(metric.result()) for name, metric in self.metrics.items()})
        return values
