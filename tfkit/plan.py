"""The run plan: batches, steps and the learning rate, derived once from the config, the strategy and the data.

Epochs become steps here and nowhere else; the loop only counts steps. The plan is what ``summary.json`` reports and
what a resumed run must agree with.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfkit import precision as precision_lib
from tfkit.config import Config
from tfkit.distribute import Selected
from tfkit.errors import UserError
from tfkit.optimizers import scaled_learning_rate
from tfkit.records import Schema


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the run does, in steps and examples.

    Attributes:
        strategy: The strategy's short name.
        replicas: Replicas in sync over all workers.
        input_pipelines: Input pipelines, one per worker (host).
        per_replica_batch_size: Examples per replica per micro-batch.
        grad_accum_steps: Micro-batches per optimizer step.
        global_batch_size: Examples per optimizer step over all replicas and micro-batches.
        steps_per_epoch: Optimizer steps per pass over the training split.
        epochs: Passes over the training split.
        total_steps: ``epochs * steps_per_epoch``.
        steps_per_execution: Optimizer steps per ``tf.function`` call.
        learning_rate: The peak rate after scaling to the global batch.
        precision: The Keras dtype policy in force.
    """

    strategy: str
    replicas: int
    input_pipelines: int
    per_replica_batch_size: int
    grad_accum_steps: int
    global_batch_size: int
    steps_per_epoch: int
    epochs: int
    total_steps: int
    steps_per_execution: int
    learning_rate: float
    precision: str

    @property
    def micro_batches_per_pipeline(self) -> int:
        """Per-replica batches one pipeline yields for one optimizer step."""
        return self.replicas // self.input_pipelines * self.grad_accum_steps

    def to_dict(self) -> dict[str, Any]:
        """Returns the plan as JSON-ready data."""
        return dataclasses.asdict(self)


def make(config: Config, *, selected: Selected, train_schema: Schema, batch: tuple[int, int] | None = None) -> Plan:
    """Derives the plan.

    Args:
        config: The run config.
        selected: The strategy in use.
        train_schema: The training split's schema, for its record counts per shard.
        batch: The (per-replica batch, accumulation steps) split to use instead of the config's: the batch
            finder's choice, or the split stored with the run. Required when the config says ``auto``.

    Returns:
        The plan.

    Raises:
        UserError: The global batch does not divide over the replicas, or the data is smaller than one global batch.
    """
    train = config.train
    replicas = selected.replicas
    pipelines = input_pipelines(selected)
    accum = train.grad_accum_steps
    if batch is not None:
        per_replica, accum = batch
    elif isinstance(train.per_replica_batch_size, int):
        per_replica = train.per_replica_batch_size
    elif train.per_replica_batch_size == "auto":
        raise ValueError("plan.make needs the batch that the finder chose for per_replica_batch_size: auto")
    else:
        global_batch = train.global_batch_size or 0  # validated: exactly one batch key is set
        divisor = replicas * accum
        if global_batch % divisor:
            lower = max(divisor, global_batch // divisor * divisor)
            raise UserError(
                f"config key 'train.global_batch_size': received {global_batch}, which does not divide over "
                f"{replicas} replica(s) x {accum} accumulation step(s); expected a multiple of {divisor}, "
                f"e.g. {lower} or {lower + divisor}."
            )
        per_replica = global_batch // divisor
    global_batch = per_replica * replicas * accum

    steps_per_epoch = epoch_steps(
        train_schema,
        pipelines=pipelines,
        global_batch_size=global_batch,
        per_pipeline_divisor=replicas // pipelines * accum,
    )
    chosen_precision = precision_lib.choose(
        config.precision,
        device_kind=selected.device_kind,
        gpu_compute_capability=selected.gpu_compute_capability,
    )
    learning_rate = scaled_learning_rate(
        base_learning_rate=config.optimizer.base_learning_rate,
        base_batch_size=config.optimizer.base_batch_size,
        global_batch_size=global_batch,
        scaling=config.optimizer.scaling,
    )
    return Plan(
        strategy=selected.name,
        replicas=replicas,
        input_pipelines=pipelines,
        per_replica_batch_size=per_replica,
        grad_accum_steps=accum,
        global_batch_size=global_batch,
        steps_per_epoch=steps_per_epoch,
        epochs=train.epochs,
        total_steps=steps_per_epoch * train.epochs,
        steps_per_execution=min(train.steps_per_execution, steps_per_epoch),
        learning_rate=learning_rate,
        precision=chosen_precision,
    )


def input_pipelines(selected: Selected) -> int:
    """How many input pipelines ``distribute_datasets_from_function`` creates: one per worker host."""
    if selected.name == "multi_worker":
        spec = selected.strategy.cluster_resolver.cluster_spec()
        return sum(spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs)
    if selected.name == "tpu":
        return int(selected.strategy.extended.num_hosts)
    return 1


def epoch_steps(schema: Schema, *, pipelines: int, global_batch_size: int, per_pipeline_divisor: int = 1) -> int:
    """Optimizer steps in one epoch when each of ``pipelines`` reads every ``pipelines``-th shard.

    Every replica must get a full batch on every step, so the epoch is as long as the smallest subset of shards
    allows (see tfkit.data for how shards are split).

    Args:
        schema: The training split's schema, with records per shard.
        pipelines: Input pipelines (worker hosts).
        global_batch_size: Examples per optimizer step.
        per_pipeline_divisor: Per-replica batches per step on one pipeline, for the advice in the error.

    Raises:
        UserError: Fewer shards than pipelines, or less data than one global batch.
    """
    files = len(schema.shards)
    if files < pipelines:
        raise UserError(
            f"training data has {files} shard file(s) for {pipelines} input pipelines; expected at least one file "
            "per pipeline (better, 10 or more). Write the data again with more shards."
        )
    per_pipeline = [sum(shard.records for shard in schema.shards[index::pipelines]) for index in range(pipelines)]
    steps = min(per_pipeline) // (global_batch_size // pipelines)
    if steps < 1:
        raise UserError(
            f"training data has {schema.records} records, fewer than one global batch of {global_batch_size} "
            f"(for each of {pipelines} pipeline(s)); expected more data or a smaller batch, e.g. "
            f"--set train.per_replica_batch_size={max(1, min(per_pipeline) // per_pipeline_divisor)}."
        )
    return steps
