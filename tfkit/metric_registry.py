"""Which metrics tfkit knows: whether each is better higher or lower, and what each needs.

One table, read by the config checks (which names ``task.metrics`` accepts, which need ``task.data_range``), by
``tfkit.loop.make_metrics`` (which it builds), and by the best checkpoint and reduce-on-plateau (through
``tfkit.config.monitored``: which way is better). Before it, the direction was guessed from a name ending in
"accuracy", so ``val_iou`` kept its worst epoch. Besides tfkit's own metrics it lists the common Keras names, so a
monitored value that comes from one gets the right direction without a ``checkpoint.monitor_mode``.

No TensorFlow here: config loading reads it.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Direction = Literal["min", "max"]
VALIDATION_PREFIX = "val_"


@dataclasses.dataclass(frozen=True)
class Metric:
    """What tfkit knows about one metric name.

    Attributes:
        name: The name as logged, without ``val_``.
        direction: ``max`` when higher is better (accuracy, IoU, PSNR), ``min`` when lower is (loss, errors).
        needs_data_range: Whether it compares images and so needs ``task.data_range`` (PSNR, SSIM).
        built_in: Whether tfkit builds it for ``task.metrics`` (``tfkit.loop.make_metrics``); the other names are
            known only for their direction.
    """

    name: str
    direction: Direction
    needs_data_range: bool = False
    built_in: bool = False


_METRICS = (
    Metric("loss", "min"),
    # What task.metrics accepts: tfkit.loop.make_metrics builds each of these.
    Metric("accuracy", "max", built_in=True),
    Metric("mae", "min", built_in=True),
    Metric("mse", "min", built_in=True),
    Metric("rmse", "min", built_in=True),
    Metric("iou", "max", built_in=True),
    Metric("dice", "max", built_in=True),
    Metric("psnr", "max", needs_data_range=True, built_in=True),
    Metric("ssim", "max", needs_data_range=True, built_in=True),
    # Keras' names (keras.metrics), known for their direction.
    Metric("auc", "max"),
    Metric("precision", "max"),
    Metric("recall", "max"),
    Metric("f1_score", "max"),
    Metric("fbeta_score", "max"),
    Metric("binary_accuracy", "max"),
    Metric("categorical_accuracy", "max"),
    Metric("sparse_categorical_accuracy", "max"),
    Metric("top_k_categorical_accuracy", "max"),
    Metric("sparse_top_k_categorical_accuracy", "max"),
    Metric("mean_iou", "max"),
    Metric("binary_iou", "max"),
    Metric("one_hot_iou", "max"),
    Metric("one_hot_mean_iou", "max"),
    Metric("r2_score", "max"),
    Metric("cosine_similarity", "max"),
    Metric("precision_at_recall", "max"),
    Metric("recall_at_precision", "max"),
    Metric("sensitivity_at_specificity", "max"),
    Metric("specificity_at_sensitivity", "max"),
    Metric("mean_absolute_error", "min"),
    Metric("mean_squared_error", "min"),
    Metric("root_mean_squared_error", "min"),
    Metric("mean_absolute_percentage_error", "min"),
    Metric("mean_squared_logarithmic_error", "min"),
    Metric("binary_crossentropy", "min"),
    Metric("categorical_crossentropy", "min"),
    Metric("sparse_categorical_crossentropy", "min"),
    Metric("kl_divergence", "min"),
    Metric("poisson", "min"),
    Metric("hinge", "min"),
    Metric("squared_hinge", "min"),
    Metric("categorical_hinge", "min"),
    Metric("log_cosh_error", "min"),
)

METRICS: dict[str, Metric] = {metric.name: metric for metric in _METRICS}
BUILT_IN: tuple[str, ...] = tuple(metric.name for metric in _METRICS if metric.built_in)


def lookup(name: str) -> Metric | None:
    """The metric a logged name refers to (``val_iou`` is ``iou`` on the eval data), or None for an unknown name."""
    if name in METRICS:
        return METRICS[name]
    if name.startswith(VALIDATION_PREFIX):
        return METRICS.get(name[len(VALIDATION_PREFIX) :])
    return None


def direction(name: str) -> Direction | None:
    """``max`` when a higher value of the logged ``name`` is better, ``min`` when a lower one is, None if unknown."""
    metric = lookup(name)
    return metric.direction if metric is not None else None
