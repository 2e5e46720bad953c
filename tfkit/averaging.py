"""The exponential moving average of the weights (``train.ema_decay``), and swapping it in for eval and saving.

Keras' optimizer keeps the average (``use_ema``): after every optimizer step, ``average = decay * average + (1 -
decay) * weight``, with the average starting at the weights after the first step. It is an optimizer variable, so it
is checkpointed and resumed exactly with the optimizer.

``swap`` exchanges the model's trainable weights with their averages. The trainer swaps around eval, so the eval
metrics are those of the average, and ``tfkit.checkpoint`` swaps around every save, so a checkpoint's ``model`` (the
best checkpoint's, and so what ``tfkit.export`` ships) holds the average while the optimizer's ``average`` slots hold
the weights training continues from; ``swapped`` is saved with them, and a restore swaps back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import tensorflow as tf


class WeightAverage:
    """Swaps a model's trainable weights with the optimizer's moving averages of them.

    Args:
        optimizer: A built optimizer with ``use_ema`` (or a ``LossScaleOptimizer`` around one).
    """

    def __init__(self, optimizer: keras.optimizers.Optimizer) -> None:
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        self.weights = list(inner._trainable_variables)  # the variables the averages follow
        self.averages = list(inner._model_variables_moving_average)
        self.swapped = tf.Variable(0, dtype=tf.int64, trainable=False, name="ema_swapped")

    def swap(self) -> None:
        """Exchanges every weight with its average (twice is the identity)."""
        for weight, average in zip(self.weights, self.averages, strict=True):
            held = tf.identity(tf.convert_to_tensor(weight))
            weight.assign(tf.convert_to_tensor(average))
            average.assign(held)
        self.swapped.assign(1 - self.swapped)


@contextlib.contextmanager
def in_place(average: WeightAverage | None) -> Iterator[None]:
    """Within the block, the model holds the moving average (nothing changes without one)."""
    if average is None:
        yield
        return
    average.swap()
    try:
        yield
    finally:
        average.swap()


def enable(optimizer: keras.optimizers.Optimizer, decay: float | None) -> None:
    """Turns on Keras' moving average of the weights with ``decay``; call it before ``optimizer.build``."""
    if decay is None:
        return
    optimizer.use_ema = True
    optimizer.ema_momentum = decay
    optimizer.ema_overwrite_frequency = None
