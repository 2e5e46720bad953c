"""Writing any dataset once as sharded TFRecords, with a schema that lets any reader decode them without code.

A split is a folder holding ``SPLIT-00000-of-0000N.tfrecord`` shards and a ``schema.json``:

.. code-block:: json

    {"format": "tfkit.records/1", "split": "train", "compression": null, "records": 1437,
     "features": {"image": {"dtype": "uint8", "shape": [8, 8, 1], "encoding": "raw"},
                  "label": {"dtype": "int64", "shape": [], "encoding": "int64", "num_classes": 10}},
     "shards": [{"file": "train-00000-of-00008.tfrecord", "records": 180, "bytes": 20340}, ...]}

Encodings: ``raw`` (array bytes, not ``FloatList``, which is about 50x slower to write), ``int64`` (an Int64List),
``jpeg`` and ``png`` (images kept encoded; a dimension of -1 varies between images) and ``string`` (bytes as they
are). Shards are sized by a target in bytes.

The package answers one question per module, and imports nothing of training (tfkit.data reads what it writes):

- ``schema``: ``Feature``, ``Shard`` and ``Schema``; ``schema_file``: reading and writing ``schema.json``;
- ``example``: the ``tf.train.Example`` wire format; ``framing``: TFRecord framing, its CRCs and the scanner;
- ``writing``: a source or an iterator written as a split; ``verification``: every record of a split checked;
- ``staging``: an output folder replaced only by complete data (``records write --force``);
- ``sources``: what ``write`` converts, behind the ``Source`` protocol; ``images``: JPEG and PNG through Pillow;
- ``sample``: a split's first record, decoded without TensorFlow; ``files``: local paths opened without TensorFlow;
- ``infer``: the schema of TFRecords tfkit did not write, from their records; ``conformance``: records checked
  against a schema, one line per mismatch; ``foreign``: ``schema``, ``inspect`` and ``verify`` of such files;
- ``command``: ``python -m tfkit.records write|inspect|verify|schema``.
"""

from tfkit.records import sources, staging
from tfkit.records.example import encode, parse
from tfkit.records.framing import Problem, ShardWriter, normal_compression, open_stream, read_records, scan
from tfkit.records.sample import first_example
from tfkit.records.schema import (
    COMPRESSIONS,
    ENCODINGS,
    FORMAT,
    IMAGE_ENCODINGS,
    SCHEMA_FILE,
    Feature,
    Schema,
    Shard,
    shard_name,
)
from tfkit.records.schema_file import read_schema, write_schema
from tfkit.records.sources import Source, open_source
from tfkit.records.verification import verify
from tfkit.records.writing import DEFAULT_SHARD_BYTES, MIN_SHARDS, PARALLEL_ABOVE_BYTES, write, write_split

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_SHARD_BYTES",
    "ENCODINGS",
    "FORMAT",
    "IMAGE_ENCODINGS",
    "MIN_SHARDS",
    "PARALLEL_ABOVE_BYTES",
    "SCHEMA_FILE",
    "Feature",
    "Problem",
    "Schema",
    "Shard",
    "ShardWriter",
    "Source",
    "encode",
    "first_example",
    "normal_compression",
    "open_source",
    "open_stream",
    "parse",
    "read_records",
    "read_schema",
    "scan",
    "shard_name",
    "sources",
    "staging",
    "verify",
    "write",
    "write_schema",
    "write_split",
]
