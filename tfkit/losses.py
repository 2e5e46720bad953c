"""The task's loss: any Keras loss by name with its arguments, or user code, as one float32 loss per example.

The training step sums per-example losses times each example's weight and divides by the global batch, so the loss
must not be reduced over the batch here: Keras losses are built with ``reduction=None``. Losses over extra axes
(pixels of a mask, outputs of a regression) are averaged per example.

Labels are given as the data stores them. A categorical loss (``categorical_crossentropy``, its focal form,
``kl_divergence``, ``categorical_hinge``) takes integer class ids one-hot encoded, or one-hot or soft labels as they
are; ``sparse_categorical_crossentropy`` takes class ids, and soft labels through the categorical loss (the same value
for one-hot labels); ``categorical_generalized_cross_entropy`` takes class ids (the largest of one-hot rows); every
other loss takes the labels in the outputs' shape.

User code (``module:function`` or ``file.py:function``) is called as ``function(labels, outputs)`` with the labels as
stored and the model's float32 outputs (logits with the built-in heads), and returns one loss per example (or per
pixel or output, averaged here), as Keras' loss functions do.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Literal

import keras
import tensorflow as tf

from tfkit import metric_registry, user_code
from tfkit.config.checks import KERAS_LOSSES
from tfkit.errors import UserError

PerExampleLoss = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
TaskKind = Literal["multiclass", "binary", "regression"]

_CLASS_LABELS = ("categorical_crossentropy", "categorical_focal_crossentropy", "kl_divergence", "categorical_hinge")
_CLASS_IDS = ("sparse_categorical_crossentropy", "categorical_generalized_cross_entropy")
_BINARY = ("binary_crossentropy", "binary_focal_crossentropy", "hinge", "squared_hinge")


def spec_parts(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Splits a loss or metric entry into its name and the arguments of its Keras class."""
    if isinstance(spec, Mapping):
        arguments = dict(spec)
        return str(arguments.pop("name")), arguments
    return spec, {}


def takes_class_ids(spec: str | Mapping[str, Any]) -> bool:
    """Whether the loss reads labels as class ids in ``[0, num_classes)`` (a mask or a regression target is not)."""
    return spec_parts(spec)[0] in _CLASS_IDS


def task_kind(spec: str | Mapping[str, Any], *, num_classes: int) -> TaskKind:
    """What the loss says the outputs are: class scores (one per class), binary scores, or values.

    User code is taken as a classifier with more than one output, and as binary with one.
    """
    name, _ = spec_parts(spec)
    if name in _CLASS_LABELS or name in _CLASS_IDS:
        return "multiclass"
    if name in _BINARY:
        return "binary"
    if metric_registry.is_user_code(name):
        return "multiclass" if num_classes > 1 else "binary"
    return "regression"


