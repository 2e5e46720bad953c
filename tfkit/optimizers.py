"""The optimizer and its learning rate.

The rate is scaled from the base batch to the global batch, warmed up linearly, then decayed by a cosine or kept.

Weight decay is decoupled (adamw, sgd). Gradient clipping is not given to Keras: its ``global_clipnorm`` clips each
replica's partial gradient before the all-reduce, so tfkit clips the summed gradient in the training step instead.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfkit.config import OptimizerConfig
from tfkit.errors import UserError


def scaled_learning_rate(
    *, base_learning_rate: float, base_batch_size: int, global_batch_size: int, scaling: str
) -> float:
    """Scales a learning rate tuned at ``base_batch_size`` to ``global_batch_size``.

    Args:
        base_learning_rate: The rate at the base batch.
        base_batch_size: The global batch the base rate was tuned for.
        global_batch_size: The global batch of this run.
        scaling: ``linear`` (Goyal et al.), ``sqrt`` (for adaptive optimizers at large batches) or ``none``.

    Returns:
        The peak learning rate.
    """
    ratio = global_batch_size / base_batch_size
    if scaling == "linear":
        return base_learning_rate * ratio
    if scaling == "sqrt":
        return base_learning_rate * math.sqrt(ratio)
    if scaling == "none":
        return base_learning_rate
    raise UserError(f"config key 'optimizer.scaling': received {scaling!r}; expected linear, sqrt or none.")


@keras.saving.register_keras_serializable(package="tfkit")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from ``peak / warmup_steps`` to ``peak``, then cosine decay to 0 at ``total_steps``, or constant.

    Args:
        peak: The learning rate after warmup.
        warmup_steps: Steps of warmup; 0 for none.
        total_steps: The run's optimizer steps, where the cosine reaches 0.
        decay: ``cosine``, ``constant``, or ``plateau`` (constant here; the loop lowers ``scale``).
    """

    def __init__(self, *, peak: float, warmup_steps: int, total_steps: int, decay: str) -> None:
        # A multiplier the NaN guard lowers after a divergence; checkpointed, so a resumed run keeps it.
        self.scale = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="learning_rate_scale")
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.decay = decay

    def retarget(self, *, peak: float, total_steps: int) -> None:
        """Sets the peak and length once the batch is final (the batch finder runs after the optimizer is built).

        Call it before the training step is first traced; the step reads these as constants.
        """
        self.peak = float(peak)
        self.total_steps = int(total_steps)

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        """Returns the rate for the optimizer step ``step`` (counted from 0)."""
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(max(self.warmup_steps, 1), tf.float32)
        warm = self.peak * tf.minimum(1.0, (step + 1.0) / warmup)
        if self.decay in ("constant", "plateau"):  # a plateau lowers self.scale, from the training loop
            return warm * self.scale
        span = tf.cast(max(self.total_steps - self.warmup_steps, 1), tf.float32)
        progress = tf.clip_by_value((step - float(self.warmup_steps)) / span, 0.0, 1.0)
        cosine = 0.5 * self.peak * (1.0 + tf.cos(math.pi * progress))
        return tf.where(step < float(self.warmup_steps), warm, cosine) * self.scale

    def get_config(self) -> dict:
        """Returns the constructor arguments."""
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "decay": self.decay,
        }


def schedule(config: OptimizerConfig, *, peak_learning_rate: float, total_steps: int) -> WarmupSchedule:
    """The learning-rate schedule of the ``optimizer`` section. Call it under the strategy's scope."""
    return WarmupSchedule(
        peak=peak_learning_rate,
        warmup_steps=config.warmup_steps,
        total_steps=total_steps,
        decay=config.schedule,
    )


def build(config: OptimizerConfig, schedule: WarmupSchedule) -> keras.optimizers.Optimizer:
    """Builds the optimizer around ``schedule``. Call it under the strategy's scope.

    Returns:
        An unbuilt Keras optimizer; build it with the model's variables before the first step.
    """
    if config.name == "adam":
        return keras.optimizers.Adam(learning_rate=schedule)
    if config.name == "adamw":
        return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    if config.name == "sgd":
        return keras.optimizers.SGD(
            learning_rate=schedule, momentum=config.momentum, weight_decay=config.weight_decay or None
        )
    return keras.optimizers.RMSprop(learning_rate=schedule)
