"""tfkit.masks: thresholds through tf.where, exact at the boundary."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfkit import masks


def test_a_value_exactly_at_the_threshold_is_foreground_with_ge_and_background_with_gt():
    probabilities = tf.constant([[0.49999, 0.5, 0.50001], [0.0, 1.0, 0.25]])
    np.testing.assert_array_equal(masks.binary(probabilities), [[0, 1, 1], [0, 1, 0]])
    np.testing.assert_array_equal(masks.binary(probabilities, comparison=">"), [[0, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(masks.binary(probabilities, threshold=0.25), [[1, 1, 1], [0, 1, 1]])
    # What the notebook idioms do at 0.5 instead: tf.round rounds half to even, and the cast truncates 0.49999 + 0.5.
    assert float(tf.round(0.5)) == 0.0 and int(tf.cast(tf.constant(0.49999) + 0.5, tf.int32)) == 0


def test_logits_decide_exactly_as_their_probabilities_would():
    logits = tf.constant([-3.0, -1e-7, 0.0, 1e-7, 2.0])
    np.testing.assert_array_equal(masks.binary(logits, from_logits=True), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(masks.binary(logits, from_logits=True, comparison=">"), [0, 0, 0, 1, 1])
    at = float(np.log(0.8 / 0.2))
    values = tf.constant([at - 1e-4, at, at + 1e-4])
    np.testing.assert_array_equal(masks.binary(values, from_logits=True, threshold=0.8), [0, 1, 1])
    with pytest.raises(ValueError, match=r"expected a value in \(0, 1\)"):
        masks.binary(logits, from_logits=True, threshold=1.0)


def test_batches_and_dtypes():
    batch = tf.random.stateless_uniform((4, 8, 8, 1), seed=(1, 2))
    mask = masks.binary(batch, dtype=tf.float32)
    assert mask.shape == (4, 8, 8, 1) and mask.dtype == tf.float32
    np.testing.assert_array_equal(mask.numpy(), (batch.numpy() >= 0.5).astype(np.float32))


def test_multiclass_masks_by_argmax_or_one_hot():
    scores = tf.constant([[[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]]])  # a tie goes to the lower class
    np.testing.assert_array_equal(masks.multiclass(scores), [[1, 0]])
    np.testing.assert_array_equal(masks.multiclass(scores, one_hot=True, dtype=tf.uint8), [[[0, 1, 0], [1, 0, 0]]])
