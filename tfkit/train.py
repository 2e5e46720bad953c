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
import tensorflow as tf
from absl import flags

from tfkit import config as config_lib
from tfkit import data, distribute, loop, memory, models, optimizers, plan, precision, resources
from tfkit.errors import UserError, run_cli
from tfkit.workdir import Workdir

ConfigSource = str | os.PathLike[str] | config_lib.Config | dict[str, Any] | None


def run(
    config_or_path: ConfigSource = None,
    workdir: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    *,
    tpu_resolver: Any = None,
) -> dict[str, Any]:
    """Trains as ``python -m tfkit.train`` does, and returns the summary.

    Args:
        config_or_path: A YAML path, a bundled config's name (``digits``), a ``Config``, a nested dict of keys, or
            None for the embedded default.
        workdir: The run folder; defaults to ``runs/<config name>``.
        overrides: ``a.b=value`` strings, as with ``--set``.
        tpu_resolver: A cluster resolver for the TPU branch, instead of ``TPUClusterResolver``.

    Returns:
        The summary also written to ``summary.json``.

    Raises:
        UserError: Bad input: a config key, missing data, no TPU.
    """
    started = time.monotonic()
    config = _load_config(config_or_path, overrides)
    selected = distribute.select(config.distribute, tpu_resolver=tpu_resolver)
    train_schema = data.load_schema(config.data.train, config.data)
    eval_schema = data.load_schema(config.data.eval, config.data) if config.data.eval else None
    run_plan = plan.make(config, selected=selected, train_schema=train_schema)
    work = Workdir(workdir or Path("runs") / config.name, is_chief=selected.is_chief, task_id=selected.task_id)
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
        optimizer = precision.wrap_optimizer(
            optimizers.build(
                config.optimizer, peak_learning_rate=run_plan.learning_rate, total_steps=run_plan.total_steps
            ),
            run_plan.precision,
        )
        # Build the optimizer's slots under the scope before the first step; built lazily inside the step, they
        # become placeholders that Mirrored replicas cannot feed.
        optimizer.build(model.trainable_variables)
        train_metrics = loop.make_metrics(
            config.task.metrics, loss=config.task.loss, from_logits=config.task.from_logits
        )
        eval_metrics = loop.make_metrics(
            config.task.metrics, loss=config.task.loss, from_logits=config.task.from_logits
        )
        eval_loss = keras.metrics.Mean(name="loss")
        step_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
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
        ),
    )
    eval_fn = loop.make_eval_function(
        strategy=strategy, model=model, loss_fn=loss_fn, loss_metric=eval_loss, metrics=eval_metrics
    )
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_counter)
    manager = tf.train.CheckpointManager(checkpoint, str(work.checkpoints), max_to_keep=3)

    train_started = time.monotonic()
    step = 0
    final: dict[str, float] = {}
    for epoch in range(run_plan.epochs):
        train_values, timing = _train_epoch(
            train_fn,
            strategy=strategy,
            config=config,
            run_plan=run_plan,
            schema=train_schema,
            metrics=train_metrics,
            optimizer=optimizer,
            work=work,
            epoch=epoch,
            first_step=step,
        )
        step += run_plan.steps_per_epoch
        step_counter.assign(step)
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
        final = eval_values or train_values
        host = memory.host_rss_bytes()
        device = memory.device_peak_bytes(selected.device_kind)
        learning_rate = float(optimizer.learning_rate)
        examples_per_second = run_plan.steps_per_epoch * run_plan.global_batch_size / timing
        work.scalars(
            work.train_writer,
            step,
            {
                **{name: value for name, value in train_values.items() if name != "loss"},
                "examples_per_second": examples_per_second,
                "step_time_ms": 1000.0 * timing / run_plan.steps_per_epoch,
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
                "epoch_seconds": round(timing, 3),
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
    manager.save(checkpoint_number=step)
    summary = {
        "status": "completed",
        "strategy": run_plan.strategy,
        "replicas": run_plan.replicas,
        "per_replica_batch_size": run_plan.per_replica_batch_size,
        "global_batch_size": run_plan.global_batch_size,
        "grad_accum_steps": run_plan.grad_accum_steps,
        "precision": run_plan.precision,
        "learning_rate": run_plan.learning_rate,
        "steps": step,
        "epochs": run_plan.epochs,
        "metrics": final,
        "wall_seconds": round(time.monotonic() - started, 3),
        "train_seconds": round(time.monotonic() - train_started, 3),
        "workdir": str(work.root),
    }
    work.write_summary(summary)
    work.close()
    metric_text = ", ".join(f"{name} {value:.4f}" for name, value in final.items())
    split = "eval" if eval_schema else "train"
    _say(work, f"tfkit: completed {step} steps; final {split} {metric_text}; {summary['wall_seconds']:.1f} s")
    return summary


def _train_epoch(
    train_fn: Any,
    *,
    strategy: tf.distribute.Strategy,
    config: config_lib.Config,
    run_plan: plan.Plan,
    schema: Any,
    metrics: dict[str, keras.metrics.Metric],
    optimizer: keras.optimizers.Optimizer,
    work: Workdir,
    epoch: int,
    first_step: int,
) -> tuple[dict[str, float], float]:
    """Runs one epoch of training; returns the epoch's mean loss and metrics, and its seconds."""
    for metric in metrics.values():
        metric.reset_state()
    dataset = strategy.distribute_datasets_from_function(
        data.dataset_fn(
            config.data.train,
            schema,
            config.data,
            per_replica_batch_size=run_plan.per_replica_batch_size,
            training=True,
            seed=config.seed,
            epoch=epoch,
        )
    )
    iterator = iter(dataset)
    progress = _progress_bar(work, run_plan.steps_per_epoch)
    started = time.perf_counter()
    done = 0
    loss_total = 0.0
    while done < run_plan.steps_per_epoch:
        steps = min(run_plan.steps_per_execution, run_plan.steps_per_epoch - done)
        loss = float(train_fn(iterator, tf.constant(steps)))
        done += steps
        loss_total += loss * steps
        work.scalars(
            work.train_writer,
            first_step + done,
            {"loss": loss, "learning_rate": float(optimizer.learning_rate)},
        )
        if progress is not None:
            progress.update(done, [("loss", loss)])
    seconds = time.perf_counter() - started
    values = {"loss": loss_total / run_plan.steps_per_epoch}
    values.update({name: float(metric.result()) for name, metric in metrics.items()})
    return values, seconds


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
    run(values.config, workdir=values.workdir, overrides=overrides)
    return 0


if __name__ == "__main__":
    run_cli(main)
