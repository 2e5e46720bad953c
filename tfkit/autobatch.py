"""``train.per_replica_batch_size: auto``: the largest per-replica batch that fits, found with real trial steps.

Each trial runs the real model's forward and backward pass (the same function the training step compiles, with the
optimizer already built, so its slots take their memory) on a synthetic batch of the schema's shapes, once per
replica. A trial fails when it raises ``ResourceExhaustedError``, or when the memory it peaked at is above
``memory.device_fraction`` of the device (of the host budget on CPU). The search tries powers of two from 8 (down to
1 when 8 fails), then refines between the last that fitted and the first that did not in multiples of 8 (128 on a
TPU past 128), so the choice stays friendly to TPU tiling. With a ``global_batch_size`` the candidates are the
divisors of its per-replica share instead, and the remainder becomes gradient accumulation.

Trials do not change the run: random state and other non-trainable variables are put back afterwards, and no
optimizer step is applied. Under MultiWorkerMirroredStrategy every worker tries every candidate and a candidate fits
only when it fits on all of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfkit import memory, tpu_detect
from tfkit.records import Feature
from tfkit.units import format_bytes

# Above this the finder stops doubling: larger batches rarely train better, and it bounds the search.
MAX_PER_REPLICA = 1024


@dataclasses.dataclass(frozen=True)
class Trial:
    """One tried per-replica batch: whether it fitted, and the memory it peaked at when the device tells."""

    batch: int
    fits: bool
    peak_bytes: int | None
    why: str = ""

    def describe(self) -> str:
        """``64 fits (1.2 GB)`` or ``128 out of memory``."""
        if self.fits:
            return f"{self.batch} fits" + (f" ({format_bytes(self.peak_bytes)})" if self.peak_bytes else "")
        return f"{self.batch} {self.why}"


@dataclasses.dataclass(frozen=True)
class Choice:
    """What the finder chose and why.

    Attributes:
        per_replica_batch_size: The chosen per-replica batch.
        grad_accum_steps: Accumulation steps (the rest of a configured global batch; else the config's).
        reason: Why this one, in words.
        trials: Every trial, in the order run.
    """

    per_replica_batch_size: int
    grad_accum_steps: int
    reason: str
    trials: tuple[Trial, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data for ``batch.json`` and ``summary.json``."""
        return {
            "per_replica_batch_size": self.per_replica_batch_size,
            "grad_accum_steps": self.grad_accum_steps,
            "reason": self.reason,
            "trials": [dataclasses.asdict(trial) for trial in self.trials],
        }


def search(
    fits: Callable[[int], Trial],
    *,
    upper: int,
    multiple_above_128: int = 8,
    candidates: list[int] | None = None,
) -> tuple[int | None, list[Trial]]:
    """Finds the largest batch for which ``fits`` holds, assuming that a batch which fits makes every smaller fit.

    Args:
        fits: Runs one trial.
        upper: The largest batch to consider.
        multiple_above_128: The refinement's step once 128 fits (128 on TPU, else 8).
        candidates: The only batches allowed, ascending (divisors of a global batch); None for any batch.

    Returns:
        The batch (None when not even the smallest fits) and the trials run.
    """
    trials: list[Trial] = []
    seen: dict[int, bool] = {}

    def ok(batch: int) -> bool:
        if batch not in seen:
            trial = fits(batch)
            trials.append(trial)
            seen[batch] = trial.fits
        return seen[batch]

    if candidates is not None:
        options = [batch for batch in candidates if batch <= upper]
        if options and ok(options[-1]):  # the common case: the whole share fits, one trial
            return options[-1], trials
        last = _last_that_fits(options[:-1], ok)  # options[-1] failed
        return (options[last] if last >= 0 else None), trials

    start = min(8, upper)
    if not ok(start):
        for batch in (4, 2, 1):
            if batch < start and ok(batch):
                return batch, trials
        return None, trials
    good, batch = start, start * 2
    while batch <= upper and ok(batch):
        good, batch = batch, batch * 2
    failed = batch if batch <= upper else upper + 1
    step = multiple_above_128 if good >= 128 else (8 if good >= 8 else 1)
    between = list(range(good + step, failed, step))
    last = _last_that_fits(between, ok)
    return (between[last] if last >= 0 else good), trials


def _last_that_fits(options: list[int], ok: Callable[[int], bool]) -> int:
    """Bisection over ascending ``options``, assuming that what fits is a prefix; the last index that fits, or -1."""
    low, high = -1, len(options)  # options[low] fits (or low is -1), options[high] does not (or is past the end)
    while high - low > 1:
        middle = (low + high) // 2
        if ok(options[middle]):
            low = middle
        else:
            high = middle
    return low


def divisors(number: int) -> list[int]:
    """The divisors of ``number``, ascending."""
    small = [value for value in range(1, math.isqrt(number) + 1) if number % value == 0]
    return sorted({*small, *(number // value for value in small)})


class TrialRunner:
    """Runs trial steps of the real model on synthetic batches, on every replica.

    Args:
        strategy: The run's strategy; the model and optimizer were built under its scope.
        model: The model.
        forward_backward: ``(x, y, weights) -> (loss, grads, outputs)``, the training step's own micro-batch
            function (see ``tfkit.loop.make_forward_backward``).
        feature: The input feature, for the batch's shape and dtype.
        label: The label feature.
        device_kind: ``CPU``, ``GPU`` or ``TPU``.
        fraction: The share of device memory (the host budget on CPU) a batch may peak at.
    """

    def __init__(
        self,
        *,
        strategy: tf.distribute.Strategy,
        model: keras.Model,
        forward_backward: Callable[..., Any],
        feature: Feature,
        label: Feature,
        device_kind: str,
        fraction: float,
    ) -> None:
        self.strategy = strategy
        self.model = model
        self.feature = feature
        self.label = label
        self.device = f"{device_kind}:0"
        self.device_kind = device_kind
        self.fraction = fraction
        self.limit_bytes, self.limit_text = _limit(device_kind, fraction)

        def replica_trial(x: tf.Tensor, y: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
            loss, grads, _ = forward_backward(x, y, weights)
            return loss + 0.0 * tf.linalg.global_norm(grads)  # keep the backward pass alive

        @tf.function
        def trial(iterator: Any) -> tf.Tensor:
            return strategy.reduce(
                tf.distribute.ReduceOp.SUM, strategy.run(replica_trial, args=next(iterator)), axis=None
            )

        self._trial = trial

    def __call__(self, batch: int) -> Trial:
        """Tries one per-replica batch."""
        saved = [variable.numpy() for variable in self.model.non_trainable_variables]
        peak: int | None = None
        why = ""
        try:
            _reset_peak(self.device)
            self._trial(iter(self.strategy.distribute_datasets_from_function(self._data(batch))))
            peak = _peak(self.device)
            fits = True
        except tf.errors.ResourceExhaustedError:
            fits, why = False, "out of memory"
        finally:
            for variable, value in zip(self.model.non_trainable_variables, saved, strict=True):
                variable.assign(value)
        # On CPU the batch shares the host with everything else the process holds: count its resident memory too.
        used = (peak or 0) + memory.host_rss_bytes() if self.device_kind == "CPU" else peak
        if fits and used is not None and self.limit_bytes is not None and used > self.limit_bytes:
            fits, why = False, f"peaks at {format_bytes(used)}, above {self.limit_text}"
        everywhere = self._everywhere(fits)
        if fits and not everywhere:
            why = "does not fit on another worker"
        return Trial(batch=batch, fits=everywhere, peak_bytes=peak, why=why)

    def _data(self, batch: int) -> Callable[[tf.distribute.InputContext], tf.data.Dataset]:
        def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
            x = np.zeros((batch, *self.feature.shape), dtype=self.feature.dtype)
            y = np.zeros((batch, *self.label.shape), dtype=self.label.dtype)
            weights = np.ones((batch,), dtype=np.float32)
            # One batch for each replica this pipeline feeds.
            replicas = context.num_replicas_in_sync // context.num_input_pipelines
            return tf.data.Dataset.from_tensors((x, y, weights)).repeat(replicas)

        return make

    def _everywhere(self, fits: bool) -> bool:
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return fits
        misses = self.strategy.reduce(
            tf.distribute.ReduceOp.SUM,
            self.strategy.run(lambda: tf.constant(0.0 if fits else 1.0)),
            axis=None,
        )
        return float(misses) == 0.0


def _limit(device_kind: str, fraction: float) -> tuple[int | None, str]:
    if device_kind == "CPU":
        budget = memory.host_budget_bytes()
        return int(budget * fraction), f"{fraction:.0%} of the host's {format_bytes(budget)}"
    if device_kind == "TPU":
        # TensorFlow does not report a TPU's size; the generation does (16 GiB per replica on v3 and v5e).
        hbm = tpu_detect.detect().hbm_per_replica_bytes
        if hbm is not None:
            return int(hbm * fraction), f"{fraction:.0%} of a TPU replica's {format_bytes(hbm)} HBM"
    total = memory.device_total_bytes(device_kind)
    if total is None:
        return None, f"the {device_kind}'s memory"
    return int(total * fraction), f"{fraction:.0%} of {device_kind}:0's {format_bytes(total)}"


def _reset_peak(device: str) -> None:
    # A device that keeps no statistics is only found too small by running out.
    with contextlib.suppress(ValueError, tf.errors.OpError):
        tf.config.experimental.reset_memory_stats(device)


def _peak(device: str) -> int | None:
    try:
        return int(tf.config.experimental.get_memory_info(device)["peak"]) or None
    except (ValueError, tf.errors.OpError):
        return None
