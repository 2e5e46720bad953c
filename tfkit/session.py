"""Setting up one session of a run, before it trains: strategy, schema, plan, parts, batch split, checkpoint state.

Everything here reads and checks; the only files written are the finder's ``batch.json`` (with ``auto``) and, by
the trainer later, the run's own.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import psutil

from tfkit import autobatch, batch, checkpoint, data, distribute, loop, losses, memory, parts, plan, units
from tfkit import config as config_lib
from tfkit.evaluation import Evaluator
from tfkit.records import Schema
from tfkit.report import Reporter
from tfkit.trainer import Trainer


def trainer(
    config: config_lib.Config,
    *,
    selected: distribute.Selected,
    provisional: plan.Plan,
    train_schema: Schema,
    eval_schema: Schema | None,
    report: Reporter,
) -> Trainer:
    """Builds everything a session trains with and returns its trainer.

    Args:
        config: The run config.
        selected: The strategy in use.
        provisional: The plan from the config alone (see ``prepare``).
        train_schema: The training split's schema.
        eval_schema: The eval split's schema, or None.
        report: The session's reporter, on the run's workdir.
    """
    work = report.work
    num_classes = _num_classes(config, train_schema)
    built = build(config, selected=selected, provisional=provisional, train_schema=train_schema)
    split = choose_split(
        config, selected=selected, built=built, provisional=provisional, train_schema=train_schema, report=report
    )
    run_plan = plan.make(config, selected=selected, train_schema=train_schema, batch=split.pair)
    built.schedule.retarget(peak=run_plan.learning_rate, total_steps=run_plan.total_steps)
    state = checkpoint.RunState(
        model=built.model,
        optimizer=built.optimizer,
        metrics=[built.train_loss, *built.train_metrics.values()],
        directory=work.checkpoints,
        keep=config.checkpoint.keep,
        identity={
            "model": config.model.backbone or config.model.name,  # a run of another backbone is refused
            "input_shape": list(train_schema.features[config.data.features].shape),
            "num_classes": num_classes,
            "global_batch_size": run_plan.global_batch_size,
            "steps_per_epoch": run_plan.steps_per_epoch,
        },
        batch=split.pair,
        learning_rate_scale=built.schedule.scale,
        average=built.average,
    )
    evaluate = None
    if config.data.eval and eval_schema is not None:
        evaluate = Evaluator(
            config,
            strategy=selected.strategy,
            model=built.model,
            loss_fn=built.loss_fn,
            loss_metric=built.eval_loss,
            metrics=built.eval_metrics,
            folder=config.data.eval,
            schema=eval_schema,
            pipelines=plan.input_pipelines(selected),
            weight_feature=config.task.weight_feature,
        )
    return Trainer(
        config,
        selected=selected,
        parts=built,
        split=split,
        run_plan=run_plan,
        state=state,
        evaluate=evaluate,
        report=report,
        train_schema=train_schema,
        eval_schema=eval_schema,
        guard=_memory_guard(config, train_schema, report),
    )


def prepare(
    config: config_lib.Config, *, tpu_resolver: Any, workdir: Path | None = None
) -> tuple[distribute.Selected, Schema, plan.Plan]:
    """The strategy, the training schema and the plan from the config alone, before anything is written.

    The plan checks that the batch divides and that the split fills a batch. With ``auto`` it holds a placeholder
    batch of 1 per replica until the finder runs. A schema inferred in an earlier session is read from ``workdir``.
    """
    selected = distribute.select(config.distribute, tpu_resolver=tpu_resolver)
    train_schema = read_split(config, "train", workdir=workdir)
    auto = config.train.per_replica_batch_size == "auto"
    placeholder = (1, config.train.grad_accum_steps) if auto else None
    provisional = plan.make(config, selected=selected, train_schema=train_schema, batch=placeholder)
    return selected, train_schema, provisional


def read_split(config: config_lib.Config, split: str, *, workdir: Path | None, classes: int | None = None) -> Schema:
    """A split's schema (``data.train`` or ``data.eval``), checked against the data's first records.

    A schema inferred from foreign records in an earlier session of the run is read from the workdir; a new one is
    only kept there once the run has passed every check (``data.keep_inferred``), so a refused command writes nothing.
    """
    kept = workdir if workdir is not None and data.inferred_schema_path(workdir, split).exists() else None
    source = config.data.train if split == "train" else config.data.eval
    # Labels are checked against the classes only where the loss reads them as class ids, not masks or targets.
    bound = (config.model.num_classes or classes) if losses.takes_class_ids(config.task.loss) else None
    return data.load_schema(
        source or "",
        config.data,
        split=split,
        workdir=kept,
        num_classes=bound,
        weight_feature=config.task.weight_feature,
    )


def _num_classes(config: config_lib.Config, schema: Schema) -> int:
    label = schema.features[config.data.label]
    return config.model.num_classes or label.num_classes or max(1, math.prod(label.shape))


def build(
    config: config_lib.Config, *, selected: distribute.Selected, provisional: plan.Plan, train_schema: Schema
) -> parts.Parts:
    """The model, optimizer and metrics, built under the strategy's scope with the provisional plan."""
    return parts.build(
        config,
        strategy=selected.strategy,
        precision_name=provisional.precision,
        learning_rate=provisional.learning_rate,
        total_steps=provisional.total_steps,
        input_shape=train_schema.features[config.data.features].shape,
        num_classes=_num_classes(config, train_schema),
    )


