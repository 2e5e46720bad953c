"""The bundled segmentation config end to end: a U-Net on shapes, kept by val_iou."""

from __future__ import annotations

import pytest
import tensorflow as tf
from conftest import REPO

import tfkit.train
from tfkit import config as config_lib
from tfkit.errors import UserError

SEGMENTATION = REPO / "configs" / "shapes_segmentation.yaml"


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
