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

import dataclasses
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import psutil
import tensorflow as tf
from absl import flags

from tfkit import (
    autobatch,
    checkpoint,
    data,
    distribute,
    loop,
    memory,
    models,
    optimizers,
    plan,
    precision,
    records,
    resources,
    stopping,
    units,
)
from tfkit import config as config_lib
from tfkit.cli import run as run_cli
from tfkit.errors import Stopped, UserError
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
        ``stop_reason`` (a signal, the time limit, host memory, device memory, a non-finite loss) after a
        checkpoint, for a run that the same call resumes.

    Raises:
        UserError: Bad input: a config key, missing data, no TPU.
    """
    started = time.monotonic()
    config = _load_config(config_or_path, overrides)
    selected, train_schema, provisional = _prepare(config, tpu_resolver=tpu_resolver)
    eval_schema = data.load_schema(config.data.eval, config.data) if config.data.eval else None
    run_root = Path(workdir or Path("runs") / config.name)
    if restart and selected.is_chief and run_root.exists() and any(run_root.iterdir()):
        kept = run_root.with_name(f"{run_root.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        run_root.rename(kept)
        print(f"tfkit: starting over; the previous run is kept in {kept}")
    work = Workdir(run_root, is_chief=selected.is_chief, task_id=selected.task_id)
    work.write_config(config)
    trainer = Trainer(
        config,
        selected=selected,
        work=work,
        train_schema=train_schema,
        eval_schema=eval_schema,
        provisional=provisional,
        started=started,
    )
    return trainer.fit()


def find_batch(
    config_or_path: ConfigSource = None, overrides: Sequence[str] = (), *, tpu_resolver: Any = None
) -> dict[str, Any]:
    """Runs the batch finder for a config as ``train.per_replica_batch_size: auto`` would, without training.

    The trials run in a temporary run folder, so nothing of a real run is touched. ``python -m tfkit.doctor
    --config`` reports this.

    Returns:
        ``per_replica_batch_size``, ``grad_accum_steps``, ``global_batch_size`` and the finder's ``reason`` and
        ``trials``.
    """
    base = _load_config(config_or_path, overrides)
    values = config_lib.to_dict(base)
    values["train"]["per_replica_batch_size"] = "auto"
    if base.train.per_replica_batch_size is not None:
        values["train"]["global_batch_size"] = None  # a fixed per-replica batch: find one instead
    config = config_lib.load(None, values=values)
    selected, train_schema, provisional = _prepare(config, tpu_resolver=tpu_resolver)
    with tempfile.TemporaryDirectory(prefix="tfkit-batch-") as folder:
        trainer = Trainer(
            config,
            selected=selected,
            work=Workdir(folder, is_chief=selected.is_chief, task_id=selected.task_id),
            train_schema=train_schema,
            eval_schema=None,
            provisional=provisional,
            started=time.monotonic(),
        )
    record = trainer.batch_record
    return {key: record[key] for key in ("per_replica_batch_size", "grad_accum_steps", "global_batch_size")} | {
        "reason": record["finder"]["reason"],
        "trials": record["finder"]["trials"],
    }


class Trainer:
    """One session of a run: builds everything once, trains epoch by epoch, and recovers from what it can.

    Recoveries all go back to the newest checkpoint, the last good state: a non-finite loss retries at a lower
    learning rate (the NaN guard); an exhausted device halves the per-replica batch and doubles the accumulation, so
    the global batch and the schedule stay the same, and rebuilds the step and the input pipeline. Stops (a signal,
    the time limit, the host-memory guard, a recovery that ran out of options) checkpoint and end the session with
    ``status: stopped``.

    Args:
        config: The run's config.
        selected: The strategy in use.
        work: The run folder.
        train_schema: The training split's schema.
        eval_schema: The eval split's schema, or None.
        provisional: The plan from the config alone (with ``auto``, a placeholder batch); the model and optimizer
            are built with it before the batch is final.
        started: ``time.monotonic()`` when the session began, for the time limit.
    """

    def __init__(
        self,
        config: config_lib.Config,
        *,
        selected: distribute.Selected,
        work: Workdir,
        train_schema: Any,
        eval_schema: Any,
        provisional: plan.Plan,
        started: float,
    ) -> None:
        self.config = config
        self.selected = selected
        self.strategy = selected.strategy
        self.work = work
        self.train_schema = train_schema
        self.eval_schema = eval_schema
        self.started = started
        self.feature = train_schema.features[config.data.features]
        self.label = train_schema.features[config.data.label]
        self.num_classes = config.model.num_classes or self.label.num_classes or max(1, math.prod(self.label.shape))
        task = config.task
        with precision.policy(provisional.precision), self.strategy.scope():
            keras.utils.set_random_seed(config.seed)
            self.model = models.build(config.model, input_shape=self.feature.shape, num_classes=self.num_classes)
            self.schedule = optimizers.schedule(
                config.optimizer, peak_learning_rate=provisional.learning_rate, total_steps=provisional.total_steps
            )
            self.optimizer = precision.wrap_optimizer(
                optimizers.build(config.optimizer, self.schedule), provisional.precision
            )
            # Fault injection: NaN while injections remain, else 1.0 (see faults.nan_loss_at_step).
            self.nan_value = tf.Variable(math.nan if config.faults.nan_loss_repeats else 1.0, trainable=False)
            # Build the optimizer's slots under the scope before the first step; built lazily inside the step,
            # they become placeholders that Mirrored replicas cannot feed. Built here, the batch finder's trials
            # also count their memory.
            self.optimizer.build(self.model.trainable_variables)
            self.train_metrics, self.eval_metrics = (
                loop.make_metrics(
                    task.metrics, loss=task.loss, from_logits=task.from_logits, data_range=task.data_range
                )
                for _ in range(2)
            )
            self.eval_loss = keras.metrics.Mean(name="loss")
            self.train_loss = keras.metrics.Mean(name="loss")  # the epoch's mean of the per-call losses
        self.loss_fn = loop.per_example_loss(config.task.loss, from_logits=config.task.from_logits)
        self.batch_record = self._choose_batch(provisional)
        self.plan = plan.make(
            config,
            selected=selected,
            train_schema=train_schema,
            batch=(self.batch_record["per_replica_batch_size"], self.batch_record["grad_accum_steps"]),
        )
        self.schedule.retarget(peak=self.plan.learning_rate, total_steps=self.plan.total_steps)
        self.train_fn = self._make_train_function()
        self.eval_fn = loop.make_eval_function(
            strategy=self.strategy,
            model=self.model,
            loss_fn=self.loss_fn,
            loss_metric=self.eval_loss,
            metrics=self.eval_metrics,
        )
        self.state = checkpoint.RunState(
            model=self.model,
            optimizer=self.optimizer,
            metrics=[self.train_loss, *self.train_metrics.values()],
            directory=work.checkpoints,
            keep=config.checkpoint.keep,
            identity={
                "model": config.model.name,
                "input_shape": list(self.feature.shape),
                "num_classes": self.num_classes,
                "global_batch_size": self.plan.global_batch_size,
                "steps_per_epoch": self.plan.steps_per_epoch,
            },
            batch=(self.plan.per_replica_batch_size, self.plan.grad_accum_steps),
            learning_rate_scale=self.schedule.scale,
        )
        self.step = 0
        self.final: dict[str, float] = {}
        self.stop_reason: str | None = None
        self.stop_detail: str | None = None
        self.nan_retries = 0
        self.checkpoint_seconds = 0.0
        self.last_save = time.monotonic()
        self.elapsed_before = 0.0
        self.session_train_started = time.monotonic()

    # --- the batch -----------------------------------------------------------------------------------------------

    def _choose_batch(self, provisional: plan.Plan) -> dict[str, Any]:
        """The split to train with: the one stored with the run, the finder's, or the config's. See batch.json."""
        train = self.config.train
        auto = train.per_replica_batch_size == "auto"
        replicas = self.selected.replicas
        saved = self.work.read_batch()
        if auto:
            target = train.global_batch_size or (saved or {}).get("global_batch_size")
        else:
            target = provisional.global_batch_size
        if saved and saved.get("global_batch_size") == target and saved.get("replicas") == replicas:
            _say(
                self.work,
                f"tfkit: using the batch split stored with this run ({self.work.batch_path.name}, from "
                f"{saved['source']}): {saved['per_replica_batch_size']}/replica x {saved['grad_accum_steps']} "
                "accumulation",
            )
            return saved
        record: dict[str, Any] = {
            "per_replica_batch_size": provisional.per_replica_batch_size,
            "grad_accum_steps": provisional.grad_accum_steps,
            "global_batch_size": provisional.global_batch_size,
            "replicas": replicas,
            "source": "config",
            "oom_recoveries": [],
        }
        if not auto:
            return record
        choice = self._find_batch(target)
        record.update(
            per_replica_batch_size=choice.per_replica_batch_size,
            grad_accum_steps=choice.grad_accum_steps,
            global_batch_size=choice.per_replica_batch_size * replicas * choice.grad_accum_steps,
            source="auto",
            finder=choice.to_dict(),
        )
        self.work.write_batch(record)
        return record

    def _find_batch(self, global_batch: int | None) -> autobatch.Choice:
        """Runs the batch finder; see tfkit.autobatch."""
        config = self.config
        replicas = self.selected.replicas
        accum = config.train.grad_accum_steps
        runner = autobatch.TrialRunner(
            strategy=self.strategy,
            model=self.model,
            forward_backward=loop.make_forward_backward(
                model=self.model,
                optimizer=self.optimizer,
                loss_fn=self.loss_fn,
                settings=self._step_settings(global_batch_size=replicas, grad_accum_steps=1),
                replicas=replicas,
            ),
            feature=self.feature,
            label=self.label,
            device_kind=self.selected.device_kind,
            fraction=config.memory.device_fraction,
        )
        pipelines = plan.input_pipelines(self.selected)
        shards = self.train_schema.shards
        fewest = min(sum(shard["records"] for shard in shards[index::pipelines]) for index in range(pipelines))
        per_replica_data = max(1, fewest // (replicas // pipelines))  # one full step per epoch at least
        if global_batch:
            if global_batch % replicas:
                raise UserError(
                    f"config key 'train.global_batch_size': received {global_batch}, which does not divide over "
                    f"{replicas} replicas; expected a multiple of {replicas}."
                )
            share = global_batch // replicas
            best, trials = autobatch.search(runner, upper=share, candidates=autobatch.divisors(share))
            kind = f"the largest divisor of the per-replica share {share} of the global batch {global_batch}"
        else:
            upper = min(autobatch.MAX_PER_REPLICA, per_replica_data // accum)
            tpu = self.selected.device_kind == "TPU"
            best, trials = autobatch.search(runner, upper=upper, multiple_above_128=128 if tpu else 8)
            kind = (
                f"the largest batch up to {upper} (the smaller of the finder's cap, {autobatch.MAX_PER_REPLICA}, and "
                "one step's worth of data)"
            )
        tried = ", ".join(trial.describe() for trial in trials)
        if best is None:
            raise UserError(
                f"train.per_replica_batch_size auto: not even a batch of {trials[-1].batch} fits ({tried}); "
                "expected a model that fits the device. Use mixed precision, a smaller model or input size, or free "
                "the device (python -m tfkit.doctor lists what holds it)."
            )
        if global_batch:
            accum = global_batch // replicas // best
        reason = f"{kind} that fits in {runner.limit_text}"
        _say(
            self.work,
            f"tfkit: batch finder: tried {tried}; chose {best}/replica x {accum} accumulation: {reason}",
        )
        return autobatch.Choice(
            per_replica_batch_size=best, grad_accum_steps=accum, reason=reason, trials=tuple(trials)
        )

    def _step_settings(self, *, global_batch_size: int, grad_accum_steps: int) -> loop.StepSettings:
        faults = self.config.faults
        return loop.StepSettings(
            global_batch_size=global_batch_size,
            grad_accum_steps=grad_accum_steps,
            clip_norm=self.config.train.clip_norm,
            jit_compile=self.config.train.jit_compile,
            nan_at_step=faults.nan_loss_at_step,
            nan_value=self.nan_value,
            oom_above_per_replica_batch=faults.oom_above_per_replica_batch,
        )

    def _make_train_function(self) -> Any:
        return loop.make_train_function(
            strategy=self.strategy,
            model=self.model,
            optimizer=self.optimizer,
            loss_fn=self.loss_fn,
            metrics=self.train_metrics,
            settings=self._step_settings(
                global_batch_size=self.plan.global_batch_size, grad_accum_steps=self.plan.grad_accum_steps
            ),
        )

    def _log_batch(self, step: int) -> None:
        """Logs the split in force from optimizer step ``step`` on (the first step it trains)."""
        self.work.scalars(
            self.work.train_writer,
            step,
            {
                "per_replica_batch_size": float(self.plan.per_replica_batch_size),
                "grad_accum_steps": float(self.plan.grad_accum_steps),
            },
        )

    # --- the session ---------------------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Resumes or starts, trains to the end or to a stop, and returns the summary."""
        work, config, run_plan = self.work, self.config, self.plan
        _say(
            work,
            f"tfkit: {run_plan.strategy} with {run_plan.replicas} replica(s) on {self.selected.device_kind}; batch "
            f"{run_plan.per_replica_batch_size}/replica x {run_plan.replicas} x {run_plan.grad_accum_steps} accum = "
            f"{run_plan.global_batch_size} global; {run_plan.precision}; {run_plan.epochs} epoch(s) of "
            f"{run_plan.steps_per_epoch} steps; peak lr {run_plan.learning_rate:.3g}; workdir {work.root}",
        )
        # Resume order: restore the newest valid checkpoint (model, optimizer, metrics, step), then cut the logs back
        # to its step, then rebuild the data at epoch step // steps_per_epoch and skip to batch step % steps_per_epoch.
        previous = work.read_summary()
        split_changed = True
        if self.state.restore():
            self.step = int(self.state.step.numpy())
            if previous and previous.get("status") == "completed" and self.step >= run_plan.total_steps:
                _say(
                    work,
                    f"tfkit: this run already completed {self.step} steps in {work.root}; nothing to do "
                    "(--restart trains again).",
                )
                return previous
            monitor_name, _ = config_lib.monitored(config)
            _say(work, _resume_message(self.state, run_plan, monitor_name=monitor_name))
            in_force = (run_plan.per_replica_batch_size, run_plan.grad_accum_steps)
            split_changed = self.state.saved_batch() != in_force
            self.state.batch.assign(in_force)
        self.previous = previous
        self.session_first_step = self.step
        work.rewind(self.step)
        work.open_logs()
        self._announce_faults()
        if config.data.skip_corrupt:
            for split, skipped in self._skipped().items():
                if skipped["records"]:
                    _say(
                        work,
                        f"tfkit: data.skip_corrupt: skipping {skipped['records']} corrupt record(s) in {split}: "
                        + "; ".join(skipped["problems"]),
                    )
        if self.step == 0 or split_changed:
            # Logged where it takes effect; a resumed run with the same split logs nothing at a step already logged.
            self._log_batch(self.step + 1 if self.step else 0)
        self.elapsed_before = float(self.state.elapsed.numpy())
        self.session_train_started = time.monotonic()
        self.preemption = checkpoint.preemption_handler(self.strategy, self.state)
        self.guard = _memory_guard(config, self.train_schema, work)
        self.watch = stopping.StopWatch(
            time_limit_seconds=config.train.time_limit,
            started=self.started,
            preempt_at_step=config.faults.preempt_at_step,
            catch_sigterm=self.preemption is None,
            memory_guard=self.guard,
        )
        if self.step == 0:
            self._save()  # a good state to come back to, should the first steps already diverge or run out
        with self.guard, self.watch:
            while True:
                try:
                    self._train_epochs()
                    break
                except _NonFinite as diverged:
                    if not self._recover_nan(diverged):
                        break
                except tf.errors.ResourceExhaustedError as error:
                    if not self._recover_oom(error):
                        break
                except tf.errors.DataLossError:
                    work.close()
                    raise _corrupt_data_error(config) from None
        return self._finish()

    def _skipped(self) -> dict[str, Any]:
        """What ``data.skip_corrupt`` left out, per split: the count and where."""
        skipped: dict[str, Any] = {}
        for split, schema in (("train", self.train_schema), ("eval", self.eval_schema)):
            if schema is not None:
                entries = list(schema.skipped)
                skipped[split] = {
                    "records": sum(entry["records"] for entry in entries),
                    "problems": [problem for entry in entries for problem in entry["problems"]],
                }
        return skipped

    def _announce_faults(self) -> None:
        faults = self.config.faults
        if faults.preempt_at_step is not None:
            _say(self.work, f"tfkit: fault injection on: a preemption after step {faults.preempt_at_step}")
        if faults.nan_loss_at_step is not None:
            _say(
                self.work,
                f"tfkit: fault injection on: a non-finite loss in step {faults.nan_loss_at_step}, "
                f"{faults.nan_loss_repeats} time(s)",
            )
        if faults.oom_above_per_replica_batch is not None:
            _say(
                self.work,
                "tfkit: fault injection on: the step runs out of memory above a per-replica batch of "
                f"{faults.oom_above_per_replica_batch}",
            )

    def _save(self, best: float | None = None) -> None:
        saved_at = time.monotonic()
        self.state.save(step=self.step, elapsed=self.elapsed_before + saved_at - self.session_train_started, best=best)
        self.last_save = time.monotonic()
        self.watch.record_save(self.last_save - saved_at)
        self.checkpoint_seconds += self.last_save - saved_at

    def _train_epochs(self) -> None:
        """Trains from the current step to the end, or until a stop is due."""
        for epoch in range(self.step // self.plan.steps_per_epoch, self.plan.epochs):
            if not self._train_epoch(epoch):
                return
            if self.stop_reason:
                return

    def _train_epoch(self, epoch: int) -> bool:
        """Trains the rest of one epoch, then evaluates and checkpoints; returns False after a mid-epoch stop."""
        run_plan, config, work = self.plan, self.config, self.work
        position = self.step - epoch * run_plan.steps_per_epoch
        if position == 0:
            for metric in (self.train_loss, *self.train_metrics.values()):
                metric.reset_state()
        iterator = iter(
            self.strategy.distribute_datasets_from_function(
                data.dataset_fn(
                    config.data.train,
                    self.train_schema,
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
            steps = _next_call_steps(config, run_plan, step=self.step, position=position)
            call_started = time.monotonic()
            loss = float(self.train_fn(iterator, tf.constant(steps)))
            if not math.isfinite(loss):
                raise _NonFinite(self.step + steps)
            self.watch.record_call(time.monotonic() - call_started)
            self.train_loss.update_state(loss, sample_weight=steps)
            position += steps
            epoch_steps += steps
            self.step += steps
            work.scalars(
                work.train_writer, self.step, {"loss": loss, "learning_rate": float(self.optimizer.learning_rate)}
            )
            if progress is not None:
                progress.update(position, [("loss", loss)])
            if self.preemption is not None:
                self.state.step.assign(self.step)  # what the handler's own save records
                try:
                    self.preemption.save_checkpoint_if_preempted(checkpoint_number=self.step)
                except checkpoint.CoordinatedPreemption:
                    self.watch.preempted()
            self.stop_reason = self.watch.reason(step_before=self.step - steps, step_after=self.step)
            every = config.checkpoint.every_steps
            minutes = config.checkpoint.every_minutes
            due = (every and self.step % every == 0) or (minutes and time.monotonic() - self.last_save > 60 * minutes)
            # A stop on the epoch's last step first finishes the epoch (eval, history row, checkpoint) below: a
            # checkpoint past the end of an epoch whose row was never written loses the row.
            mid_epoch = position < run_plan.steps_per_epoch
            if mid_epoch and (self.stop_reason or due):
                self._save()
            if mid_epoch and self.stop_reason:
                return False
        self._end_epoch(epoch, seconds=time.perf_counter() - epoch_started, steps=epoch_steps)
        return True

    def _end_epoch(self, epoch: int, *, seconds: float, steps: int) -> None:
        """Evaluates, reports, and checkpoints the finished epoch."""
        train_values = {"loss": float(self.train_loss.result())}
        train_values.update({name: float(metric.result()) for name, metric in self.train_metrics.items()})
        eval_values = (
            _evaluate(
                self.eval_fn,
                strategy=self.strategy,
                config=self.config,
                run_plan=self.plan,
                schema=self.eval_schema,
                loss_metric=self.eval_loss,
                metrics=self.eval_metrics,
            )
            if self.eval_schema
            else {}
        )
        self.final = eval_values or train_values
        _report_epoch(
            self.work,
            run_plan=self.plan,
            epoch=epoch,
            step=self.step,
            seconds=seconds,
            steps=steps,
            train_values=train_values,
            eval_values=eval_values,
            optimizer=self.optimizer,
            device_kind=self.selected.device_kind,
        )
        monitor_name, monitor_mode = config_lib.monitored(self.config)
        value = {**train_values, **{f"val_{name}": v for name, v in eval_values.items()}}[monitor_name]
        improved = self.state.improves(value, mode=monitor_mode)
        if self.config.optimizer.schedule == "plateau":
            self._plateau(improved, monitor_name)
        # The epoch's rows are written before its checkpoint: a kill in between resumes from the checkpoint before,
        # and rewind() removes the rows, so they are never duplicated or lost.
        self._save(best=value if improved else None)
        self.stop_reason = self.stop_reason or self.watch.reason(step_before=self.step, step_after=self.step)

    def _plateau(self, improved: bool, monitor_name: str) -> None:
        """Reduce-LR-on-plateau: lowers the rate after ``plateau_patience`` epochs without a better monitored value."""
        optimizer = self.config.optimizer
        wait = 0 if improved else int(self.state.plateau_wait.numpy()) + 1
        if wait >= optimizer.plateau_patience:
            self.schedule.scale.assign(float(self.schedule.scale.numpy()) * optimizer.plateau_factor)
            _say(
                self.work,
                f"tfkit: {monitor_name} has not improved for {wait} epoch(s); learning rate "
                f"x{optimizer.plateau_factor:g} (now x{float(self.schedule.scale.numpy()):g} of the schedule's)",
            )
            wait = 0
        self.state.plateau_wait.assign(wait)

    # --- recoveries ----------------------------------------------------------------------------------------------

    def _restore_last_good(self) -> None:
        """The in-memory state is poisoned or half-applied; the newest checkpoint is the last good one."""
        self.state.restore()
        self.step = int(self.state.step.numpy())
        self.work.rewind(self.step)

    def _recover_nan(self, diverged: _NonFinite) -> bool:
        """Restores and lowers the learning rate; returns False, with the stop set, when retries are used up."""
        config = self.config
        self.nan_retries += 1
        scale = float(self.schedule.scale.numpy())  # the checkpoint holds the scale from before this retry
        self._restore_last_good()
        if self.nan_retries > config.train.nan_retries:
            self.stop_reason = "nan"
            self.stop_detail = (
                f"the loss was not finite at step {diverged.step} after {config.train.nan_retries} "
                f"retr{'y' if config.train.nan_retries == 1 else 'ies'} at lower learning rates; the last "
                f"good checkpoint is step {self.step}. Lower optimizer.base_learning_rate or check the data."
            )
            return False
        self.schedule.scale.assign(scale * config.train.nan_lr_factor)
        self.nan_value.assign(math.nan if self.nan_retries < config.faults.nan_loss_repeats else 1.0)
        _say(
            self.work,
            f"tfkit: the loss was not finite at step {diverged.step}; restored step {self.step} and retrying with "
            f"the learning rate x{float(self.schedule.scale.numpy()):g} (retry {self.nan_retries} of "
            f"{config.train.nan_retries})",
        )
        return True

    def _recover_oom(self, error: tf.errors.ResourceExhaustedError) -> bool:
        """Shrinks the per-replica batch, keeping the global batch; returns False, with the stop set, at 1."""
        old = self.plan
        failed_step = self.step + 1
        cause = (error.message or "").strip().splitlines()
        cause_text = next(
            (line for line in cause if "out-of-memory" in line or "OOM" in line), cause[0] if cause else ""
        )
        self._restore_last_good()
        per_replica = old.per_replica_batch_size
        smaller = max((value for value in autobatch.divisors(per_replica) if value < per_replica), default=None)
        if smaller is None:
            self.stop_reason = "oom"
            self.stop_detail = (
                f"out of device memory in step {failed_step} with a per-replica batch of 1, which cannot shrink "
                f"further; the last good checkpoint is step {self.step}. Use mixed precision, a smaller model or "
                "input size, or free the device (python -m tfkit.doctor lists what holds it)."
            )
            return False
        accum = old.grad_accum_steps * (per_replica // smaller)
        self.plan = dataclasses.replace(old, per_replica_batch_size=smaller, grad_accum_steps=accum)
        self.train_fn = self._make_train_function()
        self.state.batch.assign((smaller, accum))
        event = {
            "step": self.step,
            "per_replica_batch_size": [per_replica, smaller],
            "grad_accum_steps": [old.grad_accum_steps, accum],
            "error": cause_text[:300],
        }
        self.batch_record = {
            **self.batch_record,
            "per_replica_batch_size": smaller,
            "grad_accum_steps": accum,
            "source": "oom recovery",
            "oom_recoveries": [*self.batch_record.get("oom_recoveries", []), event],
        }
        self.work.write_batch(self.batch_record)
        self._log_batch(self.step + 1)
        _say(
            self.work,
            f"tfkit: out of device memory in step {failed_step}; restored step {self.step} and continuing with "
            f"{smaller}/replica x {accum} accumulation (was {per_replica} x {old.grad_accum_steps}): the same global "
            f"batch of {old.global_batch_size} and learning-rate schedule",
        )
        return True

    # --- the end -------------------------------------------------------------------------------------------------

    def _finish(self) -> dict[str, Any]:
        """Writes the summary, closes the logs, prints the last line; returns the summary."""
        work, run_plan, step = self.work, self.plan, self.step
        now = time.monotonic()
        trained = self.elapsed_before + now - self.session_train_started
        summary = {
            "status": "stopped" if self.stop_reason else "completed",
            **{key: value for key, value in run_plan.to_dict().items() if key in _SUMMARY_PLAN_KEYS},
            "batch_source": self.batch_record["source"],
            "oom_recoveries": self.batch_record.get("oom_recoveries", []),
            "steps": step,
            "metrics": self.final or (self.previous or {}).get("metrics", {}),
            "wall_seconds": round(now - self.started, 3),
            "train_seconds": round(trained, 3),
            "checkpoint_seconds": round(self.checkpoint_seconds, 3),
            "workdir": str(work.root),
        }
        if "finder" in self.batch_record:
            summary["batch_finder"] = self.batch_record["finder"]
        if self.config.data.skip_corrupt:
            summary["skipped_records"] = self._skipped()
        if self.stop_reason == "host_memory":
            self.stop_detail = self.guard.tripped
        if self.stop_reason:
            summary["stop_reason"] = self.stop_reason
        if self.stop_detail:
            summary["stop_detail"] = self.stop_detail
        work.write_summary(summary)
        work.close()
        if self.stop_reason:
            done = step / run_plan.total_steps
            seconds_per_step = (now - self.session_train_started) / max(step - self.session_first_step, 1)
            session_length = self.watch.time_limit_seconds or (now - self.started)
            remaining_sessions = math.ceil((run_plan.total_steps - step) * seconds_per_step / session_length)
            _say(
                work,
                (f"tfkit: {self.stop_detail}\n" if self.stop_detail else "")
                + f"tfkit: stopped ({self.stop_reason}) at step {step} of {run_plan.total_steps} ({100 * done:.1f}%), "
                f"with a checkpoint; trained {units.format_duration(trained)} in all. Run the same command again to "
                "resume"
                + (
                    f"; about {remaining_sessions} more session(s) of this length"
                    if self.stop_reason == "time_limit"
                    else ""
                )
                + ".",
            )
            return summary
        metric_text = ", ".join(f"{name} {value:.4f}" for name, value in self.final.items())
        split = "eval" if self.eval_schema else "train"
        _say(work, f"tfkit: completed {step} steps; final {split} {metric_text}; {summary['wall_seconds']:.1f} s")
        return summary


def _corrupt_data_error(config: config_lib.Config) -> UserError:
    """The one line for a corrupt record met in training: which shard and record, found by scanning the splits."""
    for folder in filter(None, (config.data.train, config.data.eval)):
        schema = data.load_schema(folder, dataclasses.replace(config.data, skip_corrupt=False))
        for path in schema.files(folder):
            _, problems, _ = records.scan(path, schema.compression)
            if problems:
                return UserError(
                    f"corrupt data in '{folder}': {problems[0].describe()}; expected intact TFRecords. Write the "
                    f"shard again, or set data.skip_corrupt: true to skip bad records "
                    f"(python -m tfkit.records verify {folder} lists them all)."
                )
    return UserError(
        "the data reader met a corrupt record that a rescan no longer finds (was a file rewritten?); run "
        "python -m tfkit.records verify on data.train and data.eval."
    )


def _prepare(config: config_lib.Config, *, tpu_resolver: Any) -> tuple[distribute.Selected, Any, plan.Plan]:
    """The strategy, the training schema and the plan from the config alone, before anything is written.

    The plan checks that the batch divides and that the split fills a batch. With ``auto`` it holds a placeholder
    batch until the finder runs (see ``_provisional_batch``).
    """
    selected = distribute.select(config.distribute, tpu_resolver=tpu_resolver)
    train_schema = data.load_schema(config.data.train, config.data)
    provisional = plan.make(config, selected=selected, train_schema=train_schema, batch=_provisional_batch(config))
    return selected, train_schema, provisional


def _provisional_batch(config: config_lib.Config) -> tuple[int, int] | None:
    """With ``auto``, a placeholder split to build the model with before the finder runs; else None (the config's)."""
    if config.train.per_replica_batch_size != "auto":
        return None
    return 1, config.train.grad_accum_steps


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
        f"{examples_per_second:,.0f} ex/s  host {units.format_bytes(host)}  device {units.format_bytes(device)}",
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
        f"trained {units.format_duration(float(state.elapsed.numpy()))} so far",
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
        _say(
            work,
            f"tfkit: warning: the shuffle buffer needs about {units.format_bytes(shuffle)}, more than the "
            f"{units.format_bytes(limit)} memory.host_limit allows; lower data.shuffle_buffer_bytes.",
        )
    return memory.HostMemoryGuard(limit_bytes=limit, attribution=attribution)


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
