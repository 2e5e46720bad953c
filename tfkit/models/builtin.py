"""tfkit's own models: ``digits_cnn``, ``unet_small`` and ``mlp``, each ``function(input_shape=..., num_classes=...)``.

Every one ends in a float32 dense layer of logits (or values), so mixed precision leaves the loss in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import keras


def digits_cnn(*, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """A small CNN for 8x8 digits: two convolutions, global pooling, a dense head that outputs logits.

    It has no dropout, no batch normalisation and no max pooling, so its losses do not depend on how the global
    batch is split over replicas: the same config gives the same losses on 1, 2 or 8 replicas. (Max pooling passes
    each gradient to the largest of four values; on the quantised digits two are often within the last bits that a
    different summation order over replicas changes, and after such a step the runs drift apart, to 6e-3 in the
    loss by step 20 on 2 replicas. The second convolution has a stride of 2 instead.)

    Inputs are raw pixels on the 0-255 scale, as decoded images are and as the bundled digits are stored (uint8,
    tfrecords/make_digits.py); the model rescales them by 1/255 itself, as ``unet_small`` does.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
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
