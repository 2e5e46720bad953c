"""``python -m tfkit.train``: train a Keras model from a config on whatever tf.distribute strategy fits.

.. code-block:: shell

    python -m tfkit.train                                   # the embedded default: digits CNN on CPU
    python -m tfkit.train --config configs/x.yaml --set train.epochs=5
    python -m tfkit.train --tpu                             # TPU VM; --tpu_address grpc://... for TPU nodes
    python -m tfkit.train --cpu_replicas 8                  # rehearse a TPU v3-8 config on a laptop

From a notebook, ``tfkit.train.run(config_or_path, workdir=None, overrides=(...))`` does the same and returns the
summary instead of exiting.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import psutil
import tensorflow as tf
from absl import flags

from tfkit import checkpoint, data, distribute, loop, memory, models, optimizers, plan, precision, resources, stopping
from tfkit import config as config_lib
from tfkit.errors import Stopped, UserError, run_cli
from tfkit.workdir import Workdir

# What summary.json reports of the plan, besides status, steps, metrics and times.
_SUMMARY_PLAN_KEYS = (
    "strategy",
    "replicas",
    "per_replica_batch_size",
    "global_batch_size",
    "grad_accum_steps",
    "precision",
    "learning_rate",
    "total_steps",
    "epochs",
)

ConfigSource = str | os.PathLike[str] | config_lib.Config | dict[str, Any] | None


def run(
    config_or_path: ConfigSource = None,
    workdir: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    *,
    restart: bool = False,
    tpu_resolver: Any = None,
) -> dict[str, Any]:
    """Trains as ``python -m tfkit.train`` does, and returns the summary.

    Args:
        config_or_path: A YAML path, a bundled config's name (``digits``), a ``Config``, a nested dict of keys, or
            None for the embedded default.
        workdir: The run folder; defaults to ``runs/<config name>``.
        overrides: ``a.b=value`` strings, as with ``--set``.
        restart: Start over in the workdir; the old run is renamed to ``<workdir>.old-<time>``, never deleted.
        tpu_resolver: A cluster resolver for the TPU branch, instead of ``TPUClusterResolver``.

    Running again in the same workdir resumes from the newest checkpoint; a completed run is not trained again.

    Returns:
        The summary also written to ``summary.json``: ``status`` is ``completed``, or ``stopped`` with a
        ``stop_reason`` (a signal, the time limit) after a checkpoint, for a run that the same call resumes.

    Raises:
        UserError: Bad input: a config key, missing data, no TPU.
    """
    started = time.monotonic()
    config = _load_config(config_or_path, overrides)
    selected = distribute.select(config.distribute, tpu_resolver=tpu_resolver)
    train_schema = data.load_schema(config.data.train, config.data)
    eval_schema = data.load_schema(config.data.eval, config.data) if config.data.eval else None
    run_plan = plan.make(config, selected=selected, train_schema=train_schema)
    run_root = Path(workdir or Path("runs") / config.name)
    if restart and selected.is_chief and run_root.exists() and any(run_root.iterdir()):
        kept = run_root.with_name(f"{run_root.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        run_root.rename(kept)
        print(f"tfkit: starting over; the previous run is kept in {kept}")
    work = Workdir(run_root, is_chief=selected.is_chief, task_id=selected.task_id)
    work.write_config(config)
    _say(
        work,
        f"tfkit: {run_plan.strategy} with {run_plan.replicas} replica(s) on {selected.device_kind}; batch "
        f"{run_plan.per_replica_batch_size}/replica x {run_plan.replicas} x {run_plan.grad_accum_steps} accum = "
        f"{run_plan.global_batch_size} global; {run_plan.precision}; {run_plan.epochs} epoch(s) of "
        f"{run_plan.steps_per_epoch} steps; peak lr {run_plan.learning_rate:.3g}; workdir {work.root}",
    )

    strategy = selected.strategy
    feature = train_schema.features[config.data.features]
    label = train_schema.features[config.data.label]
    num_classes = config.model.num_classes or label.num_classes or max(1, math.prod(label.shape))
    with precision.policy(run_plan.precision), strategy.scope():
        keras.utils.set_random_seed(config.seed)
        model = models.build(config.model, input_shape=feature.shape, num_classes=num_classes)
        schedule = optimizers.schedule(
            config.optimizer, peak_learning_rate=run_plan.learning_rate, total_steps=run_plan.total_steps
        )
        optimizer = precision.wrap_optimizer(optimizers.build(config.optimizer, schedule), run_plan.precision)
        # Fault injection: NaN while injections remain, else 1.0 (see faults.nan_loss_at_step).
        nan_value = tf.Variable(math.nan if config.faults.nan_loss_repeats else 1.0, trainable=False)
        # Build the optimizer's slots under the scope before the first step; built lazily inside the step, they
        # become placeholders that Mirrored replicas cannot feed.
        optimizer.build(model.trainable_variables)
        train_metrics = loop.make_metrics(
            config.task.metrics,
            loss=config.task.loss,
            from_logits=config.task.from_logits,
            data_range=config.task.data_range,
        )
        eval_metrics = loop.make_metrics(
            config.task.metrics,
            loss=config.task.loss,
            from_logits=config.task.from_logits,
            data_range=config.task.data_range,
        )
        eval_loss = keras.metrics.Mean(name="loss")
        train_loss = keras.metrics.Mean(name="loss")  # the epoch's mean of the per-call losses; checkpointed
    loss_fn = loop.per_example_loss(config.task.loss, from_logits=config.task.from_logits)
    train_fn = loop.make_train_function(
        strategy=strategy,
        model=model,
        optimizer=optimizer,
        loss_fn=loss_fn,
        metrics=train_metrics,
        settings=loop.StepSettings(
            global_batch_size=run_plan.global_batch_size,
            grad_accum_steps=run_plan.grad_accum_steps,
            clip_norm=config.train.clip_norm,
            jit_compile=config.train.jit_compile,
            nan_at_step=config.faults.nan_loss_at_step,
            nan_value=nan_value,
        ),
    )
    eval_fn = loop.make_eval_function(
        strategy=strategy, model=model, loss_fn=loss_fn, loss_metric=eval_loss, metrics=eval_metrics
    )
    state = checkpoint.RunState(
        model=model,
        optimizer=optimizer,
        metrics=[train_loss, *train_metrics.values()],
        directory=work.checkpoints,
        keep=config.checkpoint.keep,
        identity={
            "model": config.model.name,
            "input_shape": list(feature.shape),
            "num_classes": num_classes,
            "global_batch_size": run_plan.global_batch_size,
            "steps_per_epoch": run_plan.steps_per_epoch,
        },
        batch=(run_plan.per_replica_batch_size, run_plan.grad_accum_steps),
        learning_rate_scale=schedule.scale,
    )
    # Resume order: restore the newest valid checkpoint (model, optimizer, metrics, step), then cut the logs back to
    # its step, then rebuild the data at epoch step // steps_per_epoch and skip to batch step % steps_per_epoch.
    previous = work.read_summary()
    monitor_name, monitor_mode = config_lib.monitored(config)
    if state.restore():
        step = int(state.step.numpy())
        if previous and previous.get("status") == "completed" and step >= run_plan.total_steps:
            _say(
                work,
                f"tfkit: this run already completed {step} steps in {work.root}; nothing to do "
                "(--restart trains again).",
            )
            return previous
        _say(work, _resume_message(state, run_plan, monitor_name=monitor_name))
        state.batch.assign((run_plan.per_replica_batch_size, run_plan.grad_accum_steps))
    else:
        step = 0
    session_first_step = step
    work.rewind(step)
    work.open_logs()
    if config.faults.preempt_at_step is not None:
        _say(work, f"tfkit: fault injection on: a preemption after step {config.faults.preempt_at_step}")
    if config.faults.nan_loss_at_step is not None:
        _say(
            work,
            f"tfkit: fault injection on: a non-finite loss in step {config.faults.nan_loss_at_step}, "
            f"{config.faults.nan_loss_repeats} time(s)",
        )

    elapsed_before = float(state.elapsed.numpy())
    session_train_started = time.monotonic()
    final: dict[str, float] = {}
    stop_reason: str | None = None
    stop_detail: str | None = None
    nan_retries = 0
    preemption = checkpoint.preemption_handler(strategy, state)
    guard = _memory_guard(config, train_schema, work)
    watch = stopping.StopWatch(
        time_limit_seconds=_time_limit(config),
        started=started,
        preempt_at_step=config.faults.preempt_at_step,
        catch_sigterm=preemption is None,
        memory_guard=guard,
    )
    last_save = time.monotonic()
    checkpoint_seconds = 0.0

    def save(best: float | None = None) -> None:
        nonlocal last_save, checkpoint_seconds
        saved_at = time.monotonic()
        state.save(step=step, elapsed=elapsed_before + saved_at - session_train_started, best=best)
        last_save = time.monotonic()
        watch.record_save(last_save - saved_at)
        checkpoint_seconds += last_save - saved_at

    if step == 0:
        save()  # a good state to come back to, should the first steps already diverge
    with guard, watch:
        while True:
            try:
                for epoch in range(step // run_plan.steps_per_epoch, run_plan.epochs):
                    position = step - epoch * run_plan.steps_per_epoch
                    if position == 0:
                        for metric in (train_loss, *train_metrics.values()):
                            metric.reset_state()
                    iterator = iter(
                        strategy.distribute_datasets_from_function(
                            data.dataset_fn(
                                config.data.train,
                                train_schema,
                                config.data,
                                per_replica_batch_size=run_plan.per_replica_batch_size,
                                training=True,
                                seed=config.seed,
                                epoch=epoch,
                                skip_batches=position * run_plan.micro_batches_per_pipeline,
                            )
                        )
                    )
                    progress = _progress_bar(work, run_plan.steps_per_epoch)
                    epoch_started = time.perf_counter()
                    epoch_steps = 0
                    while position < run_plan.steps_per_epoch:
                        steps = _next_call_steps(config, run_plan, step=step, position=position)
                        call_started = time.monotonic()
                        loss = float(train_fn(iterator, tf.constant(steps)))
                        if not math.isfinite(loss):
                            raise _NonFinite(step + steps)
                        watch.record_call(time.monotonic() - call_started)
                        train_loss.update_state(loss, sample_weight=steps)
                        position += steps
                        epoch_steps += steps
                        step += steps
                        work.scalars(
                            work.train_writer, step, {"loss": loss, "learning_rate": float(optimizer.learning_rate)}
                        )
                        if progress is not None:
                            progress.update(position, [("loss", loss)])
                        if preemption is not None:
                            state.step.assign(step)  # what the handler's own save records
                            try:
                                preemption.save_checkpoint_if_preempted(checkpoint_number=step)
                            except checkpoint.CoordinatedPreemption:
                                watch.preempted()
                        stop_reason = watch.reason(step_before=step - steps, step_after=step)
                        every = config.checkpoint.every_steps
                        minutes = config.checkpoint.every_minutes
                        due = (every and step % every == 0) or (minutes and time.monotonic() - last_save > 60 * minutes)
                        # A stop on the epoch's last step first finishes the epoch (eval, history row, checkpoint)
                        # below: a checkpoint past the end of an epoch whose row was never written loses the row.
                        mid_epoch = position < run_plan.steps_per_epoch
                        if mid_epoch and (stop_reason or due):
                            save()
                        if mid_epoch and stop_reason:
                            break
                    if position < run_plan.steps_per_epoch:
                        break
                    seconds = time.perf_counter() - epoch_started
                    train_values = {"loss": float(train_loss.result())}
                    train_values.update({name: float(metric.result()) for name, metric in train_metrics.items()})
                    eval_started = time.monotonic()
                    eval_values = (
                        _evaluate(
                            eval_fn,
                            strategy=strategy,
                            config=config,
                            run_plan=run_plan,
                            schema=eval_schema,
                            loss_metric=eval_loss,
                            metrics=eval_metrics,
                        )
                        if eval_schema is not None
                        else {}
                    )
                    watch.record_call(time.monotonic() - eval_started)
                    final = eval_values or train_values
                    _report_epoch(
                        work,
                        run_plan=run_plan,
                        epoch=epoch,
                        step=step,
                        seconds=seconds,
                        steps=epoch_steps,
                        train_values=train_values,
                        eval_values=eval_values,
                        optimizer=optimizer,
                        device_kind=selected.device_kind,
                    )
                    value = {**train_values, **{f"val_{name}": v for name, v in eval_values.items()}}[monitor_name]
                    # The epoch's rows are written before its checkpoint: a kill in between resumes from the checkpoint
                    # before, and rewind() removes the rows, so they are never duplicated or lost.
                    save(best=value if state.improves(value, mode=monitor_mode) else None)
                    stop_reason = stop_reason or watch.reason(step_before=step, step_after=step)
                    if stop_reason:
                        break

                break
            except _NonFinite as diverged:
                # The in-memory state is poisoned; the newest checkpoint is the last good one.
                nan_retries += 1
                scale = float(schedule.scale.numpy())  # the checkpoint holds the scale from before this retry
                state.restore()
                step = int(state.step.numpy())
                work.rewind(step)
                if nan_retries > config.train.nan_retries:
                    stop_reason = "nan"
                    stop_detail = (
                        f"the loss was not finite at step {diverged.step} after {config.train.nan_retries} "
                        f"retr{'y' if config.train.nan_retries == 1 else 'ies'} at lower learning rates; the last "
                        f"good checkpoint is step {step}. Lower optimizer.base_learning_rate or check the data."
                    )
                    break
                schedule.scale.assign(scale * config.train.nan_lr_factor)
                nan_value.assign(math.nan if nan_retries < config.faults.nan_loss_repeats else 1.0)
                _say(
                    work,
                    f"tfkit: the loss was not finite at step {diverged.step}; restored step {step} and retrying with "
                    f"the learning rate x{float(schedule.scale.numpy()):g} (retry {nan_retries} of "
                    f"{config.train.nan_retries})",
                )

    trained = elapsed_before + time.monotonic() - session_train_started
    summary = {
        "status": "stopped" if stop_reason else "completed",
        **{key: value for key, value in run_plan.to_dict().items() if key in _SUMMARY_PLAN_KEYS},
        "steps": step,
        "metrics": final or (previous or {}).get("metrics", {}),
        "wall_seconds": round(time.monotonic() - started, 3),
        "train_seconds": round(trained, 3),
        "checkpoint_seconds": round(checkpoint_seconds, 3),
        "workdir": str(work.root),
    }
    if stop_reason:
        summary["stop_reason"] = stop_reason
    if stop_reason == "host_memory":
        stop_detail = guard.tripped
    if stop_detail:
        summary["stop_detail"] = stop_detail
    work.write_summary(summary)
    work.close()
    if stop_reason:
        done = step / run_plan.total_steps
        seconds_per_step = (time.monotonic() - session_train_started) / max(step - session_first_step, 1)
        session_length = watch.time_limit_seconds or (time.monotonic() - started)
        remaining_sessions = math.ceil((run_plan.total_steps - step) * seconds_per_step / session_length)
        _say(
            work,
            (f"tfkit: {stop_detail}\n" if stop_detail else "")
            + f"tfkit: stopped ({stop_reason}) at step {step} of {run_plan.total_steps} ({100 * done:.1f}%), with a "
            f"checkpoint; trained {_hours(trained)} in all. Run the same command again to resume"
            + (f"; about {remaining_sessions} more session(s) of this length" if stop_reason == "time_limit" else "")
            + ".",
        )
        return summary
    metric_text = ", ".join(f"{name} {value:.4f}" for name, value in final.items())
    split = "eval" if eval_schema else "train"
    _say(work, f"tfkit: completed {step} steps; final {split} {metric_text}; {summary['wall_seconds']:.1f} s")
    return summary


def _evaluate(
    eval_fn: Any,
    *,
    strategy: tf.distribute.Strategy,
    config: config_lib.Config,
    run_plan: plan.Plan,
    schema: Any,
    loss_metric: keras.metrics.Mean,
    metrics: dict[str, keras.metrics.Metric],
) -> dict[str, float]:
    """Evaluates every eval record once; returns the loss and metrics."""
    for metric in (loss_metric, *metrics.values()):
        metric.reset_state()
    folder = config.data.eval or ""
    dataset = strategy.distribute_datasets_from_function(
        data.dataset_fn(
            folder,
            schema,
            config.data,
            per_replica_batch_size=run_plan.per_replica_batch_size,
            training=False,
            seed=config.seed,
            epoch=0,
        )
    )
    for batch in dataset:
        eval_fn(batch)
    values = {"loss": float(loss_metric.result())}
    values.update({name: float(metric.result()) for name, metric in metrics.items()})
    return values


def _report_epoch(
    work: Workdir,
    *,
    run_plan: plan.Plan,
    epoch: int,
    step: int,
    seconds: float,
    steps: int,
    train_values: dict[str, float],
    eval_values: dict[str, float],
    optimizer: keras.optimizers.Optimizer,
    device_kind: str,
) -> None:
    """Writes one epoch to TensorBoard and history.csv, and prints its line."""
    host = memory.host_rss_bytes()
    device = memory.device_peak_bytes(device_kind)
    learning_rate = float(optimizer.learning_rate)
    examples_per_second = steps * run_plan.global_batch_size / seconds
    work.scalars(
        work.train_writer,
        step,
        {
            **{name: value for name, value in train_values.items() if name != "loss"},  # loss is logged per call
            "examples_per_second": examples_per_second,
            "step_time_ms": 1000.0 * seconds / steps,
            "host_rss_mb": host / 2**20,
            "device_peak_mb": (device or 0) / 2**20,
            "loss_scale": precision.loss_scale(optimizer),
        },
    )
    work.scalars(work.eval_writer, step, eval_values)
    work.append_history(
        {
            "epoch": epoch + 1,
            "step": step,
            **train_values,
            **{f"val_{name}": value for name, value in eval_values.items()},
            "learning_rate": learning_rate,
            "examples_per_second": round(examples_per_second, 1),
            "epoch_seconds": round(seconds, 3),
            "host_rss_mb": round(host / 2**20, 1),
            "device_peak_mb": round((device or 0) / 2**20, 1),
        }
    )
    shown = "  ".join(
        [f"{name} {value:.4f}" for name, value in train_values.items()]
        + [f"val_{name} {value:.4f}" for name, value in eval_values.items()]
    )
    _say(
        work,
        f"epoch {epoch + 1}/{run_plan.epochs}  {shown}  lr {learning_rate:.3g}  "
        f"{examples_per_second:,.0f} ex/s  host {memory.format_bytes(host)}  device {memory.format_bytes(device)}",
    )


class _NonFinite(Exception):  # noqa: N818 - control flow of the NaN guard, never seen by users
    def __init__(self, step: int) -> None:
        super().__init__(step)
        self.step = step


def _resume_message(state: checkpoint.RunState, run_plan: plan.Plan, *, monitor_name: str) -> str:
    """The one line a resumed run prints: where it continues, the best so far, the time trained."""
    step = int(state.step.numpy())
    best = float(state.best.numpy())
    parts = [
        f"tfkit: resumed at epoch {step // run_plan.steps_per_epoch + 1}, step {step} of {run_plan.total_steps}",
        "no epoch finished yet" if math.isnan(best) else f"best {monitor_name} {best:.4f}",
        f"trained {_hours(float(state.elapsed.numpy()))} so far",
    ]
    per_replica, accum = state.saved_batch()
    if (per_replica, accum) != (run_plan.per_replica_batch_size, run_plan.grad_accum_steps):
        parts.append(
            f"the global batch of {run_plan.global_batch_size} is now split {run_plan.per_replica_batch_size}"
            f"/replica x {run_plan.grad_accum_steps} accumulation (was {per_replica} x {accum})"
        )
    return "; ".join(parts)


def _next_call_steps(config: config_lib.Config, run_plan: plan.Plan, *, step: int, position: int) -> int:
    """Steps for the next compiled call: no further than the epoch's end, a checkpoint or an injected fault."""
    steps = min(run_plan.steps_per_execution, run_plan.steps_per_epoch - position)
    if config.checkpoint.every_steps:
        steps = min(steps, config.checkpoint.every_steps - step % config.checkpoint.every_steps)
    fault = config.faults.preempt_at_step
    if fault is not None and step < fault:
        steps = min(steps, fault - step)
    return steps


