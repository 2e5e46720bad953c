"""One session of a run: restore or start, train epoch by epoch, recover from what can be recovered, stop cleanly.

The loop counts optimizer steps. Each compiled call runs up to ``steps_per_execution`` steps; between calls the
Python side checkpoints, logs and asks whether to stop (a signal, the time limit, the host-memory guard). Recoveries
(tfkit.recovery) restore the newest checkpoint and go on; stops checkpoint and end the session with
``status: stopped``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import tensorflow as tf

from tfkit import averaging, checkpoint, disk, loop, plan, recovery, stopping, switches
from tfkit.batch import BatchSplit
from tfkit.config import Config, monitored
from tfkit.distribute import Selected
from tfkit.evaluation import Evaluator
from tfkit.parts import Parts
from tfkit.records import Schema
from tfkit.report import Reporter, skipped_records
from tfkit.stream import TrainingStream


class Trainer:
    """Trains one session of a run.

    Args:
        config: The run's config.
        selected: The strategy in use.
        parts: The model, optimizer and metrics, built under the strategy's scope.
        split: The batch split in force.
        run_plan: The plan for ``split``.
        state: The checkpointed state, not yet restored.
        evaluate: Evaluates the eval split, or None without one.
        report: Where lines, scalars and the summary go.
        train_schema: The training split's schema.
        eval_schema: The eval split's schema, or None.
        guard: The host-memory guard.
    """

    def __init__(
        self,
        config: Config,
        *,
        selected: Selected,
        parts: Parts,
        split: BatchSplit,
        run_plan: plan.Plan,
        state: checkpoint.RunState,
        evaluate: Evaluator | None,
        report: Reporter,
        train_schema: Schema,
        eval_schema: Schema | None,
        guard: Any,
    ) -> None:
        self.config = config
        self.selected = selected
        self.strategy = selected.strategy
        self.parts = parts
        self.report = report
        self.work = report.work
        self.train_schema = train_schema
        self.eval_schema = eval_schema
        self.guard = guard
        self.monitor, self.monitor_mode = monitored(config)
        self.split = split
        self.plan = run_plan
        self.state = state
        self.evaluate = evaluate
        self.train_fn = self._train_function()
        self.step = 0
        self.first_step = 0
        self.final: dict[str, float] = {}
        self.stop_reason: str | None = None
        self.stop_detail: str | None = None
        self.nan_retries = 0
        self.early_stopped: dict[str, Any] | None = None
        self.preemption: Any = None
        self.stream = TrainingStream(config, strategy=self.strategy, schema=train_schema)
        self.watch = stopping.StopWatch(
            time_limit_seconds=config.train.time_limit,
            started=report.clocks.started,
            preempt_at_step=config.faults.preempt_at_step,
            memory_guard=guard,
        )

    def use_split(self, split: BatchSplit) -> None:
        """Puts a split in force: the plan, the compiled step, the checkpoint's record and ``batch.json`` follow."""
        self.split = split
        self.plan = plan.make(self.config, selected=self.selected, train_schema=self.train_schema, batch=split.pair)
        self.train_fn = self._train_function()
        self.stream.drop()
        self.state.batch.assign(split.pair)
        if split.source != "config":
            self.work.write_batch(split.to_json())

    def _train_function(self) -> Any:
        parts = self.parts
        return loop.make_train_function(
            strategy=self.strategy,
            model=parts.model,
            optimizer=parts.optimizer,
            loss_fn=parts.loss_fn,
            metrics=parts.train_metrics,
            settings=loop.StepSettings(
                global_batch_size=self.plan.global_batch_size,
                grad_accum_steps=self.plan.grad_accum_steps,
                clip_norm=self.config.train.clip_norm,
                jit_compile=self.config.train.jit_compile,
            ),
            wrap=parts.faults.wrap,
        )

    # --- the session ---------------------------------------------------------------------------------------------

    def fit(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        """Resumes or starts, trains to the end or to a stop, and returns the summary.

        Args:
            previous: The summary of an earlier session, if any.
        """
        work, report, run_plan = self.work, self.report, self.plan
        report.started(run_plan, device_kind=self.selected.device_kind)
        # Resume order: restore the newest valid checkpoint (model, optimizer, metrics, step), then cut the logs back
        # to its step, then rebuild the data at epoch step // steps_per_epoch and skip to batch step % steps_per_epoch.
        split_changed = True
        if self.state.restore(say=report.say):
            self.step = int(self.state.step.numpy())
            finished = self.step >= run_plan.total_steps or bool((previous or {}).get("early_stopped"))
            if previous and previous.get("status") == "completed" and finished:
                report.say(
                    f"tfkit: this run already completed {self.step} steps in {work.root}; nothing to do "
                    "(--restart trains again)."
                )
                return previous
            report.resumed(
                run_plan,
                step=self.step,
                best=float(self.state.best.numpy()),
                monitor=self.monitor,
                trained=float(self.state.elapsed.numpy()),
                saved_split=self.state.saved_batch(),
            )
            split_changed = self.state.saved_batch() != self.split.pair
            self.state.batch.assign(self.split.pair)
        self.first_step = self.step
        work.rewind(self.step)
        work.open_logs()
        for line in self.parts.faults.announcements():
            report.say(line)
        if self.config.data.skip_corrupt:
            report.skipped(self.train_schema, self.eval_schema)
        if self.step == 0 or split_changed:
            # Logged where it takes effect; a resumed run with the same split logs nothing at a step already logged.
            report.split(self.plan, step=self.step + 1 if self.step else 0)
        report.clocks.start_training(trained_before=float(self.state.elapsed.numpy()))
        self.preemption = checkpoint.preemption_handler(self.strategy, self.state)
        self.watch.catch_sigterm(self.preemption is None)
        if self.step == 0:
            self._save()  # a good state to come back to, should the first steps already diverge or run out
        if stopping.received():  # a signal during set-up: the state is saved, nothing to train first
            self.stop_reason = self.stop_reason or "signal"
        with self.guard, self.watch:
            while self.stop_reason is None and not self._train_until_stop():
                pass
        return self._finish(previous)

    def _train_until_stop(self) -> bool:
        """Trains to the end or a stop; returns False after a recovery, to train again from the restored step."""
        try:
            for epoch in range(self.step // self.plan.steps_per_epoch, self.plan.epochs):
                if not self._train_epoch(epoch) or self.stop_reason or self.early_stopped:
                    break
        except recovery.NonFinite as diverged:
            return not self._recover_nan(diverged)
        except tf.errors.ResourceExhaustedError as error:
            return not self._recover_oom(error)
        except tf.errors.DataLossError:
            self.work.close()
            raise recovery.corrupt_data_error(self.config) from None
        except tf.errors.InvalidArgumentError as error:
            self.work.close()
            raise recovery.label_error(error) from None
        except OSError as error:
            if not disk.is_full(error):
                raise
            # A history row or a log failed to be written; the newest checkpoint is intact, and a resume rewinds to it.
            self.stop_reason = "disk_full"
            self.stop_detail = (
                f"the disk of '{self.work.root}' is full ({error.strerror}); free space and run the same command to "
                "resume."
            )
        return True

    def _train_epoch(self, epoch: int) -> bool:
        """Trains the rest of one epoch, then evaluates and checkpoints; returns False after a mid-epoch stop."""
        run_plan, config, parts = self.plan, self.config, self.parts
        position = self.step - epoch * run_plan.steps_per_epoch
        if position == 0:
            for metric in (parts.train_loss, *parts.train_metrics.values()):
                metric.reset_state()
        self._freeze_backbone(epoch, position=position)
        iterator = self.stream.at(run_plan, epoch=epoch, position=position)
        progress = self.report.progress_bar(run_plan.steps_per_epoch)
        epoch_started = time.perf_counter()
        epoch_steps = 0
        while position < run_plan.steps_per_epoch:
            steps = self._next_call_steps(position)
            call_started = time.monotonic()
            loss = float(self.train_fn(iterator, tf.constant(steps)))
            if not math.isfinite(loss):
                raise recovery.NonFinite(self.step + steps)
            self.watch.record_call(time.monotonic() - call_started)
            parts.train_loss.update_state(loss, sample_weight=steps)
            position += steps
            epoch_steps += steps
            self.step += steps
            self.report.call(step=self.step, loss=loss, learning_rate=float(parts.optimizer.learning_rate))
            if progress is not None:
                progress.update(position, [("loss", loss)])
            self._check_preemption()
            self.stop_reason = self.watch.reason(step_before=self.step - steps, step_after=self.step)
            every, minutes = config.checkpoint.every_steps, config.checkpoint.every_minutes
            due = (every and self.step % every == 0) or (minutes and self.report.clocks.since_save() > 60 * minutes)
            # A stop on the epoch's last step first finishes the epoch (eval, history row, checkpoint) below: a
            # checkpoint past the end of an epoch whose row was never written loses the row.
            mid_epoch = position < run_plan.steps_per_epoch
            if mid_epoch and (self.stop_reason or due) and self.stop_reason != "disk_full":
                self._save()
            if mid_epoch and self.stop_reason:
                return False
        self.stream.epoch_done(epoch)
        self._end_epoch(epoch, seconds=time.perf_counter() - epoch_started, steps=epoch_steps)
        return True

    def _next_call_steps(self, position: int) -> int:
        """Steps for the next compiled call: no further than the epoch's end, a checkpoint or an injected fault."""
        steps = min(self.plan.steps_per_execution, self.plan.steps_per_epoch - position)
        every = self.config.checkpoint.every_steps
        if every:
            steps = min(steps, every - self.step % every)
        fault = self.config.faults.preempt_at_step
        if fault is not None and self.step < fault:
            steps = min(steps, fault - self.step)
        return steps

    def _check_preemption(self) -> None:
        if self.preemption is None:
            return
        self.state.step.assign(self.step)  # what the handler's own save records
        try:
            self.preemption.save_checkpoint_if_preempted(checkpoint_number=self.step)
        except checkpoint.CoordinatedPreemption:
            self.watch.preempted()

    def _end_epoch(self, epoch: int, *, seconds: float, steps: int) -> None:
        """Evaluates, reports, and checkpoints the finished epoch."""
        parts = self.parts
        train_values = {"loss": float(parts.train_loss.result())}
        train_values.update({name: float(metric.result()) for name, metric in parts.train_metrics.items()})
        eval_started = time.monotonic()
        with averaging.in_place(self.parts.average):  # eval measures the moving average, when there is one
            eval_values = (
                self.evaluate(per_replica_batch_size=self.plan.per_replica_batch_size) if self.evaluate else {}
            )
        self.watch.record_eval(time.monotonic() - eval_started)
        self.final = eval_values or train_values
        self.report.epoch(
            self.plan,
            epoch=epoch,
            step=self.step,
            seconds=seconds,
            steps=steps,
            train_values=train_values,
            eval_values=eval_values,
            optimizer=parts.optimizer,
            device_kind=self.selected.device_kind,
        )
        value = {**train_values, **{f"val_{name}": v for name, v in eval_values.items()}}[self.monitor]
        improved = self.state.improves(value, mode=self.monitor_mode)
        if self.config.optimizer.schedule == "plateau":
            switches.plateau(
                self.config, self.state, self.parts.schedule.scale, improved, monitor=self.monitor, say=self.report.say
            )
        # The epoch's rows are written before its checkpoint: a kill in between resumes from the checkpoint before,
        # and rewind() removes the rows, so they are never duplicated or lost.
        if self.stop_reason != "disk_full":
            self._save(best=value if improved else None)
        self.stop_reason = self.stop_reason or self.watch.reason(step_before=self.step, step_after=self.step)
        self._early_stop(epoch)

    def _early_stop(self, epoch: int) -> None:
        """Ends the run, as completed, once the monitored value has not improved for the patience in epochs."""
        self.early_stopped = switches.early_stop(
            self.config,
            self.state,
            step=self.step,
            epoch=epoch,
            plan=self.plan,
            monitor=self.monitor,
            say=self.report.say,
        )

    def _freeze_backbone(self, epoch: int, *, position: int) -> None:
        """Freezes or unfreezes the backbone for this epoch (tfkit.switches); a change recompiles the step."""
        changed = switches.freeze_backbone(self.config, self.parts, epoch=epoch, position=position, say=self.report.say)
        if changed:
            self.train_fn = self._train_function()  # the step's variables are the trainable ones

    def _save(self, best: float | None = None) -> None:
        """Checkpoints; a full disk stops the run (``disk_full``), the previous checkpoint being the newest intact."""
        clocks = self.report.clocks
        saved_at = time.monotonic()
        try:
            self.state.save(step=self.step, elapsed=clocks.trained(), best=best)
        except checkpoint.DiskFull as full:
            self.stop_reason = "disk_full"
            self.stop_detail = f"{full}; free space and run the same command to resume from the previous checkpoint."
            return
        seconds = time.monotonic() - saved_at
        clocks.saved(seconds)
        self.watch.record_save(seconds)

    # --- recoveries (tfkit.recovery decides) -----------------------------------------------------------------------

    def _restore_last_good(self) -> None:
        """The in-memory state is poisoned or half-applied; the newest checkpoint is the last good one."""
        self.state.restore()
        self.step = int(self.state.step.numpy())
        self.stream.drop()  # it stands past the restored step
        self.work.rewind(self.step)

    def _recover_nan(self, diverged: recovery.NonFinite) -> bool:
        """Restores and lowers the learning rate; returns False, with the stop set, when retries are used up."""
        scale = self.parts.schedule.scale
        self.nan_retries += 1
        before = float(scale.numpy())  # the checkpoint holds the scale from before this retry
        self._restore_last_good()
        outcome = recovery.after_nan(
            self.config,
            retry=self.nan_retries,
            failed_step=diverged.step,
            restored_step=self.step,
            scale=before * self.config.train.nan_lr_factor,
        )
        if outcome.stop_reason:
            self.stop_reason, self.stop_detail = outcome.stop_reason, outcome.message
            return False
        scale.assign(before * self.config.train.nan_lr_factor)
        self.parts.faults.retried(self.nan_retries)
        self.report.say(outcome.message)
        return True

    def _recover_oom(self, error: tf.errors.ResourceExhaustedError) -> bool:
        """Shrinks the per-replica batch, keeping the global batch; returns False, with the stop set, at 1."""
        failed_step = self.step + 1
        self._restore_last_good()
        split, outcome = recovery.after_oom(
            self.split, error=error.message or "", failed_step=failed_step, restored_step=self.step
        )
        if outcome.stop_reason:
            self.stop_reason, self.stop_detail = outcome.stop_reason, outcome.message
            return False
        self.use_split(split)
        self.report.split(self.plan, step=self.step + 1)
        self.report.say(outcome.message)
        return True

    # --- the end -------------------------------------------------------------------------------------------------

    def _finish(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        """Writes the summary, closes the logs, prints the last line; returns the summary."""
        split = self.split.to_json()
        split_keys: dict[str, Any] = {"batch_source": split["source"], "oom_recoveries": split["oom_recoveries"]}
        if "finder" in split:
            split_keys["batch_finder"] = split["finder"]
        extra: dict[str, Any] = {"best": self.state.best_record(monitor=self.monitor, mode=self.monitor_mode)}
        if self.early_stopped:
            extra["early_stopped"] = self.early_stopped
        if self.config.data.skip_corrupt:
            extra["skipped_records"] = skipped_records(self.train_schema, self.eval_schema)
        if self.stop_reason == "host_memory":
            self.stop_detail = self.guard.tripped
        return self.report.finish(
            self.plan,
            step=self.step,
            first_step=self.first_step,
            metrics=self.final or (previous or {}).get("metrics", {}),
            split=split_keys,
            extra=extra,
            stop_reason=self.stop_reason,
            stop_detail=self.stop_detail,
            time_limit=self.config.train.time_limit,
            final_split_name="eval" if self.eval_schema else "train",
        )
