"""Fine-tuning a keras.applications backbone from a local notop file: frozen for N epochs, trained, resumed exactly.

Nothing can be downloaded, so the notop file is a randomly initialised MobileNetV3Small (it has BatchNorm, whose
statistics must not move while frozen) saved by the test.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import saved_tensors

import tfkit.train
from tfkit import models, records
from tfkit.config import ModelConfig

SHAPE = (32, 32, 3)


def write_data(folder):
    rng = np.random.default_rng(0)
    features = {
        "image": records.Feature(dtype="float32", shape=SHAPE),
        "label": records.Feature(dtype="int64", shape=(), encoding="int64", num_classes=3),
    }
    rows = ({"image": rng.uniform(0, 255, SHAPE), "label": rng.integers(0, 3)} for _ in range(32))
    records.write_split(rows, folder / "train", split="train", features=features, num_shards=2)


def backbone_at(checkpoint, model_config):
    model = models.build(model_config, input_shape=SHAPE, num_classes=3)
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
    return [weight.numpy() for weight in models.backbone_of(model).weights]


@pytest.mark.slow
def test_a_frozen_backbone_keeps_its_file_weights_bitwise_then_trains_and_resumes_across_the_unfreeze(tmp_path):
    write_data(tmp_path)
    notop = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=SHAPE)
    notop.save_weights(tmp_path / "notop.weights.h5")
    original = [weight.numpy() for weight in notop.weights]
    model_config = {"backbone": "MobileNetV3Small", "backbone_weights": str(tmp_path / "notop.weights.h5")}
    config = {
        "name": "finetune",
        "model": model_config,
        "data": {"train": str(tmp_path / "train")},
        "train": {"epochs": 2, "global_batch_size": 16, "freeze_backbone_epochs": 1},
        "optimizer": {"base_learning_rate": 0.01, "finetune_learning_rate_factor": 0.5, "schedule": "constant"},
    }
    straight = tmp_path / "straight"
    summary = tfkit.train.run(config, workdir=straight)
    assert (summary["status"], summary["steps"]) == ("completed", 4)

    built_config = ModelConfig(**model_config)
    frozen = backbone_at(str(straight / "checkpoints" / "ckpt-2"), built_config)  # after the frozen epoch
    assert len(frozen) == len(original) > 100
    for weight, loaded in zip(frozen, original, strict=True):
        assert weight.tobytes() == loaded.tobytes()  # kernels and BatchNorm statistics alike
    trained = backbone_at(str(straight / "checkpoints" / "ckpt-4"), built_config)
    moved = sum(not np.array_equal(weight, loaded) for weight, loaded in zip(trained, original, strict=True))
    assert moved > len(original) // 2
    scale = tf.train.load_checkpoint(str(straight / "checkpoints" / "ckpt-4"))
    assert scale.get_tensor("learning_rate_scale/.ATTRIBUTES/VARIABLE_VALUE") == pytest.approx(0.5)

    # Stopped at the first step of the unfrozen epoch, then resumed: the same state, bit for bit.
    interrupted = tmp_path / "interrupted"
    stopped = tfkit.train.run(config, workdir=interrupted, overrides=["faults.preempt_at_step=3"])
    assert (stopped["status"], stopped["steps"]) == ("stopped", 3)
    resumed = tfkit.train.run(config, workdir=interrupted)
    assert (resumed["status"], resumed["steps"]) == ("completed", 4)
    expected = saved_tensors(straight, "ckpt-4")
    got = saved_tensors(interrupted, "ckpt-4")
    assert expected.keys() == got.keys()
    for name in expected:
        assert expected[name].tobytes() == got[name].tobytes(), name
