"""Parsing and decoding batches of serialized records by their schema, and padding eval batches."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tfkit.records import IMAGE_ENCODINGS, Feature, Schema

Batch = tuple[tf.Tensor, tf.Tensor, tf.Tensor]  # features, labels, per-example weights


def parser(
    schema: Schema,
    *,
    features: str,
    label: str | None,
    weight: str | None = None,
    image_size: tuple[int, ...] = (),
) -> Callable[[tf.Tensor], Batch]:
    """Returns ``parse(serialized) -> (features, labels, weights)`` for whole batches of serialized records.

    Without a ``label`` (an unlabeled test split), the labels are int64 zeros, one per example. Without a ``weight``
    feature (``task.weight_feature``), every example weighs 1; with one, its float32 value is the example's weight.
    Only ``features`` reaches the model.
    """
    names = tuple(name for name in (features, label, weight) if name is not None)
    specs = {name: parse_spec(schema.features[name]) for name in names}

    def parse(serialized: tf.Tensor) -> Batch:
        parsed = tf.io.parse_example(serialized, specs)
        batch = serialized.shape[0]  # static after drop_remainder; TPUs need it kept
        x = decode(parsed[features], schema.features[features], batch=batch, image_size=image_size)
        if label is None:
            y = tf.zeros(tf.shape(serialized)[:1], tf.int64)
        else:
            y = decode(parsed[label], schema.features[label], batch=batch, image_size=image_size)
        if weight is None:
            weights = tf.ones(tf.shape(serialized)[:1], tf.float32)
        else:
            value = decode(parsed[weight], schema.features[weight], batch=batch, image_size=image_size)
            weights = tf.reshape(tf.cast(value, tf.float32), tf.shape(serialized)[:1])  # one value per example
        return x, y, weights

    return parse


def parse_spec(feature: Feature) -> tf.io.FixedLenFeature:
    """How ``tf.io.parse_example`` reads a feature: an Int64List or FloatList as it is, else one bytes value."""
    if feature.encoding == "int64":
        return tf.io.FixedLenFeature(list(feature.shape), tf.int64)
    if feature.encoding == "float":
        return tf.io.FixedLenFeature(list(feature.shape), tf.float32)
    return tf.io.FixedLenFeature([], tf.string)


def decode(value: tf.Tensor, feature: Feature, *, batch: int | None, image_size: tuple[int, ...]) -> tf.Tensor:
    """Decodes a parsed batch of one feature by its encoding, with static shapes (``batch`` None when unknown)."""
    if feature.encoding == "raw":
        flat = tf.io.decode_raw(value, tf.dtypes.as_dtype(feature.dtype))
        return tf.reshape(flat, [-1 if batch is None else batch, *feature.shape])
    if feature.encoding == "string":
        return value
    if feature.encoding in IMAGE_ENCODINGS:
        channels = feature.shape[-1]
        shape = (*image_size, channels) if image_size else tuple(None if size < 0 else size for size in feature.shape)

        def one(data: tf.Tensor) -> tf.Tensor:
            image = tf.io.decode_image(data, channels=channels, dtype=tf.uint8, expand_animations=False)
            if image_size:
                image = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, image_size)), 0, 255), tf.uint8)
            return tf.ensure_shape(image, shape)

        decoded = tf.map_fn(one, value, fn_output_signature=tf.TensorSpec(shape, tf.uint8))
        return tf.ensure_shape(decoded, [batch, *shape]) if batch is not None else decoded
    return tf.cast(value, tf.dtypes.as_dtype(feature.dtype))


def pad(x: tf.Tensor, y: tf.Tensor, weights: tf.Tensor, size: int) -> Batch:
    """Pads an eval batch to ``size`` examples; the padding has weight 0, so it counts for nothing."""
    missing = size - tf.shape(weights)[0]

    def pad(tensor: tf.Tensor) -> tf.Tensor:
        paddings = [[0, missing]] + [[0, 0]] * (tensor.shape.rank - 1)
        padded = tf.pad(tensor, paddings)
        padded.set_shape([size, *tensor.shape[1:]])
        return padded

    return pad(x), pad(y), pad(weights)
