"""Verifying a split: every record's framing and CRCs, and the record counts its schema promises."""

from __future__ import annotations

import os

from tfkit.records import files
from tfkit.records.framing import Problem, scan
from tfkit.records.schema import Schema
from tfkit.records.schema_file import read_schema


def verify(folder: str | os.PathLike[str]) -> tuple[Schema, list[Problem], list[int]]:
    """Verifies every shard of a split: framing, CRCs, and the record counts the schema promises.

    Returns:
        The schema, every problem found, and the good records counted per shard.

    Raises:
        UserError: The folder or its schema is missing or malformed.
    """
    schema = read_schema(folder)
    problems: list[Problem] = []
    counts = []
    for shard, path in zip(schema.shards, schema.files(folder), strict=True):
        if not files.exists(path):
            problems.append(Problem(shard.file, 0, 0, "missing: the schema lists it, the folder does not have it"))
            counts.append(0)
            continue
        good, found, _ = scan(path, schema.compression)
        problems += found
        counts.append(good)
        if not found and good != shard.records:
            problems.append(Problem(shard.file, good, 0, f"holds {good} records; the schema says {shard.records}"))
    return schema, problems, counts
