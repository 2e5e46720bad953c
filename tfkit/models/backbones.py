"""A pretrained network without its top, with tfkit's head: the Kaggle fine-tuning recipe.

``model.backbone`` names a ``keras.applications`` network (``EfficientNetV2S``, ``ResNet50``, ``ConvNeXtTiny``,
``MobileNetV3Small``, ...) or, when ``keras_hub`` is installed, a ``keras_hub`` preset. It is built with
``include_top=False`` and followed by the head: global pooling (``model.head_pooling``), dropout
(``model.head_dropout``) and a float32 dense layer of ``num_classes`` logits.

Images are given on the 0-255 scale, as the networks' ImageNet weights expect, and the network's own
``preprocess_input`` runs inside the model (a pass-through for EfficientNet, EfficientNetV2, ConvNeXt and
MobileNetV3, which rescale inside; caffe-style channel means for ResNet; [-1, 1] for MobileNetV2), so an exported
model takes the same pixels.

The backbone is one nested layer of the model (``backbone_of``), so ``train.freeze_backbone_epochs`` can freeze it as
a whole; a frozen Keras BatchNormalization runs in inference mode, so its statistics do not move either.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from typing import Any

import keras

from tfkit.config import ModelConfig
from tfkit.errors import UserError
from tfkit.models import weights


@keras.saving.register_keras_serializable(package="tfkit")
class BackbonePreprocessing(keras.layers.Layer):
    """The ``preprocess_input`` of a ``keras.applications`` family (``resnet``, ``efficientnet_v2``, ...).

    Args:
        family: The ``keras.applications`` submodule whose ``preprocess_input`` runs.
    """

    def __init__(self, family: str, *, name: str | None = None, trainable: bool = True, dtype: Any = None) -> None:
        super().__init__(name=name, trainable=trainable, dtype=dtype)
        self.family = family
        self.preprocess = getattr(keras.applications, family).preprocess_input

    def call(self, images: Any) -> Any:
        """Applies the family's preprocessing to images on the 0-255 scale."""
        return self.preprocess(images)

    def get_config(self) -> dict[str, Any]:
        """The layer's config, with its family."""
        return {**super().get_config(), "family": self.family}


def build(config: ModelConfig, *, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Builds ``config.backbone`` without its top, loads ``config.backbone_weights``, and adds the head.

    Raises:
        UserError: The name is neither a ``keras.applications`` network nor a ``keras_hub`` preset, the network
            cannot take ``input_shape``, or the weights are missing or do not match.
    """
    name = str(config.backbone)
    inputs = keras.Input(shape=input_shape, name="image")
    constructor = getattr(keras.applications, name, None)
    if constructor is not None and inspect.isfunction(constructor):
        backbone = _application(name, config.backbone_weights, input_shape=input_shape)
        family = constructor.__module__.rpartition(".")[2]
        features = backbone(BackbonePreprocessing(family, name="preprocessing")(inputs))
    elif importlib.util.find_spec("keras_hub") is not None:
        backbone = _hub_backbone(name, config.backbone_weights)
        features = backbone(inputs)
    else:
        raise UserError(
            f"config key 'model.backbone': received '{name}'; expected a keras.applications name such as "
            "EfficientNetV2S, ResNet50 or ConvNeXtTiny (keras_hub presets need pip install keras-hub)."
        )
    pooling = keras.layers.GlobalAveragePooling2D if config.head_pooling == "avg" else keras.layers.GlobalMaxPooling2D
    x = pooling(name="head_pooling")(features)
    if config.head_dropout:
        x = keras.layers.Dropout(config.head_dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=f"{backbone.name}_head")


def backbone_of(model: keras.Model) -> keras.Model:
    """The backbone inside a model that ``build`` made: its one nested model.

    Raises:
        ValueError: The model holds no nested model (it was not built from ``model.backbone``).
    """
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"model '{model.name}' holds {len(nested)} nested models; expected one backbone.")
    return nested[0]


def _application(name: str, source: str | None, *, input_shape: tuple[int, ...]) -> keras.Model:
    constructor = getattr(keras.applications, name)
    try:
        backbone = constructor(
            include_top=False, weights="imagenet" if source == "imagenet" else None, input_shape=input_shape
        )
    except ValueError as error:
        raise UserError(
            f"config key 'model.backbone': keras.applications.{name} cannot be built for input {input_shape} with "
            f"weights {source or 'none'}: {error}"
        ) from None
    if source and source != "imagenet":
        weights.load(backbone, source, key="model.backbone_weights")
    return backbone


def _hub_backbone(name: str, source: str | None) -> keras.Model:
    keras_hub: Any = importlib.import_module("keras_hub")  # optional: only with the keras-hub extra installed
    try:
        return keras_hub.models.Backbone.from_preset(source or name, load_weights=bool(source))
    except (ValueError, FileNotFoundError) as error:
        raise UserError(
            f"config key 'model.backbone': '{name}' is neither a keras.applications name nor a keras_hub preset "
            f"that loads from {source or name!r} ({error})."
        ) from None
