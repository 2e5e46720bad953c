"""What a run tells people: the console, TensorBoard, ``history.csv`` and ``summary.json``; and the run's clocks.

Only the chief speaks (``Workdir.is_chief``). Every line a run prints comes through ``Reporter.say``, every scalar
through the workdir's writers, and every duration the summary reports from ``Clocks``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Any

import keras

from tfkit import memory, precision, tpu_detect, units
from tfkit.plan import Plan
from tfkit.records import Schema
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


@dataclasses.dataclass
class Clocks:
    """The run's time, all from ``time.monotonic()``.

    Attributes:
        started: When this session began (the time limit counts from here).
        trained_before: Training seconds of earlier sessions, from the checkpoint.
        training_started: When this session's training began (after set-up and any restore).
        checkpoint_seconds: Seconds this session spent writing checkpoints.
        last_save: When the last checkpoint was written.
    """

    started: float
    trained_before: float = 0.0
    training_started: float = 0.0
    checkpoint_seconds: float = 0.0
    last_save: float = 0.0

    def start_training(self, *, trained_before: float) -> None:
        """Marks the start of this session's training, after ``trained_before`` seconds in earlier sessions."""
        self.trained_before = trained_before
        self.training_started = self.last_save = time.monotonic()

    def trained(self) -> float:
        """Training seconds over all sessions, up to now."""
        return self.trained_before + time.monotonic() - self.training_started

    def saved(self, seconds: float) -> None:
        """Records a checkpoint write that took ``seconds``."""
        self.last_save = time.monotonic()
        self.checkpoint_seconds += seconds

    def since_save(self) -> float:
        """Seconds since the last checkpoint."""
        return time.monotonic() - self.last_save


