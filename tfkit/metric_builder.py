"""Building ``task.metrics``: tfkit's image and mask metrics, any Keras metric by name with arguments, or user code.

Each Keras metric is given labels and outputs in the form it expects (``tfkit.metric_registry`` says which): on a
multi-class task, one-hot labels from integer class ids (or the integer ids for the ``sparse_`` metrics) and softmax
probabilities from logits; on a binary task the labels in the outputs' shape and sigmoid probabilities; on a
regression task both as they are. ``f1_score`` and ``fbeta_score`` average over classes (``macro``) unless told
otherwise, so every metric logs one number. User code (``module:function``) is called as ``function(labels,
outputs)`` with the labels as stored and the model's outputs, returns one value per example, and is logged, averaged
over examples, under the function's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import tensorflow as tf

from tfkit import losses, metric_registry, user_code
from tfkit import metrics as image_metrics
from tfkit.errors import UserError

Spec = str | Mapping[str, Any]


def make_metrics(
    specs: tuple[Spec, ...],
    *,
    loss: Spec,
    from_logits: bool,
    num_classes: int,
    data_range: str | None = None,
) -> dict[str, keras.metrics.Metric]:
    """Creates the metric objects of ``task.metrics``, keyed by their logged names. Call it under the strategy's scope.

    Args:
        specs: ``task.metrics``: names, mappings of ``name`` and arguments, or user code.
        loss: ``task.loss``, which says whether the task is multi-class, binary or regression.
        from_logits: Whether the model outputs logits.
        num_classes: The model's outputs.
        data_range: The images' range, for ``psnr`` and ``ssim``.

    Raises:
        UserError: A Keras class refuses the arguments, or user code does not import.
    """
    kind = losses.task_kind(loss, num_classes=num_classes)
    built: dict[str, keras.metrics.Metric] = {}
    for spec in specs:
        name, arguments = losses.spec_parts(spec)
        logged = metric_registry.spec_name(name)
        if metric_registry.is_user_code(name):
            built[logged] = keras.metrics.MeanMetricWrapper(_user_metric(name), name=logged)
            continue
        known = metric_registry.METRICS[name]
        if known.built_in:
            built[logged] = _built_in(name, kind=kind, from_logits=from_logits, data_range=data_range)
        else:
            built[logged] = Adapted(
                _keras_metric(known, arguments, kind=kind),
                inputs=known.inputs,
                kind=kind,
                from_logits=from_logits,
                name=logged,
            )
    return built


class Adapted(keras.metrics.Metric):
    """A Keras metric given the labels and outputs in the form it expects.

    Args:
        inner: The Keras metric.
        inputs: Its form (``tfkit.metric_registry.Inputs``).
        kind: The task's kind (``tfkit.losses.TaskKind``).
        from_logits: Whether the outputs are logits.
        name: The logged name.
    """

    def __init__(self, inner: keras.metrics.Metric, *, inputs: str, kind: str, from_logits: bool, name: str) -> None:
        super().__init__(name=name)
        self.inner = inner
        self.inputs = inputs
        self.kind = kind
        self.from_logits = from_logits

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Converts the labels and outputs, then updates the Keras metric."""
        labels, outputs = self._convert(tf.convert_to_tensor(y_true), tf.convert_to_tensor(y_pred))
        self.inner.update_state(labels, outputs, sample_weight=sample_weight)

    def result(self) -> Any:
        """The Keras metric's result."""
        return self.inner.result()

    def reset_state(self) -> None:
        """Resets the Keras metric."""
        self.inner.reset_state()

    def _convert(self, labels: tf.Tensor, outputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if self.kind == "regression" or self.inputs == "values":
            return tf.reshape(tf.cast(labels, outputs.dtype), tf.shape(outputs)), outputs
        if self.kind == "binary":
            probabilities = tf.sigmoid(outputs) if self.from_logits else outputs
            return tf.reshape(tf.cast(labels, outputs.dtype), tf.shape(outputs)), probabilities
        probabilities = tf.nn.softmax(outputs) if self.from_logits else outputs
        if self.inputs == "sparse":
            return losses.class_ids(labels, outputs), probabilities
        return losses.one_hot_labels(labels, outputs), probabilities


def _built_in(name: str, *, kind: str, from_logits: bool, data_range: str | None) -> keras.metrics.Metric:
    known = metric_registry.METRICS[name]
    if known.needs_data_range:
        return image_metrics.ImageMetric(name, data_range=data_range or "0-1")
    if name in ("iou", "dice"):
        return image_metrics.MaskOverlap(name, from_logits=from_logits)
    if name == "accuracy":
        if kind == "multiclass":
            return Adapted(
                keras.metrics.SparseCategoricalAccuracy(name=name),
                inputs="sparse",
                kind=kind,
                from_logits=False,  # the largest logit is the largest probability
                name=name,
            )
        return keras.metrics.BinaryAccuracy(name=name, threshold=0.0 if from_logits else 0.5)
    short = {"mae": keras.metrics.MeanAbsoluteError, "mse": keras.metrics.MeanSquaredError}
    return short.get(name, keras.metrics.RootMeanSquaredError)(name=name)


def _keras_metric(known: metric_registry.Metric, arguments: dict[str, Any], *, kind: str) -> keras.metrics.Metric:
    cls = getattr(keras.metrics, str(known.keras_class))
    arguments = dict(arguments)
    if known.name in ("f1_score", "fbeta_score"):
        arguments.setdefault("average", "macro")  # one number per epoch, not one per class
        if kind == "binary":
            arguments.setdefault("threshold", 0.5)
    try:
        return cls(**arguments)
    except (TypeError, ValueError) as error:
        raise UserError(
            f"config key 'task.metrics': keras.metrics.{cls.__name__} refuses arguments {arguments} ({error}); "
            "expected its own argument names."
        ) from None


def _user_metric(name: str) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    function = user_code.load_function(name, key="task.metrics")

    def values(labels: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
        return tf.cast(function(labels, outputs), tf.float32)

    return values
