"""Which metrics tfkit knows: whether each is better higher or lower, and what each needs.

One table, read by the config checks (which names ``task.metrics`` accepts, which need ``task.data_range``), by
``tfkit.metric_builder`` (which Keras class each name is and what form of labels and outputs it takes), and by the
best checkpoint, reduce-on-plateau and early stopping (through ``tfkit.config.monitored``: which way is better).
Before it, the direction was guessed from a name ending in "accuracy", so ``val_iou`` kept its worst epoch.

No TensorFlow here: config loading reads it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

Direction = Literal["min", "max"]
# What a Keras metric is given: ``sparse`` integer class ids and probabilities; ``probabilities`` one-hot (or soft)
# labels and probabilities, or for a binary task the labels as stored and sigmoid probabilities; ``values`` the
# labels in the outputs' shape and the outputs as they are (regression).
Inputs = Literal["sparse", "probabilities", "values"]
VALIDATION_PREFIX = "val_"


@dataclasses.dataclass(frozen=True)
class Metric:
    """What tfkit knows about one metric name.

    Attributes:
        name: The name as logged, without ``val_``.
        direction: ``max`` when higher is better (accuracy, IoU, PSNR), ``min`` when lower is (loss, errors).
        needs_data_range: Whether it compares images and so needs ``task.data_range`` (PSNR, SSIM).
        built_in: Whether tfkit builds it itself (``tfkit.metric_builder``), the image and mask metrics and the
            short names.
        keras_class: The ``keras.metrics`` class that ``task.metrics`` builds for this name, or None.
        inputs: What form of labels and outputs that Keras class takes (see ``Inputs``).
    """

    name: str
    direction: Direction
    needs_data_range: bool = False
    built_in: bool = False
    keras_class: str | None = None
    inputs: Inputs = "probabilities"


_METRICS = (
    Metric("loss", "min"),
    # What task.metrics accepts: tfkit.metric_builder.make_metrics builds each of these.
    Metric("accuracy", "max", built_in=True),
    Metric("mae", "min", built_in=True),
    Metric("mse", "min", built_in=True),
    Metric("rmse", "min", built_in=True),
    Metric("iou", "max", built_in=True),
    Metric("dice", "max", built_in=True),
    Metric("psnr", "max", needs_data_range=True, built_in=True),
    Metric("ssim", "max", needs_data_range=True, built_in=True),
    # Keras' metrics (keras.metrics): task.metrics builds each by name, with its arguments.
    Metric("auc", "max", keras_class="AUC"),
    Metric("precision", "max", keras_class="Precision"),
    Metric("recall", "max", keras_class="Recall"),
    Metric("f1_score", "max", keras_class="F1Score"),
    Metric("fbeta_score", "max", keras_class="FBetaScore"),
    Metric("binary_accuracy", "max", keras_class="BinaryAccuracy"),
    Metric("categorical_accuracy", "max", keras_class="CategoricalAccuracy"),
    Metric("sparse_categorical_accuracy", "max", keras_class="SparseCategoricalAccuracy", inputs="sparse"),
    Metric("top_k_categorical_accuracy", "max", keras_class="TopKCategoricalAccuracy"),
    Metric("sparse_top_k_categorical_accuracy", "max", keras_class="SparseTopKCategoricalAccuracy", inputs="sparse"),
    Metric("precision_at_recall", "max", keras_class="PrecisionAtRecall"),
    Metric("recall_at_precision", "max", keras_class="RecallAtPrecision"),
    Metric("sensitivity_at_specificity", "max", keras_class="SensitivityAtSpecificity"),
    Metric("specificity_at_sensitivity", "max", keras_class="SpecificityAtSensitivity"),
    Metric("true_positives", "max", keras_class="TruePositives"),
    Metric("true_negatives", "max", keras_class="TrueNegatives"),
    Metric("false_positives", "min", keras_class="FalsePositives"),
    Metric("false_negatives", "min", keras_class="FalseNegatives"),
    Metric("binary_crossentropy", "min", keras_class="BinaryCrossentropy"),
    Metric("categorical_crossentropy", "min", keras_class="CategoricalCrossentropy"),
    Metric("sparse_categorical_crossentropy", "min", keras_class="SparseCategoricalCrossentropy", inputs="sparse"),
    Metric("kl_divergence", "min", keras_class="KLDivergence"),
    Metric("poisson", "min", keras_class="Poisson"),
    Metric("hinge", "min", keras_class="Hinge", inputs="values"),
    Metric("squared_hinge", "min", keras_class="SquaredHinge", inputs="values"),
    Metric("categorical_hinge", "min", keras_class="CategoricalHinge", inputs="values"),
    Metric("r2_score", "max", keras_class="R2Score", inputs="values"),
    Metric("cosine_similarity", "max", keras_class="CosineSimilarity", inputs="values"),
    Metric("pearson_correlation", "max", keras_class="PearsonCorrelation", inputs="values"),
    Metric("concordance_correlation", "max", keras_class="ConcordanceCorrelation", inputs="values"),
    Metric("mean_absolute_error", "min", keras_class="MeanAbsoluteError", inputs="values"),
    Metric("mean_squared_error", "min", keras_class="MeanSquaredError", inputs="values"),
    Metric("root_mean_squared_error", "min", keras_class="RootMeanSquaredError", inputs="values"),
    Metric("mean_absolute_percentage_error", "min", keras_class="MeanAbsolutePercentageError", inputs="values"),
    Metric("mean_squared_logarithmic_error", "min", keras_class="MeanSquaredLogarithmicError", inputs="values"),
    Metric("log_cosh_error", "min", keras_class="LogCoshError", inputs="values"),
    # Known only for their direction (a monitored value from user code of that name).
    Metric("mean_iou", "max"),
    Metric("binary_iou", "max"),
    Metric("one_hot_iou", "max"),
    Metric("one_hot_mean_iou", "max"),
)

METRICS: dict[str, Metric] = {metric.name: metric for metric in _METRICS}
BUILT_IN: tuple[str, ...] = tuple(metric.name for metric in _METRICS if metric.built_in)
# What task.metrics accepts by name: tfkit's own metrics and the Keras classes.
BUILDABLE: tuple[str, ...] = tuple(metric.name for metric in _METRICS if metric.built_in or metric.keras_class)


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


def spec_name(spec: str | dict[str, Any]) -> str:
    """The logged name of a ``task.metrics`` entry: ``{name: auc, ...}`` is ``auc``; ``m.py:score`` is ``score``."""
    name = spec.get("name", "") if isinstance(spec, dict) else spec
    return str(name).rpartition(":")[2]


def is_user_code(spec: str | dict[str, Any]) -> bool:
    """Whether a loss or metric entry names user code (``module:function`` or ``file.py:function``)."""
    name = spec.get("name", "") if isinstance(spec, dict) else spec
    return ":" in str(name)
