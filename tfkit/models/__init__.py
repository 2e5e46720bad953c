"""Building the model: a backbone with tfkit's head, a built-in model, a ``keras.applications`` model, or user code.

Models are built under the strategy's scope and the run's dtype policy by the caller. Nothing here downloads weights
unless ``model.backbone_weights`` says ``imagenet``: ``model.weights`` and ``model.backbone_weights`` are local.

User code (``model.name: module:function`` or ``file.py:function``) is called as ``function(input_shape=...,
num_classes=...)`` with one example's shape (a tuple, without the batch) and the number of outputs, and returns a
Keras model (built or not) whose outputs are logits, one per class (or the regression values), in any dtype: the
step casts them to float32.
"""

from __future__ import annotations

import inspect

import keras

from tfkit.config import ModelConfig
from tfkit.errors import UserError
from tfkit.models import backbones, user_model, weights
from tfkit.models.builtin import BUILT_IN, digits_cnn, mlp, unet_small

__all__ = ["BUILT_IN", "backbone_of", "build", "digits_cnn", "mlp", "unet_small"]

backbone_of = backbones.backbone_of


def build(config: ModelConfig, *, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Builds the model that ``config.backbone`` or ``config.name`` names.

    Args:
        config: The ``model`` section.
        input_shape: One example's shape, from the data schema.
        num_classes: Outputs of the head.

    Returns:
        A built Keras model whose outputs are logits (or regression values).

    Raises:
        UserError: The name matches nothing, user code fails to import, or a weights file is missing or does not
            match.
    """
    name = config.name
    if config.backbone:
        model = backbones.build(config, input_shape=input_shape, num_classes=num_classes)
    elif name in BUILT_IN:
        model = BUILT_IN[name](input_shape=input_shape, num_classes=num_classes)
    elif ":" in name:
        model = user_model.build(name, input_shape=input_shape, num_classes=num_classes)
    elif hasattr(keras.applications, name) and inspect.isfunction(getattr(keras.applications, name)):
        model = _application(name, input_shape=input_shape, num_classes=num_classes)
    else:
        raise UserError(
            f"config key 'model.name': received '{name}'; expected a built-in model ({', '.join(BUILT_IN)}), a "
            "keras.applications name such as EfficientNetV2S, or user code as module:function or file.py:function."
        )
    if not isinstance(model, keras.Model):
        raise UserError(f"model '{name}' returned {type(model).__name__}; expected a keras.Model.")
    user_model.check_outputs(config.backbone or name, model, num_classes=num_classes)
    if config.weights:
        weights.load(model, config.weights, key="model.weights")
    return model


def _application(name: str, *, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    constructor = getattr(keras.applications, name)
    try:
        return constructor(
            weights=None,
            input_shape=input_shape,
            classes=num_classes,
            include_top=True,
            classifier_activation=None,
        )
    except ValueError as error:
        raise UserError(f"keras.applications.{name} cannot be built for input {input_shape}: {error}") from None
