from __future__ import annotations

import pytest
import tensorflow as tf

from tfkit import metric_builder, metric_registry


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


def test_make_metrics_builds_every_name_the_registry_accepts():
    assert metric_registry.BUILT_IN == ("accuracy", "mae", "mse", "rmse", "iou", "dice", "psnr", "ssim")
    names = list(metric_registry.BUILDABLE)
    # The four "at" metrics need their operating point; the others build from their name alone.
    points = {
        "precision_at_recall": "recall",
        "recall_at_precision": "precision",
        "sensitivity_at_specificity": "specificity",
        "specificity_at_sensitivity": "sensitivity",
    }
    specs = tuple({"name": name, points[name]: 0.5} if name in points else name for name in names)
    built = metric_builder.make_metrics(
        specs, loss="binary_crossentropy", from_logits=True, num_classes=1, data_range="0-1"
    )
    assert list(built) == names
    assert all(metric.name == name for name, metric in built.items())
    labels = tf.constant([[[[1.0]]], [[[0.0]]]])
    built["iou"].update_state(labels, tf.constant([[[[3.0]]], [[[-3.0]]]]))
    assert float(built["iou"].result()) == pytest.approx(1.0)