class Reporter:
    """Prints, logs and summarises one session of a run.

    Args:
        work: The run folder.
        started: ``time.monotonic()`` when the session began.
    """

    def __init__(self, work: Workdir, *, started: float) -> None:
        self.work = work
        self.clocks = Clocks(started=started)

    def say(self, line: str) -> None:
        """Prints one line on the chief."""
        if self.work.is_chief:
            print(line, flush=True)

    def skipped(self, *schemas: Schema | None) -> None:
        """Says what ``data.skip_corrupt`` leaves out of each split."""
        for split, skipped in skipped_records(*schemas).items():
            if skipped["records"]:
                self.say(
                    f"tfkit: data.skip_corrupt: skipping {skipped['records']} corrupt record(s) in {split}: "
                    + "; ".join(skipped["problems"])
                )

    def progress_bar(self, steps: int) -> keras.utils.Progbar | None:
        """A progress bar where a person watches (a terminal or a notebook); logs get the one line per epoch."""
        if not self.work.is_chief or not (sys.stdout.isatty() or "ipykernel" in sys.modules):
            return None
        return keras.utils.Progbar(steps, unit_name="step")

    def started(self, plan: Plan, *, device_kind: str) -> None:
        """The first line of a session: the strategy, the batch, the precision and the length of the run."""
        self.say(
            f"tfkit: {plan.strategy} with {plan.replicas} replica(s) on {device_kind}; batch "
            f"{plan.per_replica_batch_size}/replica x {plan.replicas} x {plan.grad_accum_steps} accum = "
            f"{plan.global_batch_size} global; {plan.precision}; {plan.epochs} epoch(s) of "
            f"{plan.steps_per_epoch} steps; peak lr {plan.learning_rate:.3g}; workdir {self.work.root}"
        )

    def resumed(self, plan: Plan, *, step: int, best: float, monitor: str, trained: float, saved_split: Any) -> None:
        """The one line a resumed run prints: where it continues, the best so far, the time trained."""
        parts = [
            f"tfkit: resumed at epoch {step // plan.steps_per_epoch + 1}, step {step} of {plan.total_steps}",
            "no epoch finished yet" if math.isnan(best) else f"best {monitor} {best:.4f}",
            f"trained {units.format_duration(trained)} so far",
        ]
        per_replica, accum = saved_split
        if (per_replica, accum) != (plan.per_replica_batch_size, plan.grad_accum_steps):
            parts.append(
                f"the global batch of {plan.global_batch_size} is now split {plan.per_replica_batch_size}"
                f"/replica x {plan.grad_accum_steps} accumulation (was {per_replica} x {accum})"
            )
        self.say("; ".join(parts))

    def split(self, plan: Plan, *, step: int) -> None:
        """Logs the split in force from optimizer step ``step`` on (the first step it trains)."""
        self.work.scalars(
            self.work.train_writer,
            step,
            {
                "per_replica_batch_size": float(plan.per_replica_batch_size),
                "grad_accum_steps": float(plan.grad_accum_steps),
            },
        )

    def call(self, *, step: int, loss: float, learning_rate: float) -> None:
        """Logs one compiled call's mean loss and the learning rate after it."""
        self.work.scalars(self.work.train_writer, step, {"loss": loss, "learning_rate": learning_rate})

    def epoch(
        self,
        plan: Plan,
        *,
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
        examples_per_second = steps * plan.global_batch_size / seconds
        work = self.work
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
        self.say(
            f"epoch {epoch + 1}/{plan.epochs}  {shown}  lr {learning_rate:.3g}  "
            f"{examples_per_second:,.0f} ex/s  host {units.format_bytes(host)}  device {units.format_bytes(device)}"
        )

    def finish(
        self,
        plan: Plan,
        *,
        step: int,
        first_step: int,
        metrics: dict[str, float],
        split: dict[str, Any],
        extra: dict[str, Any],
        stop_reason: str | None,
        stop_detail: str | None,
        time_limit: float | None,
        final_split_name: str,
    ) -> dict[str, Any]:
        """Writes ``summary.json``, closes the logs and prints the session's last line; returns the summary.

        Args:
            plan: The plan in force.
            step: The last step trained.
            first_step: The step this session started from.
            metrics: The last epoch's metrics (eval when there is eval data).
            split: The batch split's summary keys (``batch_source``, ``oom_recoveries``, ``batch_finder``).
            extra: Further summary keys (the best checkpoint, skipped records).
            stop_reason: Why the session stopped early, or None when the run completed.
            stop_detail: A line explaining the stop, if any.
            time_limit: The session's time limit in seconds, for the sessions-left estimate.
            final_split_name: ``eval`` or ``train``, for the last line.
        """
        clocks = self.clocks
        now = time.monotonic()
        trained = clocks.trained()
        summary: dict[str, Any] = {
            "status": "stopped" if stop_reason else "completed",
            **{key: value for key, value in plan.to_dict().items() if key in _SUMMARY_PLAN_KEYS},
            **split,
            "steps": step,
            "metrics": metrics,
            "wall_seconds": round(now - clocks.started, 3),
            "train_seconds": round(trained, 3),
            "checkpoint_seconds": round(clocks.checkpoint_seconds, 3),
            "workdir": str(self.work.root),
            "tpu": tpu_detect.detect().to_dict(),  # what the machine's local signs say, TPU or not
            **extra,
        }
        if stop_reason:
            summary["stop_reason"] = stop_reason
        if stop_detail:
            summary["stop_detail"] = stop_detail
        self.work.write_summary(summary)
        self.work.close()
        if not stop_reason:
            metric_text = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
            self.say(
                f"tfkit: completed {step} steps; final {final_split_name} {metric_text}; "
                f"{summary['wall_seconds']:.1f} s"
            )
            return summary
        done = step / plan.total_steps
        seconds_per_step = (now - clocks.training_started) / max(step - first_step, 1)
        session_length = time_limit or (now - clocks.started)
        remaining_sessions = math.ceil((plan.total_steps - step) * seconds_per_step / session_length)
        self.say(
            (f"tfkit: {stop_detail}\n" if stop_detail else "")
            + f"tfkit: stopped ({stop_reason}) at step {step} of {plan.total_steps} ({100 * done:.1f}%), "
            f"with a checkpoint; trained {units.format_duration(trained)} in all. Run the same command again to "
            "resume"
            + (f"; about {remaining_sessions} more session(s) of this length" if stop_reason == "time_limit" else "")
            + "."
        )
        return summary


def skipped_records(*schemas: Schema | None) -> dict[str, Any]:
    """What ``data.skip_corrupt`` left out, per split (``train``, then ``eval``): the count and where."""
    skipped: dict[str, Any] = {}
    for split, schema in zip(("train", "eval"), schemas, strict=False):
        if schema is not None:
            entries = list(schema.skipped)
            skipped[split] = {
                "records": sum(entry["records"] for entry in entries),
                "problems": [problem for entry in entries for problem in entry["problems"]],
            }
    return skipped
