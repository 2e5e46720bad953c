"""The training split as one distributed iterator over chained epochs, so no epoch boundary tears threads down.

Each epoch's order follows from the seed and the epoch alone (see tfkit.data.dataset_fn's ``until_epoch``), so one
iterator can serve several epochs and still stand where a fresh one would. It is valid at the position it stands at:
the start of the next epoch once an epoch ends; after a recovery or a change of the batch split it is dropped and the
next epoch builds a new one, skipping to the step to resume from.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfkit import data
from tfkit.config import Config
from tfkit.plan import Plan
from tfkit.records import Schema


class TrainingStream:
    """The training iterator of one session.

    Args:
        config: The run config (the data section and the seed).
        strategy: The strategy whose replicas read it.
        schema: The training split's schema.
    """

    def __init__(self, config: Config, *, strategy: tf.distribute.Strategy, schema: Schema) -> None:
        self.config = config
        self.strategy = strategy
        self.schema = schema
        self._iterator: Any = None
        self._at: tuple[int, int] | None = None
        self._until = 0

    def at(self, plan: Plan, *, epoch: int, position: int) -> Any:
        """The iterator standing at step ``position`` of ``epoch``: the one kept, or a new one skipped to there."""
        if self._iterator is None or self._at != (epoch, position):
            config = self.config
            # A file cache is written by one epoch's reader and read by the next: one iterator per epoch then.
            self._until = epoch + 1 if config.data.cache else min(plan.epochs, epoch + data.EPOCHS_PER_ITERATOR)
            make = data.dataset_fn(
                config.data.train,
                self.schema,
                config.data,
                per_replica_batch_size=plan.per_replica_batch_size,
                training=True,
                seed=config.seed,
                epoch=epoch,
                skip_batches=position * plan.micro_batches_per_pipeline,
                until_epoch=self._until,
                batches_per_epoch=plan.steps_per_epoch * plan.micro_batches_per_pipeline,
                num_classes=config.model.num_classes,
                weight_feature=config.task.weight_feature,
            )
            self._iterator = iter(self.strategy.distribute_datasets_from_function(make))
        self._at = None  # mid-epoch from here; set again once the epoch is done
        return self._iterator

    def epoch_done(self, epoch: int) -> None:
        """The iterator now stands at the start of ``epoch + 1``, if it runs that far."""
        self._at = (epoch + 1, 0) if epoch + 1 < self._until else None

    def drop(self) -> None:
        """Forgets the iterator: the state went back (a recovery) or the batch split changed."""
        self._iterator = None
        self._at = None
