"""Building the model: the built-in digits CNN, ``keras.applications`` models by name, or user code.

Models are built under the strategy's scope and the run's dtype policy by the caller. Nothing here downloads weights:
``model.weights`` is None or a local file.
"""

from __future__ import annotations

import inspect
import os
import traceback
from collections.abc import Callable

import keras

from tfkit import user_code
from tfkit.config import ModelConfig
from tfkit.errors import UserError


def digits_cnn(*, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """A small CNN for 8x8 digits: two convolutions, global pooling, a dense head that outputs logits.

    It has no dropout and no batch normalisation, so its losses do not depend on how the global batch is split over
    replicas: the same config gives the same losses on 1, 2 or 8 replicas.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    outputs = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="digits_cnn")


def unet_small(*, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """A small U-Net: two downsamplings, skip connections, per-pixel logits (``num_classes`` channels).

    Inputs are raw pixels on the 0-255 scale; the model rescales them itself.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    skips = []
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    for filters, skip in zip((32, 16), reversed(skips), strict=True):
        x = keras.layers.Conv2DTranspose(filters, 2, strides=2, padding="same")(x)
        x = keras.layers.Concatenate()([x, skip])
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="unet_small")


def mlp(*, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """A baseline for any fixed-shape input, such as EEG windows of (channels, samples).

    Flatten, two dense layers of 256 with ReLU, and a dense head of logits.
    """
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(256, activation="relu")(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="mlp")


BUILT_IN: dict[str, Callable[..., keras.Model]] = {"digits_cnn": digits_cnn, "unet_small": unet_small, "mlp": mlp}


def build(config: ModelConfig, *, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Builds the model that ``config.name`` names.

    Args:
        config: The ``model`` section.
        input_shape: One example's shape, from the data schema.
        num_classes: Outputs of the head.

    Returns:
        A built Keras model whose outputs are logits (or regression values).

    Raises:
        UserError: The name matches nothing, user code fails to import, or the weights file is missing.
    """
    name = config.name
    if name in BUILT_IN:
        model = BUILT_IN[name](input_shape=input_shape, num_classes=num_classes)
    elif ":" in name:
        model = _user_model(name, input_shape=input_shape, num_classes=num_classes)
    elif hasattr(keras.applications, name) and inspect.isfunction(getattr(keras.applications, name)):
        model = _application(name, input_shape=input_shape, num_classes=num_classes)
    else:
        raise UserError(
            f"config key 'model.name': received '{name}'; expected a built-in model ({', '.join(BUILT_IN)}), a "
            "keras.applications name such as EfficientNetV2S, or user code as module:function or file.py:function."
        )
    if not isinstance(model, keras.Model):
        raise UserError(f"model '{name}' returned {type(model).__name__}; expected a keras.Model.")
    _check_outputs(name, model, num_classes=num_classes)
    if config.weights:
        if not os.path.isfile(config.weights):
            raise UserError(
                f"config key 'model.weights': '{config.weights}' does not exist; expected a local weights file."
            )
        model.load_weights(config.weights)
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


def _user_model(spec: str, *, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Calls the user's model function; whatever goes wrong in the user's code is reported as one line."""
    try:
        function = user_code.load_function(spec, key="model.name")
    except SyntaxError as error:
        raise UserError(
            f"config key 'model.name': '{spec}' does not parse: {error.msg} ({error.filename}, line {error.lineno}); "
            "fix the syntax error."
        ) from None
    except UserError:
        raise
    except Exception as error:
        raise UserError(
            f"config key 'model.name': importing '{spec}' raised {type(error).__name__}: {_first_line(error)}"
            f"{_where(error)}; fix the module."
        ) from None
    try:
        inspect.signature(function).bind(input_shape=input_shape, num_classes=num_classes)
    except TypeError:
        raise UserError(
            f"config key 'model.name': '{spec}' takes {inspect.signature(function)}; expected a function called as "
            "f(*, input_shape, num_classes) that returns a keras.Model."
        ) from None
    except ValueError:
        pass  # a builtin or C function without a signature: call it and see
    try:
        return function(input_shape=input_shape, num_classes=num_classes)
    except Exception as error:
        raise UserError(
            f"model '{spec}' raised {type(error).__name__} while building for input {input_shape} and "
            f"{num_classes} classes: {_first_line(error)}{_where(error)}; fix the model function."
        ) from None


def _check_outputs(name: str, model: keras.Model, *, num_classes: int) -> None:
    """Refuses a model whose head does not give ``num_classes`` values, before any data reaches it."""
    try:
        outputs = list(model.outputs or [])
    except (AttributeError, ValueError):
        return  # a subclassed model has no symbolic outputs before its first call; the first step checks it
    if len(outputs) != 1:
        raise UserError(f"model '{name}' has {len(outputs)} outputs; expected one output of {num_classes} logits.")
    shape = tuple(outputs[0].shape)
    width = shape[-1] if shape else None
    if width is not None and width != num_classes:
        raise UserError(
            f"model '{name}' outputs {width} values per example (output shape {shape}); expected "
            f"{num_classes} (num_classes). Make the last layer Dense({num_classes}) or set model.num_classes."
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def _where(error: BaseException) -> str:
    """`` (file.py, line N)`` of the deepest frame outside Keras and TensorFlow: where the user's code failed."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if "site-packages" not in frame.filename]
    if not frames:
        return ""
    frame = frames[-1]
    return f" ({os.path.basename(frame.filename)}, line {frame.lineno})"
