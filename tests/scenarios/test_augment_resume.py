"""A run with random flips and crops, interrupted and resumed, ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import pytest
from conftest import DIGITS_CONFIG, model_file, saved_tensors

import tfkit.train

FLIPS_AND_CROPS = """
import tensorflow as tf

def flip_and_crop(images, labels, seed):
    flipped = tf.image.stateless_random_flip_left_right(images, seed)
    batch = tf.shape(images)[0]
    cropped = tf.image.stateless_random_crop(flipped, tf.stack([batch, 6, 6, 1]), seed + 1)
    return tf.image.resize_with_crop_or_pad(cropped, 8, 8), labels
"""


@pytest.mark.slow
def test_an_augmented_run_repeats_and_resumes_bit_identical(tmp_path):
    augment = model_file(tmp_path, FLIPS_AND_CROPS, name="augment.py")
    base = ["train.epochs=2", "checkpoint.every_steps=5", f"data.augment={augment}:flip_and_crop"]
    straight = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "straight", overrides=base)
    again = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "again", overrides=base)
    assert straight["metrics"] == again["metrics"]
    for stop in (7, 22):  # mid-epoch, and at the epoch boundary
        summary = tfkit.train.run(
            DIGITS_CONFIG, workdir=tmp_path / "interrupted", overrides=[*base, f"faults.preempt_at_step={stop}"]
        )
        assert (summary["status"], summary["steps"]) == ("stopped", stop)
    resumed = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "interrupted", overrides=base)
    assert resumed["metrics"] == straight["metrics"]
    expected, got = saved_tensors(tmp_path / "straight"), saved_tensors(tmp_path / "interrupted")
    assert expected.keys() == got.keys() and len(expected) >= 10
    for name in expected:
        assert expected[name].tobytes() == got[name].tobytes(), name