def _memory_guard(config: config_lib.Config, schema: Any, work: Workdir) -> memory.HostMemoryGuard:
    """The host-memory guard for this run, with the consumer it can name; warns when the shuffle buffer cannot fit."""
    budget = memory.host_budget_bytes()
    limit = config_lib.size_limit(config.memory.host_limit, budget=budget, key="memory.host_limit")
    record = sum(math.prod(feature.shape) * np.dtype(feature.dtype).itemsize for feature in schema.features.values())
    shuffle = config.data.shuffle_buffer * record
    attribution = (
        f"the largest consumer tfkit can attribute is the shuffle buffer, {config.data.shuffle_buffer} examples x "
        f"{memory.format_bytes(record)} = {memory.format_bytes(shuffle)} (lower data.shuffle_buffer); prefetch is "
        "bounded by tf.data's autotuning. If the machine has room, raise memory.host_limit."
    )
    if shuffle > min(limit, psutil.virtual_memory().available):
        _say(
            work,
            f"tfkit: warning: the shuffle buffer needs about {memory.format_bytes(shuffle)}, more than the "
            f"{memory.format_bytes(limit)} memory.host_limit allows; lower data.shuffle_buffer.",
        )
    return memory.HostMemoryGuard(limit_bytes=limit, attribution=attribution)


