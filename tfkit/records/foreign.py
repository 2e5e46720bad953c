"""TFRecord files tfkit did not write, for ``python -m tfkit.records schema|inspect|verify``.

Their schema comes from a schema file (``--schema``, one ``schema`` wrote and a person maybe edited) or is inferred
from the records (tfkit.records.infer). A mismatch between the schema and the data is one line naming the file, the
record and the fix (tfkit.records.conformance).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

from tfkit import atomic
from tfkit.errors import UserError
from tfkit.records import conformance, infer
from tfkit.records.example import parse
from tfkit.records.framing import Problem, read_records, scan
from tfkit.records.schema import Schema, Shard
from tfkit.records.schema_file import read_schema_file


def schema_of(locations: Sequence[str], *, schema_file: str | None = None) -> Schema:
    """The schema of foreign record files: ``schema_file``'s shards that the locations match, or one inferred.

    Shard paths come back as the files' own paths.

    Raises:
        UserError: No files, a file the schema file does not list, or a schema that does not match the first records.
    """
    paths = infer.expand(locations)
    if schema_file is None:
        return infer.infer_schema(paths)
    declared = read_schema_file(schema_file)
    base = os.path.dirname(os.path.abspath(schema_file))
    known = {os.path.normpath(os.path.join(base, shard.file)): shard for shard in declared.shards}
    shards = []
    for path in paths:
        shard = known.get(os.path.normpath(os.path.abspath(path)))
        if shard is None:
            raise UserError(
                f"'{path}' is not a shard of the schema '{schema_file}'; expected only its files. Narrow the glob, "
                "or write the schema again: python -m tfkit.records schema GLOB --out FILE."
            )
        shards.append(dataclasses.replace(shard, file=path))
    schema = dataclasses.replace(declared, shards=tuple(shards), records=sum(shard.records for shard in shards))
    conformance.check_sample(schema, "")
    return schema


def verify_files(
    locations: Sequence[str], *, schema_file: str | None = None
) -> tuple[Schema, list[Problem], list[int]]:
    """Reads every record of foreign files: framing and CRCs, counts, and each record against the schema.

    Returns:
        The schema, every framing problem found, and the good records counted per file.

    Raises:
        UserError: The first record (or count) that does not match the schema, naming the file, the record and the
            fix.
    """
    paths = infer.expand(locations)
    if schema_file is None:
        features, compression = infer.infer_features(paths)
        shards = tuple(Shard(file=path, records=0) for path in paths)
        schema = Schema(split="data", features=features, shards=shards, records=0, compression=compression)
    else:
        schema = schema_of(locations, schema_file=schema_file)
    problems: list[Problem] = []
    counts = []
    for shard in schema.shards:
        good, found, _ = scan(shard.file, schema.compression)
        problems += found
        counts.append(good)
        if found:
            continue  # the records after a broken one cannot be read in order; the problem is listed
        for record, serialized in enumerate(read_records(shard.file, schema.compression)):
            conformance.check_record(parse(serialized), schema, file=shard.file, record=record)
        if schema_file is not None and good != shard.records:
            raise UserError(
                f"{shard.file}: holds {good} records; the schema '{schema_file}' says {shard.records}. Set its "
                f'"records" to {good} there, or write the schema again (python -m tfkit.records schema).'
            )
    if schema_file is None:
        counted = zip(schema.shards, counts, strict=True)
        shards = tuple(dataclasses.replace(shard, records=count) for shard, count in counted)
        schema = dataclasses.replace(schema, shards=shards, records=sum(counts))
    return schema, problems, counts


def write_inferred(
    locations: Sequence[str],
    out: str,
    *,
    split: str = "train",
    label: str | None = None,
    count: bool = True,
    force: bool = False,
) -> Schema:
    """Infers the schema of foreign record files and writes it to ``out`` for a person to read and edit.

    Shard paths under ``out``'s folder are written relative to it, the others absolute, so the schema and the data
    can move together.

    Raises:
        UserError: ``out`` exists (without ``force``), or the files cannot be read as TFRecords.
    """
    target = Path(out)
    if target.exists() and not force:
        raise UserError(f"--out '{out}' exists; expected a new file. Add --force to replace it.")
    if not target.parent.is_dir():
        raise UserError(f"--out '{out}': folder '{target.parent}' does not exist; expected an existing folder.")
    paths = [os.path.abspath(path) for path in infer.expand(locations)]
    schema = infer.infer_schema(paths, split=split, label=label, count=count)
    base = target.parent.resolve()
    shards = []
    for shard in schema.shards:
        inside = Path(shard.file).resolve().is_relative_to(base)
        shards.append(dataclasses.replace(shard, file=os.path.relpath(shard.file, base) if inside else shard.file))
    written = dataclasses.replace(schema, shards=tuple(shards))
    atomic.write_text(target, json.dumps(written.to_json(), indent=2) + "\n")
    return written
