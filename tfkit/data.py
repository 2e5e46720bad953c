"""Streaming TFRecord splits to every replica through ``distribute_datasets_from_function``.

Each input pipeline (one per worker host) reads its own subset of the shard files, chosen by the InputContext, so no
record is read twice in an epoch. Then, in order: a seeded file shuffle, a parallel interleave, a seeded shuffle of
examples, batch-then-parse (``parse_example`` on whole batches, which is far cheaper than per record), decode by the
schema, and prefetch. Training batches are static (``drop_remainder=True``). Eval batches are padded to a static
shape with a zero weight on the padding, so eval sees every record once, on any device.

The order of an epoch is a function of the seed and the epoch number alone: each epoch gets a fresh dataset seeded
with both, rather than one long iterator. That is what lets a resumed run rebuild the exact position from a count.
Host memory is bounded by the shuffle buffer, the interleave's open files and the prefetch depth, never by the size
of the data.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tfkit.config import DataConfig
from tfkit.errors import UserError
from tfkit.records import Feature, Schema, read_schema

Batch = tuple[tf.Tensor, tf.Tensor, tf.Tensor]  # features, labels, per-example weights

_MAX_INTERLEAVE = 8


def check_features(schema: Schema, config: DataConfig, *, folder: str) -> None:
    """Checks that the configured feature and label exist in the schema.

    Raises:
        UserError: Naming the missing key and the features that exist.
    """
    for key, name in (("data.features", config.features), ("data.label", config.label)):
        if name not in schema.features:
            raise UserError(
                f"config key '{key}': received '{name}', which is not a feature of '{folder}'; expected one of "
                f"{', '.join(sorted(schema.features))}."
            )


def load_schema(folder: str, config: DataConfig) -> Schema:
    """Reads a split's schema and checks it against the config."""
    schema = read_schema(folder)
    check_features(schema, config, folder=folder)
    return schema


def dataset_fn(
    folder: str,
    schema: Schema,
    config: DataConfig,
    *,
    per_replica_batch_size: int,
    training: bool,
    seed: int,
    epoch: int,
    skip_batches: int = 0,
) -> Callable[[tf.distribute.InputContext], tf.data.Dataset]:
    """Returns the function that ``strategy.distribute_datasets_from_function`` calls once per input pipeline.

    Args:
        folder: The split's folder.
        schema: Its schema.
        config: The ``data`` section.
        per_replica_batch_size: Examples in each batch the pipeline yields (one replica's micro-batch).
        training: Shuffle and drop the remainder (training), or keep every record in order, padded (eval).
        seed: The run's seed.
        epoch: The epoch whose order to produce; with ``seed`` it fixes the order.
        skip_batches: Batches of this pipeline to skip, to resume mid-epoch at exactly the next batch.

    Returns:
        A function from an InputContext to a dataset of ``(features, labels, weights)`` batches.
    """
    files = schema.files(folder)
    epoch_seed = (seed * 1_000_003 + epoch) % (2**31 - 1)

    def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
        if len(files) < context.num_input_pipelines:
            raise UserError(
                f"'{folder}' has {len(files)} shard file(s) for {context.num_input_pipelines} input pipelines; "
                "expected at least one per pipeline. Write the data again with more shards."
            )
        mine = files[context.input_pipeline_id :: context.num_input_pipelines]
        dataset = tf.data.Dataset.from_tensor_slices(mine)
        if training:
            dataset = dataset.shuffle(len(mine), seed=epoch_seed)
        dataset = dataset.interleave(
            lambda path: tf.data.TFRecordDataset(path, compression_type=schema.compression or ""),
            cycle_length=min(len(mine), _MAX_INTERLEAVE),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        if training and config.shuffle_buffer:
            dataset = dataset.shuffle(config.shuffle_buffer, seed=epoch_seed)
        dataset = dataset.batch(per_replica_batch_size, drop_remainder=training)
        if skip_batches:
            dataset = dataset.skip(skip_batches)  # before parsing: skipped batches are read, never decoded
        parse = _parser(schema, features=config.features, label=config.label)
        dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if not training:
            dataset = dataset.map(lambda x, y, w: _pad(x, y, w, per_replica_batch_size))
        options = tf.data.Options()
        options.deterministic = config.deterministic
        # Files are already split per pipeline above; stop tf.distribute from sharding a second time.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)

    return make


def _parser(schema: Schema, *, features: str, label: str) -> Callable[[tf.Tensor], Batch]:
    specs = {name: _parse_spec(schema.features[name]) for name in (features, label)}

    def parse(serialized: tf.Tensor) -> Batch:
        parsed = tf.io.parse_example(serialized, specs)
        batch = serialized.shape[0]  # static after drop_remainder; TPUs need it kept
        x = _decode(parsed[features], schema.features[features], batch=batch)
        y = _decode(parsed[label], schema.features[label], batch=batch)
        weights = tf.ones(tf.shape(serialized)[:1], tf.float32)
        return x, y, weights

    return parse


def _parse_spec(feature: Feature) -> tf.io.FixedLenFeature:
    if feature.encoding == "raw":
        return tf.io.FixedLenFeature([], tf.string)
    return tf.io.FixedLenFeature(list(feature.shape), tf.int64)


def _decode(value: tf.Tensor, feature: Feature, *, batch: int | None) -> tf.Tensor:
    if feature.encoding == "raw":
        flat = tf.io.decode_raw(value, tf.dtypes.as_dtype(feature.dtype))
        return tf.reshape(flat, [-1 if batch is None else batch, *feature.shape])
    return tf.cast(value, tf.dtypes.as_dtype(feature.dtype))


def _pad(x: tf.Tensor, y: tf.Tensor, weights: tf.Tensor, size: int) -> Batch:
    missing = size - tf.shape(weights)[0]

    def pad(tensor: tf.Tensor) -> tf.Tensor:
        paddings = [[0, missing]] + [[0, 0]] * (tensor.shape.rank - 1)
        padded = tf.pad(tensor, paddings)
        padded.set_shape([size, *tensor.shape[1:]])
        return padded

    return pad(x), pad(y), pad(weights)