def _time_limit(config: config_lib.Config) -> float | None:
    if config.train.time_limit is None:
        return None
    return config_lib.duration_seconds(config.train.time_limit, key="train.time_limit")


def _hours(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes == 0:
        return f"{seconds:.0f}s"
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _progress_bar(work: Workdir, steps: int) -> keras.utils.Progbar | None:
    # A bar only where a person watches: a terminal or a notebook. Logs get the one line per epoch.
    if not work.is_chief or not (sys.stdout.isatty() or "ipykernel" in sys.modules):
        return None
    return keras.utils.Progbar(steps, unit_name="step")


def _say(work: Workdir, line: str) -> None:
    if work.is_chief:
        print(line, flush=True)


def _load_config(source: ConfigSource, overrides: Sequence[str]) -> config_lib.Config:
    if isinstance(source, config_lib.Config):
        if overrides:
            return config_lib.load(None, values=config_lib.to_dict(source), overrides=overrides)
        return source
    if isinstance(source, dict):
        return config_lib.load(None, values=source, overrides=overrides)
    if source is None:
        source = resources.config_path(resources.DEFAULT_CONFIG)
    path = Path(source)
    if not path.exists() and path.suffix == "" and os.sep not in str(source):
        path = resources.config_path(str(source))
    return config_lib.load(path, overrides=overrides)


def _flags() -> flags.FlagValues:
    # A private FlagValues: the CLI's flags never collide with a notebook's or another absl program's.
    values = flags.FlagValues()
    flags.DEFINE_string(
        "config", None, "YAML config, or the name of a bundled one (default: digits).", flag_values=values
    )
    flags.DEFINE_string("workdir", None, "Run folder (default: runs/<config name>).", flag_values=values)
    flags.DEFINE_multi_string("set", [], "Override a config key: --set a.b=value (repeatable).", flag_values=values)
    flags.DEFINE_enum(
        "strategy",
        None,
        ["auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu"],
        "tf.distribute strategy (default: the config's, auto).",
        flag_values=values,
    )
    flags.DEFINE_boolean("tpu", False, "Shorthand for --strategy tpu.", flag_values=values)
    flags.DEFINE_string(
        "tpu_address", None, "TPU address: local (TPU VM), grpc://host:port or a TPU name.", flag_values=values
    )
    flags.DEFINE_integer(
        "cpu_replicas",
        None,
        "Split the CPU into N logical devices and mirror over them.",
        lower_bound=1,
        flag_values=values,
    )
    flags.DEFINE_string(
        "time_limit", None, "Stop cleanly before this much time, e.g. 8h45m (exit 75).", flag_values=values
    )
    flags.DEFINE_boolean("restart", False, "Start over; the old run is renamed, never deleted.", flag_values=values)
    flags.DEFINE_boolean("help", False, "Show this help.", flag_values=values)
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    values = _flags()
    try:
        values(list(argv if argv is not None else sys.argv))
    except flags.Error as error:
        raise UserError(f"{error}. See python -m tfkit.train --help.") from None
    if values.help:
        print(__doc__)
        print(values.get_help())
        return 0
    overrides = list(values.set)
    if values.tpu and values.strategy not in (None, "tpu"):
        raise UserError(f"--tpu and --strategy {values.strategy} contradict; expected one of them.")
    strategy = "tpu" if values.tpu else values.strategy
    if strategy:
        overrides.append(f"distribute.strategy={strategy}")
    if values.tpu_address:
        overrides.append(f"distribute.tpu_address={values.tpu_address}")
    if values.cpu_replicas:
        overrides.append(f"distribute.cpu_replicas={values.cpu_replicas}")
    if values.time_limit:
        overrides.append(f"train.time_limit={values.time_limit}")
    summary = run(values.config, workdir=values.workdir, overrides=overrides, restart=values.restart)
    if summary["status"] == "stopped":
        raise Stopped(
            f"{summary['stop_reason']} at step {summary['steps']}; checkpoint saved in {summary['workdir']}. "
            "Run the same command to resume.",
            reason=summary["stop_reason"],
            summary=summary,
        )
    return 0


if __name__ == "__main__":
    run_cli(main)
