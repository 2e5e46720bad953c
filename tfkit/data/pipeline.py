"""The input pipeline: one ``tf.data`` dataset per input pipeline, for ``distribute_datasets_from_function``."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import tensorflow as tf

from tfkit.config import DataConfig
from tfkit.data import presets
from tfkit.data.augment import augment_seed, augmenter
from tfkit.data.checks import assert_labels, assert_weights
from tfkit.data.decode import Batch, decodes_images, pad, parser
from tfkit.errors import UserError
from tfkit.records import Schema

_MAX_INTERLEAVE = 8
_PREFETCH_BATCHES = 2  # per input pipeline, without data.autotune
_RECORDS_PER_READ = 256
_SMALL_RECORD_BYTES = 4096
EPOCHS_PER_ITERATOR = 1000  # epochs one training iterator serves


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


def pipeline_records(schema: Schema, *, pipelines: int) -> list[int]:
    """Records each of ``pipelines`` input pipelines reads: pipeline ``i`` reads every ``pipelines``-th shard."""
    return [sum(shard.records for shard in schema.shards[index::pipelines]) for index in range(pipelines)]


def eval_steps(schema: Schema, *, per_replica_batch_size: int, pipelines: int, replicas: int) -> int:
    """Distributed steps that show every record of an eval or predict split once.

    Every pipeline yields this many steps' worth of batches (``replicas // pipelines`` per step): its records, the
    last batch padded, then whole batches of padding, all with weight 0. A partial last step would be dropped by
    the distributed iterator, and pipelines that ended at different steps would leave collectives waiting.
    """
    per_pipeline = max(1, replicas // pipelines)
    batches = [math.ceil(count / per_replica_batch_size) for count in pipeline_records(schema, pipelines=pipelines)]
    return max(1, max(math.ceil(count / per_pipeline) for count in batches))


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
    labeled: bool = True,
    until_epoch: int | None = None,
    batches_per_epoch: int | None = None,
    num_classes: int | None = None,
    weight_feature: str | None = None,
) -> Callable[[tf.distribute.InputContext], tf.data.Dataset]:
    """Returns the function that ``strategy.distribute_datasets_from_function`` calls once per input pipeline.

    Args:
        folder: The split's folder.
        schema: Its schema.
        config: The ``data`` section.
        per_replica_batch_size: Examples in each batch the pipeline yields (one replica's micro-batch).
        training: Shuffle, augment and drop the remainder (training), or read every record once in file order,
            padded to a whole number of steps with zero-weight examples (eval and predict; see ``eval_steps``).
        seed: The run's seed.
        epoch: The epoch whose order to produce; with ``seed`` it fixes the order.
        skip_batches: Batches of this pipeline to skip, to resume mid-epoch at exactly the next batch.
        labeled: Whether to read ``data.label``; without it (a test split) the labels are zeros.
        until_epoch: Training only: yield epochs ``epoch`` to ``until_epoch - 1`` one after another, each exactly
            ``batches_per_epoch`` batches long, from one dataset (at most ``EPOCHS_PER_ITERATOR``). One iterator
            then serves those epochs: tearing a distributed iterator down and building the next at each epoch
            boundary costs seconds to minutes on many replicas (its prefetch threads and per-device buffers), all
            of it idle.
        batches_per_epoch: The batches of this pipeline one epoch uses (steps x per-replica batches per step).
        num_classes: ``model.num_classes``, the depth of the soft labels ``mixup`` and ``cutmix`` make; None takes
            the label's classes from the schema.
        weight_feature: ``task.weight_feature``: the feature whose values are the examples' weights (checked in
            the graph to be finite and 0 or more), never given to the model; None weighs every example 1. Eval
            padding weighs 0 either way: it is added after the weights are read.

    Returns:
        A function from an InputContext to a dataset of ``(features, labels, weights)`` batches.
    """
    files = schema.files(folder)
    shuffle = shuffle_examples(schema, config)
    augment = augmenter(config) if training else None
    label = schema.features.get(config.label) if labeled else None
    classes = label.num_classes if label is not None and label.encoding == "int64" else None
    augmentations = presets.build(config, num_classes=num_classes or classes) if training else None
    # Fixed parallelism and prefetch put the pipeline's memory at its steady size from the first batch; autotuning
    # grows its buffers and threads for minutes, so memory creeps with running time (see data.autotune).
    parallel = tf.data.AUTOTUNE if config.autotune else (os.cpu_count() or 1)
    # Small records pass the parallel interleave in blocks: its cost is per element, and a 256-byte record would
    # pay it 256 times over. Large records go one by one, which keeps the interleave's buffers small.
    per_read = _RECORDS_PER_READ if record_bytes(schema) <= _SMALL_RECORD_BYTES else 1
    per_record = decodes_images(schema, (config.features, config.label if labeled else None, weight_feature))

    checks = bool(classes) or weight_feature is not None
    parse = parser(
        schema,
        features=config.features,
        label=config.label if labeled else None,
        weight=weight_feature,
        image_size=config.image_size,
        per_record=per_record,
    )

    def check(x: tf.Tensor, y: tf.Tensor, weights: tf.Tensor) -> Batch:
        # Labels past the ones checked at start, and weights: an InvalidArgumentError starting "tfkit-data:". Records
        # parsed one by one are checked once a batch: a dozen ops per record cost a few percent of the images/s.
        if classes:
            y = assert_labels(y, classes)
        if weight_feature is not None:  # before mixing and padding
            weights = assert_weights(weights, weight_feature)
        return x, y, weights

    def read_file(path: tf.Tensor) -> tf.data.Dataset:
        file_records = tf.data.TFRecordDataset(path, compression_type=schema.compression or "")
        return file_records.batch(per_read) if per_read > 1 else file_records

    def one_epoch(context: tf.distribute.InputContext, epoch: tf.Tensor, skip: tf.Tensor) -> tf.data.Dataset:
        # The order is a function of the seed and the epoch alone. The epoch is a tensor (epochs are chained in one
        # dataset), so the shuffles are stateless ops keyed by it: Dataset.shuffle cannot take a tensor seed.
        epoch_seed = (tf.constant(seed, tf.int64) * 1_000_003 + epoch) % (2**31 - 1)
        pipeline_id, pipelines = context.input_pipeline_id, context.num_input_pipelines
        mine = files[pipeline_id::pipelines]
        names = tf.constant(mine)
        if training and not config.cache:  # a cache is written in one file order and read back in it
            names = tf.random.experimental.stateless_shuffle(
                names, seed=tf.stack([epoch_seed, tf.constant(-1, tf.int64)])
            )
        if training:
            dataset = tf.data.Dataset.from_tensor_slices(names).interleave(
                read_file,
                cycle_length=min(len(mine), _MAX_INTERLEAVE),
                num_parallel_calls=tf.data.AUTOTUNE if config.autotune else min(len(mine), _MAX_INTERLEAVE),
                deterministic=True,
            )
            if per_read > 1:
                dataset = dataset.unbatch()
        else:
            # File order, record by record: predictions come out in the order of the files, which a submission
            # (and its id column) expects. Decoding, not reading, is the cost, and it stays parallel below. One
            # reader over the list needs no traced function, as a flat_map would on every eval and predict call.
            dataset = tf.data.TFRecordDataset(names, compression_type=schema.compression or "")
        if config.cache:
            split = "train" if training else "eval"
            dataset = dataset.cache(
                f"{config.cache}-{split}-{context.input_pipeline_id}-of-{context.num_input_pipelines}"
            )
        if training and shuffle:
            # A block shuffle: each block of ``shuffle`` records is permuted by a stateless op keyed by the epoch and
            # the block, in the memory a shuffle buffer of that size takes.
            dataset = dataset.batch(shuffle).enumerate()
            dataset = dataset.map(
                lambda block, records: tf.random.experimental.stateless_shuffle(
                    records, seed=tf.stack([epoch_seed, block])
                )
            ).unbatch()

        def checked(serialized: tf.Tensor) -> Batch:
            return check(*parse(serialized))

        if not training:
            # One parallel map does it all: eval and predict build this pipeline on every call, and each map costs
            # a trace. Images are decoded record by record, then padded with zero-weight examples and batched.
            def finish(serialized: tf.Tensor) -> Batch:
                return pad(*checked(serialized), per_replica_batch_size)

            if not per_record:
                dataset = dataset.batch(per_replica_batch_size).map(
                    tf.autograph.experimental.do_not_convert(finish), num_parallel_calls=parallel, deterministic=True
                )
                return _pad_to_steps(dataset, schema, per_replica_batch_size=per_replica_batch_size, context=context)
            dataset = dataset.map(
                tf.autograph.experimental.do_not_convert(parse), num_parallel_calls=parallel, deterministic=True
            )
            dataset = _pad_to_steps(
                dataset, schema, per_replica_batch_size=per_replica_batch_size, context=context, examples=True
            )
            if checks:  # per batch (see check); the padding's zero labels and weights pass
                dataset = dataset.map(
                    tf.autograph.experimental.do_not_convert(check), num_parallel_calls=parallel, deterministic=True
                )
            return dataset
        transforms = augment is not None or augmentations is not None
        if per_record:
            # Skipped batches are read, never decoded; the batch's index is counted before the skip (see below).
            dataset = dataset.skip(skip * per_replica_batch_size)
            dataset = dataset.map(parse, num_parallel_calls=parallel, deterministic=True)
            dataset = dataset.batch(per_replica_batch_size, drop_remainder=True)
            if transforms:  # augment_batch checks the batch first
                dataset = dataset.enumerate(start=skip)
            elif checks:
                dataset = dataset.map(check, num_parallel_calls=parallel, deterministic=True)
        else:
            # The batch's index in the epoch, counted before any skip: with the seed and the epoch it seeds the
            # augmentation, so a resumed run augments batch k exactly as an uninterrupted one does.
            dataset = dataset.batch(per_replica_batch_size, drop_remainder=True).enumerate()
            dataset = dataset.skip(skip)  # before parsing: skipped batches are read, never decoded

            # The checks and dropping the index happen in the parallel map: as sequential stages of their own after
            # it, they cost a quarter of the images/s of benchmarks/images.py, although they only pass tensors on.
            def parse_batch(index: tf.Tensor, serialized: tf.Tensor) -> tuple[tf.Tensor, Batch] | Batch:
                return (index, checked(serialized)) if transforms else checked(serialized)

            dataset = dataset.map(parse_batch, num_parallel_calls=parallel, deterministic=True)
        if transforms:
            # The epoch's seed goes with each batch to the augmentation, which runs outside the epochs' flat_map.
            return tf.data.Dataset.zip((tf.data.Dataset.from_tensors(epoch_seed).repeat(), dataset))
        return dataset

    def augment_batch(epoch_seed: tf.Tensor, index: tf.Tensor, batch: Batch, *, pipeline: int, pipelines: int) -> Batch:
        # The presets that keep labels, then data.augment (whose labels are checked again), then mixup and cutmix
        # last, since they turn class ids into soft labels. Batches parsed record by record are checked here first.
        x, y, weights = check(*batch) if per_record else batch
        seed = augment_seed(epoch_seed, batch=index, pipeline=pipeline, pipelines=pipelines)
        if augmentations is not None:
            x, y = augmentations.transform(x, y, seed)
        if augment is not None:
            x, y = augment(x, y, seed)
            if classes:
                y = assert_labels(y, classes)
        if augmentations is not None:
            x, y, weights = augmentations.mix(x, y, weights, seed)
        return x, y, weights

    def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
        if len(files) < context.num_input_pipelines:
            raise UserError(
                f"'{folder}' has {len(files)} shard file(s) for {context.num_input_pipelines} input pipelines; "
                "expected at least one per pipeline. Write the data again with more shards."
            )
        if training:
            first = tf.constant(epoch, tf.int64)

            def epoch_batches(current: tf.Tensor) -> tf.data.Dataset:
                skip = tf.where(current == first, tf.constant(skip_batches, tf.int64), tf.constant(0, tf.int64))
                batches = one_epoch(context, current, skip)
                return batches if batches_per_epoch is None else batches.take(batches_per_epoch - skip)

            dataset = tf.data.Dataset.range(epoch, until_epoch or epoch + 1).flat_map(epoch_batches)
            if augment is not None or augmentations is not None:
                # Outside the flat_map: a map inside the datasets it builds per epoch ran at two thirds of the
                # images/s of the same map outside it (benchmarks/images.py).
                pipeline, pipelines = context.input_pipeline_id, context.num_input_pipelines
                dataset = dataset.map(
                    lambda epoch_seed, indexed: augment_batch(
                        epoch_seed, *indexed, pipeline=pipeline, pipelines=pipelines
                    ),
                    num_parallel_calls=parallel,
                    deterministic=True,
                )
        else:
            dataset = one_epoch(context, tf.constant(epoch, tf.int64), tf.constant(0, tf.int64))
        options = tf.data.Options()
        options.deterministic = config.deterministic
        options.autotune.enabled = config.autotune
        if config.autotune and config.ram_budget:
            options.autotune.ram_budget = config.ram_budget
        # Files are already split per pipeline above; stop tf.distribute from sharding a second time.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset.with_options(options).prefetch(tf.data.AUTOTUNE if config.autotune else _PREFETCH_BATCHES)

    return make


def _pad_to_steps(
    dataset: tf.data.Dataset,
    schema: Schema,
    *,
    per_replica_batch_size: int,
    context: tf.distribute.InputContext,
    examples: bool = False,
) -> tf.data.Dataset:
    """Appends zero-weight padding until this pipeline yields exactly ``eval_steps`` steps' worth of batches.

    ``dataset`` yields batches, or single examples with ``examples`` (which are then batched here, every batch
    whole: a static shape, and no padding map over every batch).
    """
    pipelines = context.num_input_pipelines
    steps = eval_steps(
        schema,
        per_replica_batch_size=per_replica_batch_size,
        pipelines=pipelines,
        replicas=context.num_replicas_in_sync,
    )
    wanted = steps * max(1, context.num_replicas_in_sync // pipelines)
    records = pipeline_records(schema, pipelines=pipelines)[context.input_pipeline_id]
    missing = (
        wanted * per_replica_batch_size - records if examples else wanted - math.ceil(records / per_replica_batch_size)
    )
    if missing > 0:
        # Weight 0: counts for nothing. Repeating one constant element needs no traced function, as a map would.
        zeros = tuple(tf.zeros(part.shape, part.dtype) for part in dataset.element_spec)
        dataset = dataset.concatenate(tf.data.Dataset.from_tensors(zeros).repeat(missing))
    return dataset.batch(per_replica_batch_size, drop_remainder=True) if examples else dataset
