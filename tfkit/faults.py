"""Faults injected on purpose (``faults.*``), to rehearse and test recovery on a CPU.

Each fault wraps the training step's micro-batch pass from outside (``loop.make_train_function(wrap=...)``), so the
production step has no fault branches, and a run without faults runs exactly the step it would run anyway:

- ``nan_loss_at_step``: the loss and gradients of that optimizer step become non-finite, so the weights do too, as
  a diverging run's would; ``nan_loss_repeats`` says how many tries of that step see it;
- ``oom_above_per_replica_batch``: the pass fails with ``ResourceExhaustedError``, as an exhausted device does,
  whenever the per-replica batch is above the threshold (the batch finder's trials too);
- ``preempt_at_step``: a preemption after that step (``tfkit.stopping`` watches for it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

from tfkit.config import FaultsConfig
from tfkit.loop import ForwardBackward


class Faults:
    """The faults a run injects. Create it under the strategy's scope: the NaN fault keeps a variable.

    Args:
        config: The ``faults`` section.
        iterations: The optimizer's step counter (``optimizer.iterations``), which says which step runs.
    """

    def __init__(self, config: FaultsConfig, *, iterations: tf.Variable) -> None:
        self.config = config
        self.iterations = iterations
        # NaN while injections remain, else 1.0: a retry of the poisoned step sees the fault again until used up.
        self.nan_value = tf.Variable(math.nan if config.nan_loss_repeats else 1.0, trainable=False)

    def wrap(self, forward_backward: ForwardBackward) -> ForwardBackward:
        """Returns the micro-batch pass with this run's faults around it (the pass itself when there are none)."""
        wrapped = forward_backward
        if self.config.nan_loss_at_step is not None:
            wrapped = self._poisoned(wrapped, at_step=self.config.nan_loss_at_step)
        if self.config.oom_above_per_replica_batch is not None:
            wrapped = _exhausted_above(wrapped, threshold=self.config.oom_above_per_replica_batch)
        return wrapped

    def retried(self, retries: int) -> None:
        """Arms the NaN fault for the ``retries``-th retry of the poisoned step: NaN again while repeats remain."""
        self.nan_value.assign(math.nan if retries < self.config.nan_loss_repeats else 1.0)

    def announcements(self) -> list[str]:
        """One line per fault that is on, for the console: a rehearsal must never pass for a real failure."""
        config = self.config
        lines = []
        if config.preempt_at_step is not None:
            lines.append(f"tfkit: fault injection on: a preemption after step {config.preempt_at_step}")
        if config.nan_loss_at_step is not None:
            lines.append(
                f"tfkit: fault injection on: a non-finite loss in step {config.nan_loss_at_step}, "
                f"{config.nan_loss_repeats} time(s)"
            )
        if config.oom_above_per_replica_batch is not None:
            lines.append(
                "tfkit: fault injection on: the step runs out of memory above a per-replica batch of "
                f"{config.oom_above_per_replica_batch}"
            )
        return lines

    def _poisoned(self, forward_backward: ForwardBackward, *, at_step: int) -> ForwardBackward:
        def poisoned(x: tf.Tensor, y: tf.Tensor, weights: tf.Tensor) -> tuple[tf.Tensor, list, tf.Tensor]:
            loss, grads, outputs = forward_backward(x, y, weights)
            # Poison the step for real: the gradients, and then the weights, become non-finite too.
            factor = tf.where(tf.equal(self.iterations + 1, at_step), self.nan_value, tf.constant(1.0))
            return loss * factor, [grad * tf.cast(factor, grad.dtype) for grad in grads], outputs

        return poisoned


def _exhausted_above(forward_backward: ForwardBackward, *, threshold: int) -> ForwardBackward:
    def exhausted(x: tf.Tensor, y: tf.Tensor, weights: tf.Tensor) -> tuple[tf.Tensor, list, tf.Tensor]:
        batch = x.shape[0]
        if batch is not None and batch > threshold:  # decided while tracing, outside XLA, which cannot run Python
            tf.py_function(_out_of_memory(batch, threshold), [], [])
        return forward_backward(x, y, weights)

    return exhausted


def _out_of_memory(batch: int, threshold: int) -> Callable[[], None]:
    def fail() -> None:
        # tf.py_function turns a Python MemoryError into ResourceExhaustedError, the error a device OOM raises.
        raise MemoryError(
            f"injected out-of-memory: per-replica batch {batch} is above faults.oom_above_per_replica_batch {threshold}"
        )

    return fail