def one_hot_labels(labels: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
    """Integer class ids as one-hot rows in the outputs' dtype; labels already shaped like the outputs as they are."""
    if _dense(labels, outputs):
        return tf.cast(labels, outputs.dtype)
    classes = tf.reshape(tf.cast(labels, tf.int32), tf.shape(outputs)[:-1])
    return tf.one_hot(classes, depth=outputs.shape[-1], dtype=outputs.dtype)


def class_ids(labels: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
    """Integer class ids in the outputs' leading shape; one-hot or soft labels give their largest class."""
    if _dense(labels, outputs):
        return tf.argmax(labels, axis=-1, output_type=tf.int32)
    return tf.reshape(tf.cast(labels, tf.int32), tf.shape(outputs)[:-1])


def per_example_loss(
    spec: str | Mapping[str, Any], *, from_logits: bool, class_weights: tf.Tensor | None = None
) -> PerExampleLoss:
    """Returns a function from (labels, outputs) to one float32 loss per example.

    Args:
        spec: ``task.loss``: a Keras loss name, a mapping of ``name`` and arguments, or user code.
        from_logits: ``task.from_logits``; an argument ``from_logits`` in the mapping wins.
        class_weights: One weight per class id, multiplied into each example's loss (see ``class_weight_table``);
            None for none.

    Raises:
        UserError: The Keras class refuses the arguments, or user code does not import.
    """
    name, arguments = spec_parts(spec)
    if metric_registry.is_user_code(name):
        values_fn: PerExampleLoss = user_code.load_function(name, key="task.loss")
    else:
        values_fn = _keras_loss(name, arguments, from_logits=from_logits)

    def loss(labels: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
        labels, outputs = tf.convert_to_tensor(labels), tf.convert_to_tensor(outputs)
        values = _reduce_to_examples(values_fn(labels, outputs))
        if class_weights is not None:
            values *= tf.gather(class_weights, _example_classes(labels, outputs))
        return values

    return loss


def class_weight_table(weights: Mapping[int, float], *, num_classes: int) -> tf.Tensor:
    """``task.class_weights`` as a float32 vector of ``num_classes`` weights; classes not named weigh 1.

    Raises:
        UserError: A class id is not below ``num_classes``.
    """
    if any(cls >= num_classes for cls in weights):
        raise UserError(
            f"config key 'task.class_weights': received classes {sorted(weights)}; expected class ids below "
            f"{num_classes}, the model's outputs."
        )
    return tf.constant([float(weights.get(cls, 1.0)) for cls in range(num_classes)], tf.float32)


def balanced_weights(counts: Mapping[int, int], *, num_classes: int) -> dict[int, float]:
    """Keras' and scikit-learn's ``balanced`` weights: ``examples / (classes * examples of the class)``.

    Classes that never occur weigh 1 (they contribute nothing either way).
    """
    total = sum(counts.values())
    present = [cls for cls in range(num_classes) if counts.get(cls, 0) > 0]
    return {cls: total / (len(present) * counts[cls]) for cls in present}


def _keras_loss(name: str, arguments: dict[str, Any], *, from_logits: bool) -> PerExampleLoss:
    cls = getattr(keras.losses, KERAS_LOSSES[name])
    accepted = inspect.signature(cls.__init__).parameters
    if "from_logits" in accepted:
        arguments = {"from_logits": from_logits, **arguments}
    try:
        loss_object = cls(**arguments, reduction=None)
    except (TypeError, ValueError) as error:
        raise UserError(
            f"config key 'task.loss': keras.losses.{cls.__name__} refuses arguments {arguments} ({error}); "
            "expected its own argument names."
        ) from None
    if name in _CLASS_LABELS:
        return lambda labels, outputs: loss_object(one_hot_labels(labels, outputs), outputs)
    if name == "sparse_categorical_crossentropy":
        dense = keras.losses.CategoricalCrossentropy(**arguments, reduction=None)

        def sparse(labels: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
            if _dense(labels, outputs):  # soft labels: the same loss, written for them
                return dense(tf.cast(labels, outputs.dtype), outputs)
            return loss_object(labels, outputs)

        return sparse
    if name == "categorical_generalized_cross_entropy":
        return lambda labels, outputs: loss_object(class_ids(labels, outputs), outputs)
    # Masks and regression targets: the labels in the outputs' shape.
    return lambda labels, outputs: loss_object(tf.reshape(tf.cast(labels, outputs.dtype), tf.shape(outputs)), outputs)


def _dense(labels: tf.Tensor, outputs: tf.Tensor) -> bool:
    """Whether the labels are one-hot or soft rows (shaped like multi-class outputs) rather than class ids."""
    return (
        labels.shape.rank == outputs.shape.rank
        and outputs.shape[-1] is not None
        and outputs.shape[-1] > 1
        and labels.shape[-1] == outputs.shape[-1]
    )


def _example_classes(labels: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
    """Each example's class id for its class weight (binary outputs: the label rounded)."""
    if outputs.shape[-1] == 1 or outputs.shape.rank == 1:
        return tf.reshape(tf.cast(tf.round(tf.cast(labels, tf.float32)), tf.int32), [tf.shape(outputs)[0]])
    return class_ids(labels, outputs)


def _reduce_to_examples(values: tf.Tensor) -> tf.Tensor:
    values = tf.cast(values, tf.float32)
    if values.shape.rank == 1:
        return values  # already one value per example: no extra ops in the hot path
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)
