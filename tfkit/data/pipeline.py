"""The input pipeline: one ``tf.data`` dataset per input pipeline, for ``distribute_datasets_from_function``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import tensorflow as tf

from tfkit.config import DataConfig
from tfkit.data.augment import augmenter
from tfkit.data.checks import assert_labels
from tfkit.data.decode import pad, parser
from tfkit.errors import UserError
from tfkit.records import Schema

_MAX_INTERLEAVE = 8
_PREFETCH_BATCHES = 2  # per input pipeline, without data.autotune
_RECORDS_PER_READ = 256
_SMALL_RECORD_BYTES = 4096


def shuffle_examples(schema: Schema, config: DataConfig) -> int:
    """Examples the shuffle buffer holds: ``data.shuffle_buffer``, fewer when that would pass its byte bound."""
    if not config.shuffle_buffer:
        return 0
    limit = config.shuffle_buffer_bytes
    return max(1, min(config.shuffle_buffer, limit // max(record_bytes(schema), 1)))


def record_bytes(schema: Schema) -> int:
    """Bytes of one serialized record, on average (what the shuffle buffer holds per example)."""
    decoded = sum(feature.example_bytes for feature in schema.features.values())
    on_disk = schema.bytes // max(schema.records, 1) if schema.compression is None else 0
    return max(decoded, on_disk, 1)


def dataset_fn(
    folder: str | Sequence[str],
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
    shuffle = shuffle_examples(schema, config)
    augment = augmenter(config) if training else None
    label = schema.features[config.label]
    classes = label.num_classes if label.encoding == "int64" else None
    # Fixed parallelism and prefetch put the pipeline's memory at its steady size from the first batch; autotuning
    # grows its buffers and threads for minutes, so memory creeps with running time (see data.autotune).
    parallel = tf.data.AUTOTUNE if config.autotune else (os.cpu_count() or 1)
    # Small records pass the parallel interleave in blocks: its cost is per element, and a 256-byte record would
    # pay it 256 times over. Large records go one by one, which keeps the interleave's buffers small.
    per_read = _RECORDS_PER_READ if record_bytes(schema) <= _SMALL_RECORD_BYTES else 1

    def read_file(path: tf.Tensor) -> tf.data.Dataset:
        file_records = tf.data.TFRecordDataset(path, compression_type=schema.compression or "")
        return file_records.batch(per_read) if per_read > 1 else file_records

    def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
        if len(files) < context.num_input_pipelines:
            raise UserError(
                f"'{folder}' has {len(files)} shard file(s) for {context.num_input_pipelines} input pipelines; "
                "expected at least one per pipeline. Write the data again with more shards."
            )
        mine = files[context.input_pipeline_id :: context.num_input_pipelines]
        dataset = tf.data.Dataset.from_tensor_slices(mine)
        if training and not config.cache:  # a cache is written in one file order and read back in it
            dataset = dataset.shuffle(len(mine), seed=epoch_seed)
        dataset = dataset.interleave(
            read_file,
            cycle_length=min(len(mine), _MAX_INTERLEAVE),
            num_parallel_calls=tf.data.AUTOTUNE if config.autotune else min(len(mine), _MAX_INTERLEAVE),
            deterministic=True,
        )
        if per_read > 1:
            dataset = dataset.unbatch()
        if config.cache:
            split = "train" if training else "eval"
            dataset = dataset.cache(
                f"{config.cache}-{split}-{context.input_pipeline_id}-of-{context.num_input_pipelines}"
            )
        if training and shuffle:
            dataset = dataset.shuffle(shuffle, seed=epoch_seed)
        dataset = dataset.batch(per_replica_batch_size, drop_remainder=training)
        if skip_batches:
            dataset = dataset.skip(skip_batches)  # before parsing: skipped batches are read, never decoded
        parse = parser(schema, features=config.features, label=config.label, image_size=config.image_size)
        dataset = dataset.map(parse, num_parallel_calls=parallel, deterministic=True)
        if classes:  # labels past the ones checked at start: an InvalidArgumentError starting "tfkit-data:"
            dataset = dataset.map(lambda x, y, w: (x, assert_labels(y, classes), w))
        if augment is not None:
            dataset = dataset.map(lambda x, y, w: (*augment(x, y), w), num_parallel_calls=parallel, deterministic=True)
        if not training:
            dataset = dataset.map(lambda x, y, w: pad(x, y, w, per_replica_batch_size))
        options = tf.data.Options()
        options.deterministic = config.deterministic
        options.autotune.enabled = config.autotune
        if config.autotune and config.ram_budget:
            options.autotune.ram_budget = config.ram_budget
        # Files are already split per pipeline above; stop tf.distribute from sharding a second time.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset.with_options(options).prefetch(tf.data.AUTOTUNE if config.autotune else _PREFETCH_BATCHES)

    return make
