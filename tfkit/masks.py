"""Turning probabilities or logits into masks, with the comparison said out loud.

The usual notebook ways are wrong at the edges: ``tf.cast(p + 0.5, tf.int32)`` truncates, and ``tf.round`` rounds
half to even, so 0.5 becomes 0 and 1.5 becomes 2. Keras itself disagrees with itself: ``BinaryAccuracy`` counts
``p > threshold`` and ``BinaryIoU`` counts ``p >= threshold``. Here every mask comes from ``tf.where`` on an explicit
comparison: ``>=`` by default (a value exactly at the threshold is foreground), ``>`` when asked.

Logits are compared against the logit of the threshold, which is the same decision as comparing
``sigmoid(logit)`` against the threshold without the rounding that computing the sigmoid brings near the boundary.
"""

from __future__ import annotations

import math
from typing import Literal

import tensorflow as tf

Comparison = Literal[">=", ">"]


def binary(
    values: tf.Tensor,
    *,
    threshold: float = 0.5,
    from_logits: bool = False,
    comparison: Comparison = ">=",
    dtype: tf.DType = tf.uint8,
) -> tf.Tensor:
    """Thresholds probabilities (or logits) into a 0/1 mask of the same shape.

    Args:
        values: Probabilities in [0, 1], or logits with ``from_logits``. Any shape, batches included.
        threshold: The probability at which a value becomes foreground; strictly between 0 and 1 for logits.
        from_logits: Whether ``values`` are logits.
        comparison: ``>=`` (the default: a value exactly at the threshold is foreground) or ``>``.
        dtype: The mask's dtype.

    Returns:
        A mask of ones and zeros.

    Raises:
        ValueError: An unknown comparison, or a threshold a logit cannot reach.
    """
    values = tf.convert_to_tensor(values)
    cut = threshold
    if from_logits:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold received {threshold} with from_logits=True; expected a value in (0, 1).")
        cut = math.log(threshold / (1.0 - threshold))
    cut_tensor = tf.constant(cut, dtype=values.dtype)
    if comparison == ">=":
        hit = values >= cut_tensor
    elif comparison == ">":
        hit = values > cut_tensor
    else:
        raise ValueError(f"comparison received {comparison!r}; expected '>=' or '>'.")
    return tf.where(hit, tf.ones_like(values, dtype=dtype), tf.zeros_like(values, dtype=dtype))


def multiclass(values: tf.Tensor, *, one_hot: bool = False, dtype: tf.DType = tf.int32) -> tf.Tensor:
    """Picks each pixel's class from per-class scores (probabilities or logits) on the last axis.

    Ties go to the lowest class index, as ``tf.argmax`` does.

    Args:
        values: Scores with classes on the last axis.
        one_hot: Return one-hot masks (the same shape as ``values``) instead of class indices.
        dtype: The output dtype.

    Returns:
        Class indices (``values`` without its last axis), or one-hot masks.
    """
    values = tf.convert_to_tensor(values)
    indices = tf.argmax(values, axis=-1, output_type=tf.int32)
    if not one_hot:
        return tf.cast(indices, dtype)  # integer to integer: exact, unlike a float cast
    classes = tf.range(tf.shape(values)[-1], dtype=tf.int32)
    hit = tf.equal(indices[..., None], classes)
    return tf.where(hit, tf.ones_like(hit, dtype=dtype), tf.zeros_like(hit, dtype=dtype))
