"""The batch split: how a global batch is divided into per-replica batches and accumulation steps, and who chose it.

One ``BatchSplit`` holds the split in force. It comes from the config as written, from the batch finder
(``train.per_replica_batch_size: auto``, see tfkit.autobatch), or from an out-of-memory recovery that halved the
per-replica batch and doubled the accumulation. The trainer derives everything else from it in one place
(``Trainer.use_split``): the plan, the compiled step, the checkpoint's record of the split, and ``batch.json``,
which keeps a split that did not come from the config, so that a resume uses it and does not search again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from tfkit import autobatch
from tfkit.config import Config
from tfkit.errors import UserError

BATCH_FILE = "batch.json"


@dataclasses.dataclass(frozen=True)
class BatchSplit:
    """The split in force.

    Attributes:
        per_replica_batch_size: Examples per replica per micro-batch.
        grad_accum_steps: Micro-batches per optimizer step.
        replicas: Replicas in sync; the split is only valid for this many.
        source: ``config``, ``auto`` (the finder) or ``oom recovery``.
        finder: The finder's choice and trials, when it ran.
        oom_recoveries: Each out-of-memory recovery: the step, the old and new batch and accumulation, the error.
    """

    per_replica_batch_size: int
    grad_accum_steps: int
    replicas: int
    source: str = "config"
    finder: dict[str, Any] | None = None
    oom_recoveries: tuple[dict[str, Any], ...] = ()

    @property
    def global_batch_size(self) -> int:
        """Examples per optimizer step over all replicas and micro-batches."""
        return self.per_replica_batch_size * self.replicas * self.grad_accum_steps

    @property
    def pair(self) -> tuple[int, int]:
        """``(per_replica_batch_size, grad_accum_steps)``."""
        return self.per_replica_batch_size, self.grad_accum_steps

    def describe(self) -> str:
        """``32/replica x 2 accumulation``."""
        return f"{self.per_replica_batch_size}/replica x {self.grad_accum_steps} accumulation"

    def to_json(self) -> dict[str, Any]:
        """The split as ``batch.json`` keeps it."""
        data: dict[str, Any] = {
            "per_replica_batch_size": self.per_replica_batch_size,
            "grad_accum_steps": self.grad_accum_steps,
            "global_batch_size": self.global_batch_size,
            "replicas": self.replicas,
            "source": self.source,
            "oom_recoveries": list(self.oom_recoveries),
        }
        if self.finder is not None:
            data["finder"] = self.finder
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchSplit:
        """Reads what ``to_json`` wrote."""
        return cls(
            per_replica_batch_size=int(data["per_replica_batch_size"]),
            grad_accum_steps=int(data["grad_accum_steps"]),
            replicas=int(data["replicas"]),
            source=str(data["source"]),
            finder=data.get("finder"),
            oom_recoveries=tuple(data.get("oom_recoveries", ())),
        )

    def shrunk(self, *, step: int, error: str) -> BatchSplit | None:
        """The split after running out of device memory: the same global batch with a smaller per-replica batch.

        The per-replica batch is halved (an odd one divided by its smallest factor) and the accumulation multiplied
        by as much. None when the per-replica batch is already 1.

        Args:
            step: The last good step, restored before the smaller split trains.
            error: The line of the out-of-memory error worth keeping.
        """
        old = self.per_replica_batch_size
        smaller = max((value for value in autobatch.divisors(old) if value < old), default=None)
        if smaller is None:
            return None
        accum = self.grad_accum_steps * (old // smaller)
        event = {
            "step": step,
            "per_replica_batch_size": [old, smaller],
            "grad_accum_steps": [self.grad_accum_steps, accum],
            "error": error[:300],
        }
        return dataclasses.replace(
            self,
            per_replica_batch_size=smaller,
            grad_accum_steps=accum,
            source="oom recovery",
            oom_recoveries=(*self.oom_recoveries, event),
        )


def choose(
    config: Config,
    *,
    configured: BatchSplit,
    stored: BatchSplit | None,
    find: Callable[[int | None], autobatch.Choice],
    say: Callable[[str], None],
) -> BatchSplit:
    """The split to train with: the one stored with the run, the finder's, or the config's.

    Args:
        config: The run config.
        configured: The split the config gives (a placeholder with ``auto``).
        stored: The split in ``batch.json``, if any.
        find: Runs the finder for a global batch (or None for the largest batch that fits).
        say: Prints a line.
    """
    auto = config.train.per_replica_batch_size == "auto"
    if auto:
        target = config.train.global_batch_size or (stored.global_batch_size if stored else None)
    else:
        target = configured.global_batch_size
    if stored and stored.global_batch_size == target and stored.replicas == configured.replicas:
        say(
            f"tfkit: using the batch split stored with this run ({BATCH_FILE}, from {stored.source}): "
            + stored.describe()
        )
        return stored
    if not auto:
        return configured
    choice = find(target)
    return dataclasses.replace(
        configured,
        per_replica_batch_size=choice.per_replica_batch_size,
        grad_accum_steps=choice.grad_accum_steps,
        source="auto",
        finder=choice.to_dict(),
    )


def find(
    runner: autobatch.TrialRunner,
    *,
    global_batch: int | None,
    replicas: int,
    grad_accum_steps: int,
    pipeline_records: Sequence[int],
    tpu: bool,
    say: Callable[[str], None],
) -> autobatch.Choice:
    """Runs the batch finder (see tfkit.autobatch) and says what it tried and why it chose.

    Args:
        runner: Runs one trial.
        global_batch: A global batch to split, or None for the largest per-replica batch that fits.
        replicas: Replicas in sync.
        grad_accum_steps: The configured accumulation (without a global batch).
        pipeline_records: Records each input pipeline reads per epoch; one step's worth is the upper bound.
        tpu: Keep multiples of 128 past 128, as TPU tiling wants.
        say: Prints a line.

    Raises:
        UserError: The global batch does not divide over the replicas, or not even a batch of 1 fits.
    """
    pipelines = len(pipeline_records)
    per_replica_data = max(1, min(pipeline_records) // (replicas // pipelines))  # one full step per epoch at least
    accum = grad_accum_steps
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
    say(f"tfkit: batch finder: tried {tried}; chose {best}/replica x {accum} accumulation: {reason}")
    return autobatch.Choice(per_replica_batch_size=best, grad_accum_steps=accum, reason=reason, trials=tuple(trials))
