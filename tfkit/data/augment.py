"""The user's augmentation (``data.augment``), applied to each training batch after decoding, with a seed.

The function is called as ``augment(features, labels, seed)``. ``seed`` is a shape-[2] int32 tensor made from the
run's seed, the epoch, the input pipeline and the batch's index in the epoch, for the ``tf.image.stateless_random_*``
ops: the same run augments every batch the same way, and a resumed run augments batch k exactly as an uninterrupted
one did. Stateful random ops (``tf.image.random_flip_left_right``) draw from a generator that a resume cannot put
back, so they break exact resume.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from tfkit import user_code
from tfkit.config import DataConfig
from tfkit.errors import UserError

Augment = Callable[[Any, tf.Tensor, tf.Tensor], tuple[Any, tf.Tensor]]


def augment_seed(epoch_seed: int | tf.Tensor, *, batch: tf.Tensor, pipeline: int, pipelines: int) -> tf.Tensor:
    """The shape-[2] int32 seed of one batch: the epoch's seed, and the batch's index over all pipelines."""
    index = tf.cast(batch, tf.int64) * pipelines + pipeline
    return tf.stack([tf.cast(epoch_seed, tf.int32), tf.cast(index % (2**31 - 1), tf.int32)])


def augmenter(config: DataConfig) -> Augment | None:
    """The ``data.augment`` function, checked to take a seed and to return ``(features, labels)``; None without one.

    Raises:
        UserError: The function cannot take three arguments (features, labels, seed).
    """
    if not config.augment:
        return None
    function = user_code.load_function(config.augment, key="data.augment")
    if not _takes_three(function):
        raise UserError(
            f"config key 'data.augment': '{config.augment}' takes (features, labels); expected (features, labels, "
            "seed). Add a seed argument and pass it to tf.image.stateless_random_* ops, e.g. "
            "tf.image.stateless_random_flip_left_right(features, seed), so runs repeat and resume exactly."
        )

    def apply(x: Any, y: tf.Tensor, seed: tf.Tensor) -> tuple[Any, tf.Tensor]:
        result = function(x, y, seed)
        if not isinstance(result, tuple) or len(result) != 2:
            raise UserError(
                f"config key 'data.augment': '{config.augment}' returned {type(result).__name__}; expected a "
                "(features, labels) tuple."
            )
        return result

    return apply


def _takes_three(function: Callable[..., Any]) -> bool:
    try:
        inspect.signature(function).bind(None, None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): let the call decide
        return True
    return True
