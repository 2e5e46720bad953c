from __future__ import annotations

import pytest
import tensorflow as tf

from tfkit import loop, metric_registry


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("accuracy", "max"),
        ("val_accuracy", "max"),
        ("iou", "max"),
        ("val_dice", "max"),
        ("val_psnr", "max"),
        ("ssim", "max"),
        ("loss", "min"),
        ("val_loss", "min"),
        ("mae", "min"),
        ("val_rmse", "min"),
        ("auc", "max"),
        ("val_precision", "max"),
        ("recall", "max"),
        ("f1_score", "max"),
        ("top_k_categorical_accuracy", "max"),
        ("mean_squared_error", "min"),
        ("val_binary_crossentropy", "min"),
    ],
)
def test_each_known_metric_says_which_way_is_better(name, direction):
    assert metric_registry.direction(name) == direction


def test_unknown_names_have_no_direction():
    assert metric_registry.lookup("custom_score") is None
    assert metric_registry.direction("val_custom_score") is None
    assert metric_registry.direction("val_") is None


def test_only_image_metrics_need_a_data_range():
    needing = {name for name, metric in metric_registry.METRICS.items() if metric.needs_data_range}
    assert needing == {"psnr", "ssim"}


def test_make_metrics_builds_every_built_in_name_and_refuses_the_others():
    assert metric_registry.BUILT_IN == ("accuracy", "mae", "mse", "rmse", "iou", "dice", "psnr", "ssim")
    built = loop.make_metrics(metric_registry.BUILT_IN, loss="binary_crossentropy", from_logits=True, data_range="0-1")
    assert list(built) == list(metric_registry.BUILT_IN)
    assert all(metric.name == name for name, metric in built.items())
    labels = tf.constant([[[[1.0]]], [[[0.0]]]])
    built["iou"].update_state(labels, tf.constant([[[[3.0]]], [[[-3.0]]]]))
    assert float(built["iou"].result()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="make_metrics received 'auc'; expected some of accuracy"):
        loop.make_metrics(("auc",), loss="binary_crossentropy", from_logits=True)
