"""Whether a split's records are what its schema says, checked when training starts, before anything is written.

The schema is checked against the files (every shard it lists exists, its counts add up) and against the first
records (every feature is there with the bytes its dtype and shape need, labels are class numbers, floats are finite).
NaN/inf values are refused from the counts ``records write`` keeps in the schema, which cover every record; for data
written elsewhere (no counts) the first records are checked instead. Each refusal is one line naming the file, the
record and the fix.

A weight feature (``task.weight_feature``) must be one number per example, finite and 0 or more, in the first
records and in the schema's NaN/inf counts, whatever ``data.allow_nonfinite`` says.

Labels and weights past the first records are checked in the graph by ``assert_labels`` and ``assert_weights``:
their failure is a ``tf.errors.InvalidArgumentError`` whose message starts with ``tfkit-data:``
(``LABEL_ERROR_PREFIX``), which the trainer reports as one line.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from tfkit.config import DataConfig
from tfkit.errors import UserError
from tfkit.records import Feature, Schema, files, parse, read_records
from tfkit.records.verification import count_nonfinite

FIRST_RECORDS = 1024  # records read at start: a few batches, read in well under a second
# ... or fewer, when they hold large images: 1,024 records of 512x512 JPEGs on gs:// are 100 MB to fetch before the
# first step. A record past this budget is still checked as the pipeline reads it (assert_labels, the decoders).
FIRST_BYTES = 8 << 20
LABEL_ERROR_PREFIX = "tfkit-data:"


def check_split(
    source: str | Sequence[str],
    schema: Schema,
    config: DataConfig,
    *,
    num_classes: int | None = None,
    weight_feature: str | None = None,
    labels: bool = True,
) -> None:
    """Checks a split's schema against its files and first records, and its NaN/inf counts against the config.

    Args:
        source: The split's folder or glob, as configured (for messages).
        schema: Its schema (with ``data.skip_corrupt``, the one that reads repaired copies).
        config: The ``data`` section.
        num_classes: The model's classes when labels are class numbers; None takes the schema's, if any.
        weight_feature: ``task.weight_feature``, whose values must be finite and 0 or more; None for none.
        labels: Whether the split's labels are read. A test split's are not: a placeholder there (-1, NaN) is no
            fault, and only the records' layout is checked.

    Raises:
        UserError: One line naming the file, the record and the fix.
    """
    check_shards(source, schema)
    if weight_feature is not None:
        check_weight_feature(source, schema, weight_feature)
    check_nonfinite(source, schema, config, labels=labels)
    check_first_records(source, schema, config, num_classes=num_classes, weight_feature=weight_feature, labels=labels)


def check_weight_feature(source: str | Sequence[str], schema: Schema, name: str) -> None:
    """Checks that ``task.weight_feature`` is a numeric scalar of the split, with no NaN/inf the schema counted.

    Raises:
        UserError: The feature is missing, not one number per example, or counted NaN/inf values.
    """
    key = f"config key 'task.weight_feature': received '{name}'"
    feature = schema.features.get(name)
    if feature is None:
        raise UserError(
            f"{key}, which is not a feature of '{source}'; expected one of {', '.join(sorted(schema.features))}. "
            "Write the weights into the records, or set task.weight_feature: null."
        )
    numeric = feature.encoding in ("int64", "float") or (
        feature.encoding == "raw" and feature.dtype != "string" and np.dtype(feature.dtype).kind in "iuf"
    )
    if not numeric or math.prod(feature.shape) != 1:
        raise UserError(
            f"{key}, a {feature.encoding} {feature.dtype} {list(feature.shape)} feature of '{source}'; expected one "
            "number per example (int64 or float, shape []). Choose a scalar numeric feature."
        )
    counted = feature.nonfinite
    if counted is not None and counted.count:
        raise UserError(_weight_message(source, name, "NaN/inf", f"record {counted.first_record}"))


def check_shards(source: str | Sequence[str], schema: Schema) -> None:
    """Checks that every shard the schema lists exists and that its record counts add up.

    Raises:
        UserError: A missing shard, or a total that is not the sum of the shards' counts.
    """
    if not schema.shards:
        raise UserError(f"the schema of '{source}' lists no shards; expected at least one. Write the data again.")
    total = sum(shard.records for shard in schema.shards)
    if total != schema.records:
        raise UserError(
            f"the schema of '{source}' says {schema.records} records, and its shards add up to {total}; expected "
            "the same count. Fix schema.json or write the data again (python -m tfkit.records write)."
        )
    for path in schema.files(source):
        if not files.exists(path):
            raise UserError(
                f"shard '{path}' is listed in the schema of '{source}' and does not exist; expected every listed "
                "shard. Restore it, fix schema.json's shard list, or write the data again."
            )


def check_nonfinite(source: str | Sequence[str], schema: Schema, config: DataConfig, *, labels: bool = True) -> None:
    """Refuses float features whose schema counts NaN/inf values, unless ``data.allow_nonfinite``.

    The label counts only where it is read (``labels``).

    Raises:
        UserError: The feature, the count and the first record.
    """
    if config.allow_nonfinite:
        return
    for name in _used(schema, config, labels=labels):
        counted = schema.features[name].nonfinite
        if counted is not None and counted.count:
            raise UserError(_nonfinite_message(source, name, counted.count, f"record {counted.first_record}"))


def check_first_records(
    source: str | Sequence[str],
    schema: Schema,
    config: DataConfig,
    *,
    num_classes: int | None = None,
    weight_feature: str | None = None,
    limit: int = FIRST_RECORDS,
    byte_limit: int = FIRST_BYTES,
    labels: bool = True,
) -> None:
    """Decodes the first records without TensorFlow and checks them against the schema.

    The first ``limit`` records are read, or fewer when they hold more than ``byte_limit`` bytes (one at least).
    Every feature must be present with the size its dtype and shape need; labels stored as integers must lie in
    ``[0, num_classes)`` (where ``labels`` are read); float features the schema has no counts for must be finite
    (unless ``data.allow_nonfinite``); the ``weight_feature``'s values must be finite and 0 or more. A shard read to
    its end must hold the records the schema says.

    Raises:
        UserError: Naming the shard file, the record in it, and the fix.
    """
    label = schema.features.get(config.label) if labels else None
    classes = num_classes or (label.num_classes if label is not None else None)
    uncounted = {
        name: schema.features[name]
        for name in _used(schema, config, labels=labels)
        if schema.features[name].is_float and schema.features[name].nonfinite is None
    }
    seen, seen_bytes = 0, 0
    for shard, path in zip(schema.shards, schema.files(source), strict=True):
        index, intact = -1, True
        for index, serialized in _intact_records(path, schema.compression):
            if serialized is None:
                intact = False
                break
            if seen >= limit or seen_bytes >= byte_limit:
                return
            seen += 1
            seen_bytes += len(serialized)
            where = f"'{path}' record {index}"
            try:
                values = parse(serialized)
            except UserError as error:
                raise UserError(f"{where}: {error}") from None
            for name, feature in schema.features.items():
                _check_value(where, name, feature, values.get(name))
            if label is not None and config.label in values:
                _check_labels(where, config.label, label, values[config.label], classes)
            if weight_feature is not None:
                _check_weight(source, where, weight_feature, schema.features[weight_feature], values[weight_feature])
            if uncounted and not config.allow_nonfinite:
                for name, count in count_nonfinite(values, uncounted).items():
                    raise UserError(_nonfinite_message(source, name, count, where))
        if intact and index + 1 != shard.records:
            raise UserError(
                f"shard '{path}' holds {index + 1} records; the schema of '{source}' says {shard.records}. Fix "
                "schema.json's counts or write the data again (python -m tfkit.records write)."
            )


def _intact_records(path: str, compression: str | None) -> Iterator[tuple[int, bytes | None]]:
    """Yields ``(index, record)`` for each record before the first corrupt one, then a last ``(index, None)``.

    Corruption is not this module's question: the reader stops naming the shard, or skips it with
    ``data.skip_corrupt``, and ``records verify`` lists it.
    """
    index = 0
    try:
        for index, serialized in enumerate(read_records(path, compression)):
            yield index, serialized
    except UserError:
        yield index, None


def assert_labels(labels: tf.Tensor, num_classes: int) -> tf.Tensor:
    """Returns ``labels``, failing in the graph when one is negative or not below ``num_classes``.

    The failure is a ``tf.errors.InvalidArgumentError`` whose message starts with ``LABEL_ERROR_PREFIX``.
    """
    message = (
        f"{LABEL_ERROR_PREFIX} a label lies outside [0, {num_classes}); expected class numbers 0 to "
        f"{num_classes - 1}. Fix the labels, or set model.num_classes."
    )
    return _fail_if(tf.reduce_any((labels < 0) | (labels >= tf.cast(num_classes, labels.dtype))), labels, message)


def assert_weights(weights: tf.Tensor, name: str) -> tf.Tensor:
    """Returns ``weights``, failing in the graph when one is negative, NaN or infinite.

    The failure is a ``tf.errors.InvalidArgumentError`` whose message starts with ``LABEL_ERROR_PREFIX``.
    """
    message = (
        f"{LABEL_ERROR_PREFIX} weight feature '{name}' holds a negative, NaN or infinite value past the records "
        "checked at start; expected finite weights of 0 or more. Fix the records "
        "(python -m tfkit.records verify), or set task.weight_feature: null."
    )
    finite = tf.math.is_finite(weights) & (weights >= 0)
    return _fail_if(tf.logical_not(tf.reduce_all(finite)), weights, message)


def _fail_if(condition: tf.Tensor, value: tf.Tensor, message: str) -> tf.Tensor:
    """Returns ``value``, failing with ``message`` when ``condition`` holds, by stateless ops only.

    ``tf.debugging.assert_*`` ops are stateful, and a stateful function is one that tf.data cannot run on its fast
    single-threaded executor: in the parse and augment maps they cost a fifth to a third of the images/s of
    benchmarks/images.py. Parsing the message as a number fails with the message in the error, which is what
    tfkit.recovery.label_error reads. (A control dependency on it alone is pruned: the op is stateless.)
    """
    number = tf.strings.to_number(tf.where(condition, message, "0"), tf.float32)
    return value + tf.cast(number, value.dtype)  # 0 when it passes; an output, so it is never pruned as unused


def _check_weight(source: str | Sequence[str], where: str, name: str, feature: Feature, value: list) -> None:
    if feature.encoding == "raw":
        numbers = np.frombuffer(value[0], dtype=feature.dtype).astype(np.float64)
    else:
        numbers = np.asarray(value, dtype=np.float64)
    bad = numbers[~(np.isfinite(numbers) & (numbers >= 0))]
    if len(bad):
        raise UserError(_weight_message(source, name, f"{bad[0]}", where))


def _weight_message(source: str | Sequence[str], name: str, received: str, where: str) -> str:
    return (
        f"weight feature '{name}' (task.weight_feature) of '{source}' is {received} in {where}; expected finite "
        "weights of 0 or more. Fix the records, or set task.weight_feature: null to weigh every example 1."
    )


def _used(schema: Schema, config: DataConfig, *, labels: bool) -> list[str]:
    used = (config.features, config.label) if labels else (config.features,)
    return [name for name in dict.fromkeys(used) if name in schema.features]


def _nonfinite_message(source: str | Sequence[str], name: str, count: int, first: str) -> str:
    return (
        f"feature '{name}' of '{source}' holds {count} NaN/inf value(s), the first in {first}; expected finite "
        f"numbers. Clean the data (python -m tfkit.records verify {source} names every such record), or set "
        "data.allow_nonfinite: true to train on them."
    )


def _check_value(where: str, name: str, feature: Feature, value: list | None) -> None:
    fix = "Fix schema.json or write the data again (python -m tfkit.records write)."
    if value is None:
        raise UserError(f"{where} lacks feature '{name}', which its schema lists; expected every feature. {fix}")
    if feature.encoding in ("int64", "float"):  # an Int64List or a FloatList, as foreign records have
        expected = math.prod(feature.shape)
        kind, kinds = (int, "integers") if feature.encoding == "int64" else (float, "floats")
        if len(value) != expected or (value and not isinstance(value[0], kind)):
            raise UserError(
                f"{where}: feature '{name}' holds {len(value)} value(s); the schema says {expected} {kinds} "
                f"({feature.dtype} {list(feature.shape)}). {fix}"
            )
        return
    if len(value) != 1 or not isinstance(value[0], bytes):
        raise UserError(
            f"{where}: feature '{name}' holds {len(value)} value(s) of another kind; the schema says one "
            f"{feature.encoding} bytes value. {fix}"
        )
    if feature.encoding == "raw" and feature.example_bytes and len(value[0]) != feature.example_bytes:
        raise UserError(
            f"{where}: feature '{name}' holds {len(value[0])} bytes; the schema says {feature.dtype} "
            f"{list(feature.shape)}, {feature.example_bytes} bytes. {fix}"
        )


def _check_labels(where: str, name: str, feature: Feature, value: list, classes: int | None) -> None:
    if feature.encoding == "int64":
        labels = np.asarray(value, dtype=np.int64)
    elif feature.encoding == "raw" and np.dtype(feature.dtype).kind in "iu":
        labels = np.frombuffer(value[0], dtype=feature.dtype)
    else:
        return  # float targets (regression) and images have no class range
    outside = labels[(labels < 0) | (labels >= classes)] if classes else labels[labels < 0]
    if len(outside):
        expected = f"[0, {classes})" if classes else "class numbers from 0"
        raise UserError(
            f"{where}: label '{name}' is {int(outside[0])}; expected {expected}. Fix the labels, or set "
            "model.num_classes to the number of classes."
        )
