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
    per_record: bool = False,
) -> Callable[[tf.Tensor], Batch]:
    """Returns ``parse(serialized) -> (features, labels, weights)`` for a batch of serialized records, or for one.

    Without a ``label`` (an unlabeled test split), the labels are int64 zeros, one per example. Without a ``weight``
    feature (``task.weight_feature``), every example weighs 1; with one, its float32 value is the example's weight.
    Only ``features`` reaches the model. With ``per_record``, ``serialized`` is one scalar record and the results
    are one example's (see ``decodes_images``); else it is a vector of records and the results are batches.
    """
    names = tuple(name for name in (features, label, weight) if name is not None)
    specs = {name: parse_spec(schema.features[name]) for name in names}

    def parse(serialized: tf.Tensor) -> Batch:
        # Written without nested functions or annotated names: AutoGraph converts this function inside tf.data maps,
        # and it cannot convert a closure over an annotated local (it warns on stderr and runs it as is).
        if per_record:
            parsed = tf.io.parse_single_example(serialized, specs)
            values = {
                name: decode_example(parsed[name], schema.features[name], image_size=image_size) for name in names
            }
            count = tf.constant([], tf.int32)  # one example: scalar labels and weights
        else:
            parsed = tf.io.parse_example(serialized, specs)
            batch = serialized.shape[0]  # static after drop_remainder; TPUs need it kept
            values = {name: decode(parsed[name], schema.features[name], batch=batch) for name in names}
            count = tf.shape(serialized)[:1]
        x = values[features]
        y = tf.zeros(count, tf.int64) if label is None else values[label]
        if weight is None:
            weights = tf.ones(count, tf.float32)
        else:
            weights = tf.reshape(tf.cast(values[weight], tf.float32), count)  # one value per example
        return x, y, weights

    return parse


def decodes_images(schema: Schema, names: tuple[str | None, ...]) -> bool:
    """Whether any of ``names`` is an encoded image, which the pipeline then parses record by record.

    Decoding a batch of JPEGs or PNGs took a ``tf.map_fn`` loop inside one map call: its per-image overhead, and
    one call per batch for the map's parallelism to spread, left ``benchmarks/images.py`` at about 0.65x a
    hand-written per-record pipeline. Small fixed-size records stay batched: for them the per-element cost of a
    ``tf.data`` map would dominate.
    """
    return any(name is not None and schema.features[name].encoding in IMAGE_ENCODINGS for name in names)


def parse_spec(feature: Feature) -> tf.io.FixedLenFeature:
    """How ``tf.io.parse_example`` reads a feature: an Int64List or FloatList as it is, else one bytes value."""
    if feature.encoding == "int64":
        return tf.io.FixedLenFeature(list(feature.shape), tf.int64)
    if feature.encoding == "float":
        return tf.io.FixedLenFeature(list(feature.shape), tf.float32)
    return tf.io.FixedLenFeature([], tf.string)


def decode(value: tf.Tensor, feature: Feature, *, batch: int | None) -> tf.Tensor:
    """Decodes a parsed batch of one feature by its encoding, with static shapes (``batch`` None when unknown).

    Encoded images are not decoded here: a split with one is parsed record by record (``decodes_images``).
    """
    if feature.encoding == "raw":
        flat = tf.io.decode_raw(value, tf.dtypes.as_dtype(feature.dtype))
        return tf.reshape(flat, [-1 if batch is None else batch, *feature.shape])
    if feature.encoding == "string":
        return value
    if feature.encoding in IMAGE_ENCODINGS:  # a bug: the pipeline parses such splits record by record
        raise ValueError(f"a batch of {feature.encoding} images reached decode(); decode them with decode_example.")
    return tf.cast(value, tf.dtypes.as_dtype(feature.dtype))


def decode_example(value: tf.Tensor, feature: Feature, *, image_size: tuple[int, ...]) -> tf.Tensor:
    """Decodes one example's parsed value of one feature by its encoding, with a static shape."""
    if feature.encoding == "raw":
        return tf.reshape(tf.io.decode_raw(value, tf.dtypes.as_dtype(feature.dtype)), feature.shape)
    if feature.encoding == "string":
        return value
    if feature.encoding in IMAGE_ENCODINGS:
        return decode_image(value, feature, image_size=image_size)
    return tf.cast(value, tf.dtypes.as_dtype(feature.dtype))


def decode_image(data: tf.Tensor, feature: Feature, *, image_size: tuple[int, ...]) -> tf.Tensor:
    """Decodes one encoded image to uint8, resized to ``image_size`` (rounded, as the pixels were) when given."""
    image = tf.io.decode_image(data, channels=feature.shape[-1], dtype=tf.uint8, expand_animations=False)
    if image_size:
        # Bilinear weights are convex: the resized values stay within 0..255, so rounding needs no clip. Few ops:
        # this runs once per image, and each op costs the map its per-call overhead.
        image = tf.cast(tf.round(tf.image.resize(image, image_size, method="bilinear")), tf.uint8)
    if image.shape.is_fully_defined():  # the resize (and the channels) fixed it
        return image
    return tf.ensure_shape(image, _image_shape(feature, image_size))


def _image_shape(feature: Feature, image_size: tuple[int, ...]) -> tuple[int | None, ...]:
    channels = feature.shape[-1]
    return (*image_size, channels) if image_size else tuple(None if size < 0 else size for size in feature.shape)


def pad(x: tf.Tensor, y: tf.Tensor, weights: tf.Tensor, size: int) -> Batch:
    """Pads an eval batch to ``size`` examples; the padding has weight 0, so it counts for nothing."""
    missing = size - tf.shape(weights)[0]

    def pad(tensor: tf.Tensor) -> tf.Tensor:
        paddings = [[0, missing]] + [[0, 0]] * (tensor.shape.rank - 1)
        padded = tf.pad(tensor, paddings)
        padded.set_shape([size, *tensor.shape[1:]])
        return padded

    return pad(x), pad(y), pad(weights)
