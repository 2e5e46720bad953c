from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import DIGITS_CONFIG, DIGITS_DATA

from tfkit import config as config_lib
from tfkit import distribute, optimizers, plan, records
from tfkit.errors import UserError


def digits_plan(overrides, replicas):
    config = config_lib.load(DIGITS_CONFIG, overrides=overrides)
    selected = distribute.select(config_lib.DistributeConfig(strategy="mirrored", cpu_replicas=replicas))
    return plan.make(config, selected=selected, train_schema=records.read_schema(DIGITS_DATA / "train"))


def test_global_batch_is_split_over_replicas_and_lr_follows_the_global_batch():
    one = digits_plan([], replicas=1)
    four = digits_plan([], replicas=4)
    assert (one.per_replica_batch_size, one.global_batch_size) == (64, 64)
    assert (four.per_replica_batch_size, four.global_batch_size, four.replicas) == (16, 64, 4)
    assert one.steps_per_epoch == four.steps_per_epoch == 1437 // 64
    assert one.learning_rate == four.learning_rate == pytest.approx(0.003)


def test_per_replica_batch_is_the_tpu_idiom_and_scales_the_learning_rate():
    overrides = [
        "train.global_batch_size=null",
        "train.per_replica_batch_size=8",
        "train.grad_accum_steps=2",
        "optimizer.base_batch_size=32",
    ]
    run_plan = digits_plan(overrides, replicas=4)
    assert run_plan.global_batch_size == 8 * 4 * 2
    assert run_plan.learning_rate == pytest.approx(0.003 * 64 / 32)
    assert run_plan.total_steps == run_plan.steps_per_epoch * run_plan.epochs
    assert digits_plan([*overrides, "optimizer.scaling=sqrt"], replicas=4).learning_rate == pytest.approx(
        0.003 * math.sqrt(2)
    )


def test_a_global_batch_that_does_not_divide_is_refused_with_the_nearest_multiples():
    with pytest.raises(
        UserError, match=r"received 66, .* over 4 replica\(s\).*expected a multiple of 4, e.g. 64 or 68"
    ):
        digits_plan(["train.global_batch_size=66"], replicas=4)


def test_data_smaller_than_one_global_batch_is_refused():
    with pytest.raises(UserError, match="fewer than one global batch of 4096"):
        digits_plan(["train.global_batch_size=4096"], replicas=1)


def test_epoch_steps_follow_the_smallest_shard_subset_of_any_pipeline():
    schema = records.Schema(
        split="train",
        features={},
        shards=tuple(records.Shard(file=f"f{i}", records=count) for i, count in enumerate([10, 10, 10, 1])),
        records=31,
    )
    assert plan.epoch_steps(schema, pipelines=1, global_batch_size=4) == 7
    assert plan.epoch_steps(schema, pipelines=2, global_batch_size=4) == 5  # shards 1 and 3 hold 11 records
    with pytest.raises(UserError, match=r"4 shard file.* for 5 input pipelines"):
        plan.epoch_steps(schema, pipelines=5, global_batch_size=5)


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_zero():
    schedule = optimizers.WarmupSchedule(peak=1.0, warmup_steps=4, total_steps=14, decay="cosine")
    values = [float(schedule(tf.constant(step))) for step in range(15)]
    np.testing.assert_allclose(values[:4], [0.25, 0.5, 0.75, 1.0], rtol=1e-6)
    assert values[4] == pytest.approx(1.0)
    assert values[9] == pytest.approx(0.5, abs=1e-6)
    assert values[14] == pytest.approx(0.0, abs=1e-6)
    constant = optimizers.WarmupSchedule(peak=2.0, warmup_steps=0, total_steps=10, decay="constant")
    assert [float(constant(tf.constant(s))) for s in (0, 9)] == [2.0, 2.0]
