"""Digits with augmentation presets and MixUp's soft labels: trains on 1 and 2 replicas, repeats, resumes exactly."""

from __future__ import annotations

import math

import pytest
from conftest import DIGITS_CONFIG, saved_tensors

import tfkit.train

FLIP_AND_MIXUP = "data.augmentations=[flip, {name: mixup, alpha: 0.4}]"


def assert_same_tensors(expected_run, got_run):
    expected, got = saved_tensors(expected_run), saved_tensors(got_run)
    assert expected.keys() == got.keys() and len(expected) >= 10
    for name in expected:
        assert expected[name].tobytes() == got[name].tobytes(), name


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [1, 2])
def test_flip_and_mixup_train_with_the_default_sparse_loss_and_repeat_bit_identical(tmp_path, replicas):
    plain_overrides = ["train.epochs=1", f"distribute.cpu_replicas={replicas}"]
    overrides = [*plain_overrides, FLIP_AND_MIXUP]
    first = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "first", overrides=overrides)
    again = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "again", overrides=overrides)
    assert first["status"] == "completed" and math.isfinite(first["metrics"]["loss"])
    assert first["metrics"] == again["metrics"]
    assert_same_tensors(tmp_path / "first", tmp_path / "again")
    if replicas == 1:
        plain = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "plain", overrides=plain_overrides)
        assert plain["metrics"] != first["metrics"]  # the presets were applied


@pytest.mark.slow
def test_a_run_with_presets_interrupted_and_resumed_is_bit_identical(tmp_path):
    base = [
        "train.epochs=2",
        "checkpoint.every_steps=5",
        "data.augmentations=[flip, {name: rotation, degrees: 10}, cutmix]",
    ]
    straight = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "straight", overrides=base)
    for stop in (7, 22):  # mid-epoch, and at the epoch boundary
        summary = tfkit.train.run(
            DIGITS_CONFIG, workdir=tmp_path / "interrupted", overrides=[*base, f"faults.preempt_at_step={stop}"]
        )
        assert (summary["status"], summary["steps"]) == ("stopped", stop)
    resumed = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "interrupted", overrides=base)
    assert resumed["metrics"] == straight["metrics"]
    assert_same_tensors(tmp_path / "straight", tmp_path / "interrupted")