def choose_split(
    config: config_lib.Config,
    *,
    selected: distribute.Selected,
    built: parts.Parts,
    provisional: plan.Plan,
    train_schema: Schema,
    report: Reporter,
) -> batch.BatchSplit:
    """The split stored with the run, the finder's (stored in ``batch.json``), or the config's."""
    replicas = selected.replicas

    def find(global_batch: int | None) -> autobatch.Choice:
        runner = autobatch.TrialRunner(
            strategy=selected.strategy,
            model=built.model,
            forward_backward=built.faults.wrap(
                loop.make_forward_backward(
                    model=built.model,
                    optimizer=built.optimizer,
                    loss_fn=built.loss_fn,
                    settings=loop.StepSettings(
                        global_batch_size=replicas,
                        clip_norm=config.train.clip_norm,
                        jit_compile=config.train.jit_compile,
                    ),
                    replicas=replicas,
                )
            ),
            feature=train_schema.features[config.data.features],
            label=train_schema.features[config.data.label],
            device_kind=selected.device_kind,
            fraction=config.memory.device_fraction,
        )
        pipelines = plan.input_pipelines(selected)
        shards = train_schema.shards
        return batch.find(
            runner,
            global_batch=global_batch,
            replicas=replicas,
            grad_accum_steps=config.train.grad_accum_steps,
            pipeline_records=[sum(shard.records for shard in shards[index::pipelines]) for index in range(pipelines)],
            tpu=selected.device_kind == "TPU",
            say=report.say,
        )

    stored = report.work.read_batch()
    configured = batch.BatchSplit(
        per_replica_batch_size=provisional.per_replica_batch_size,
        grad_accum_steps=provisional.grad_accum_steps,
        replicas=replicas,
    )
    split = batch.choose(
        config,
        configured=configured,
        stored=batch.BatchSplit.from_json(stored) if stored else None,
        find=find,
        say=report.say,
    )
    if split.source == "auto" and split.to_json() != stored:
        report.work.write_batch(split.to_json())
    return split


def _memory_guard(config: config_lib.Config, schema: Schema, report: Reporter) -> memory.HostMemoryGuard:
    """The host-memory guard for this run, with the consumer it can name; warns when the shuffle buffer cannot fit."""
    budget = memory.host_budget_bytes()
    limit = config.memory.host_limit.of(budget)
    record = data.record_bytes(schema)
    examples = data.shuffle_examples(schema, config.data)
    shuffle = examples * record
    attribution = (
        f"the largest consumer tfkit can attribute is the shuffle buffer, {examples} examples x "
        f"{units.format_bytes(record)} = {units.format_bytes(shuffle)} (lower data.shuffle_buffer or "
        "data.shuffle_buffer_bytes)"
        + (f", then the file cache's reads ({config.data.cache})" if config.data.cache else "")
        + "; prefetch is bounded by tf.data's autotuning (data.ram_budget). If the machine has room, raise "
        "memory.host_limit."
    )
    if shuffle > min(limit, psutil.virtual_memory().available):
        report.say(
            f"tfkit: warning: the shuffle buffer needs about {units.format_bytes(shuffle)}, more than the "
            f"{units.format_bytes(limit)} memory.host_limit allows; lower data.shuffle_buffer_bytes."
        )
    return memory.HostMemoryGuard(limit_bytes=limit, attribution=attribution)
