from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO

import tfkit.train
from tfkit import config as config_lib
from tfkit import metrics
from tfkit.errors import UserError

SEGMENTATION = REPO / "configs" / "shapes_segmentation.yaml"


def test_mask_iou_and_dice_match_numpy_and_ignore_padding():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (6, 8, 8, 1)).astype(np.float32)
    logits[0, 0, 0, 0] = 0.0  # exactly at the threshold: foreground with >=
    truth = (rng.random((6, 8, 8, 1)) < 0.4).astype(np.uint8)
    weights = np.array([1, 1, 1, 1, 0, 0], np.float32)  # two padding images
    predicted = logits >= 0.0
    kept = weights > 0
    intersection = np.logical_and(predicted, truth)[kept].sum()
    union = np.logical_or(predicted, truth)[kept].sum()
    sizes = predicted[kept].sum() + truth[kept].sum()
    for kind, expected in (("iou", intersection / union), ("dice", 2 * intersection / sizes)):
        metric = metrics.MaskOverlap(kind, from_logits=True)
        metric.update_state(truth[:3], logits[:3], sample_weight=weights[:3])
        metric.update_state(truth[3:], logits[3:], sample_weight=weights[3:])
        assert float(metric.result()) == pytest.approx(float(expected), rel=1e-6), kind


def test_psnr_in_a_config_needs_the_data_range():
    with pytest.raises(UserError, match=r"'task\.data_range' is not set, and psnr/ssim need it"):
        config_lib.load(SEGMENTATION, overrides=["task.metrics=[iou, psnr]"])


@pytest.mark.slow
def test_the_segmentation_config_reaches_iou_0_8(tmp_path):
    summary = tfkit.train.run(SEGMENTATION, workdir=tmp_path / "run")
    assert summary["metrics"]["iou"] >= 0.8
    assert summary["metrics"]["dice"] >= summary["metrics"]["iou"]  # Dice >= IoU always
    best = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints" / "best"))
    assert best is not None  # kept by val_iou, maximised
