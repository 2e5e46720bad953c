"""Evaluating a model on a split: every record once, with the run's own loss and metrics.

Eval batches are padded to a static shape with zero weight on the padding (see tfkit.data), so padding counts for
nothing in the loss or any metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfkit import data, loop
from tfkit.config import Config
from tfkit.parts import Parts
from tfkit.records import Schema


class Evaluator:
    """Evaluates one split with the run's eval loss and metrics.

    Args:
        config: The run config (the data section and the seed).
        strategy: The strategy whose scope built ``parts``.
        parts: The model, loss and eval metrics.
        folder: The split's folder or glob.
        schema: The split's schema.
    """

    def __init__(
        self,
        config: Config,
        *,
        strategy: tf.distribute.Strategy,
        parts: Parts,
        folder: str | Sequence[str],
        schema: Schema,
    ) -> None:
        self.config = config
        self.strategy = strategy
        self.parts = parts
        self.folder = folder
        self.schema = schema
        self.step = loop.make_eval_function(
            strategy=strategy,
            model=parts.model,
            loss_fn=parts.loss_fn,
            loss_metric=parts.eval_loss,
            metrics=parts.eval_metrics,
        )

    def __call__(self, *, per_replica_batch_size: int) -> dict[str, float]:
        """Evaluates every record once; returns the loss and metrics."""
        parts = self.parts
        for metric in (parts.eval_loss, *parts.eval_metrics.values()):
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
            )
        )
        for batch in dataset:
            self.step(batch)
        values = {"loss": float(parts.eval_loss.result())}
        values.update({name: float(metric.result()) for name, metric in parts.eval_metrics.items()})
        return values
