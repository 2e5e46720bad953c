"""Streaming TFRecord splits to every replica through ``distribute_datasets_from_function``, with bounded memory.

Each input pipeline (one per worker host) reads its own subset of the shard files, chosen by the InputContext, so no
record is read twice in an epoch. Then, in order:

1. a shuffle of the pipeline's files, keyed by the seed and the epoch;
2. a parallel, deterministic interleave of their records (optionally cached to a file, ``data.cache``);
3. a shuffle of the serialized records in blocks of ``data.shuffle_buffer`` (bounded in bytes too), each block
   permuted by a stateless op keyed by the seed, the epoch and the block;
4. batch, then parse: ``parse_example`` on whole batches, far cheaper than per record;
5. decode by the schema (raw arrays, int64 lists, JPEG/PNG, strings), with static shapes;
6. training only: the presets of ``data.augmentations`` (tfkit.data.presets), then the user's augment function,
   called with a seed made from the run's seed, the epoch and the batch's index (see tfkit.data.augment), then
   ``mixup`` and ``cutmix``; then prefetch.

Parallelism is fixed by default: the interleave reads as many files at once as it cycles through (up to 8), parsing
uses every CPU core, and 2 batches are prefetched, so memory is at its steady size from the first batch.
``data.autotune: true`` lets tf.data tune these within ``data.ram_budget``; it can be faster on some hosts, and its
buffers grow for minutes, so memory then creeps with running time.

Training batches are static (``drop_remainder=True``). Eval and predict read every record once in file order; their
batches are padded to a static shape, and every pipeline to the same whole number of steps (``eval_steps``), with a
zero weight on the padding, so eval sees every record once and gives the same metrics on any number of replicas.
Instead of ``repeat()``, each epoch gets a fresh dataset whose order is a function of the seed and the epoch alone:
that is what lets a resumed run rebuild the exact position from a count.

Host memory is bounded by the shuffle buffer (``data.shuffle_buffer`` examples, at most ``data.shuffle_buffer_bytes``),
the interleave's open files (at most 8 read buffers), the parse stage (one batch per core) and the prefetch depth;
never by the size of the data.

Corrupt records: by default a ``DataLossError`` stops the run (tfkit.train names the shard). With
``data.skip_corrupt``, ``load_schema`` scans every shard once at start; a shard with bad records is read from a
repaired copy holding only its good ones, and the bad ones are counted and reported.
"""

from tfkit.data.decode import Batch, decode, parse_spec
from tfkit.data.pipeline import (
    EPOCHS_PER_ITERATOR,
    dataset_fn,
    eval_steps,
    pipeline_records,
    record_bytes,
    shuffle_examples,
)
from tfkit.data.splits import check_features, csv_split, inferred_schema_path, keep_inferred, load_schema

__all__ = [
    "EPOCHS_PER_ITERATOR",
    "Batch",
    "check_features",
    "csv_split",
    "dataset_fn",
    "decode",
    "eval_steps",
    "inferred_schema_path",
    "keep_inferred",
    "load_schema",
    "parse_spec",
    "pipeline_records",
    "record_bytes",
    "shuffle_examples",
]
