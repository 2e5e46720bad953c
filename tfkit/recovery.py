"""What a run does when a step fails: a non-finite loss, an exhausted device, a corrupt record.

Recoveries all go back to the newest checkpoint, the last good state (the trainer restores it). A non-finite loss
retries at a lower learning rate, up to ``train.nan_retries`` times (the NaN guard). An exhausted device halves the
per-replica batch and doubles the accumulation (``BatchSplit.shrunk``), so the global batch and the schedule stay
the same. When a recovery runs out of options the run stops with a checkpoint (exit 75), naming the step. A corrupt
record is not recoverable by retrying: it is one line naming the shard and the record (exit 2).

The functions here decide and word; the trainer applies what they decide.
"""

from __future__ import annotations

import dataclasses

from tfkit import data, records
from tfkit.batch import BatchSplit
from tfkit.config import Config
from tfkit.data.checks import LABEL_ERROR_PREFIX
from tfkit.errors import UserError


class NonFinite(Exception):  # noqa: N818 - control flow of the NaN guard, never seen by users
    """The loss of a compiled call was not finite.

    Attributes:
        step: The last optimizer step of that call.
    """

    def __init__(self, step: int) -> None:
        super().__init__(step)
        self.step = step


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A recovery's decision: go on with ``message`` said, or stop with ``stop_reason`` and ``message`` as detail."""

    message: str
    stop_reason: str | None = None


def after_nan(config: Config, *, retry: int, failed_step: int, restored_step: int, scale: float) -> Outcome:
    """Decides what follows a non-finite loss.

    Args:
        config: The run config (``train.nan_retries``, ``train.nan_lr_factor``).
        retry: Which retry this would be, from 1.
        failed_step: The step whose loss was not finite.
        restored_step: The last good checkpoint's step, already restored.
        scale: The learning-rate multiplier the retry will use.
    """
    retries = config.train.nan_retries
    if retry > retries:
        return Outcome(
            stop_reason="nan",
            message=(
                f"the loss was not finite at step {failed_step} after {retries} "
                f"retr{'y' if retries == 1 else 'ies'} at lower learning rates; the last good checkpoint is step "
                f"{restored_step}. Lower optimizer.base_learning_rate or check the data."
            ),
        )
    return Outcome(
        message=(
            f"tfkit: the loss was not finite at step {failed_step}; restored step {restored_step} and retrying with "
            f"the learning rate x{scale:g} (retry {retry} of {retries})"
        )
    )


def after_oom(split: BatchSplit, *, error: str, failed_step: int, restored_step: int) -> tuple[BatchSplit, Outcome]:
    """Decides what follows running out of device memory: a smaller split, or a stop at 1 per replica.

    Args:
        split: The split that ran out.
        error: The error's text.
        failed_step: The step that ran out.
        restored_step: The last good checkpoint's step, already restored.

    Returns:
        The split to continue with (the same one when stopping) and the outcome.
    """
    lines = error.strip().splitlines()
    cause = next((line for line in lines if "out-of-memory" in line or "OOM" in line), lines[0] if lines else "")
    smaller = split.shrunk(step=restored_step, error=cause)
    if smaller is None:
        return split, Outcome(
            stop_reason="oom",
            message=(
                f"out of device memory in step {failed_step} with a per-replica batch of 1, which cannot shrink "
                f"further; the last good checkpoint is step {restored_step}. Use mixed precision, a smaller model or "
                "input size, or free the device (python -m tfkit.doctor lists what holds it)."
            ),
        )
    return smaller, Outcome(
        message=(
            f"tfkit: out of device memory in step {failed_step}; restored step {restored_step} and continuing with "
            f"{smaller.describe()} (was {split.per_replica_batch_size} x {split.grad_accum_steps}): the same global "
            f"batch of {split.global_batch_size} and learning-rate schedule"
        )
    )


def corrupt_data_error(config: Config) -> UserError:
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


def label_error(error: Exception) -> Exception:
    """The one line for a label the reader's in-graph check refused (tfkit.data.checks); any other error as it is."""
    message = str(getattr(error, "message", "") or "")
    line = next((line for line in message.splitlines() if LABEL_ERROR_PREFIX in line), None)
    if line is None:
        return error
    # The check's message may be followed by TensorFlow's fields ("] [Condition ...] [values]", quotes escaped) or,
    # run eagerly, by " [Op:StringToNumber] name: ": keep the message alone.
    text = line[line.index(LABEL_ERROR_PREFIX) + len(LABEL_ERROR_PREFIX) :].split("] [", 1)[0].split(" [Op:", 1)[0]
    return UserError(text.replace("\\'", "'").strip(" .]") + ".")
