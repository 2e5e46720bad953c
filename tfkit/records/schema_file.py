"""Reading and writing a split's ``schema.json``, locally or on ``gs://``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tfkit import atomic
from tfkit.errors import UserError
from tfkit.records import files
from tfkit.records.schema import ENCODINGS, SCHEMA_FILE, Schema


def read_schema(folder: str | os.PathLike[str]) -> Schema:
    """Reads a split's schema, locally or on ``gs://``.

    Raises:
        UserError: The folder or its schema is missing or malformed.
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, SCHEMA_FILE)
    if not files.exists(path):
        if not files.exists(folder):
            raise UserError(f"data folder '{folder}' does not exist; expected a folder of TFRecords. Check the path.")
        raise UserError(
            f"data folder '{folder}' has no {SCHEMA_FILE}; expected one written by tfkit.records (an interrupted "
            "write leaves none). Write the data again: python -m tfkit.records write SOURCE --out FOLDER."
        )
    return _parse(path)


def read_schema_file(path: str) -> Schema:
    """Reads a schema from a file of any name (one ``python -m tfkit.records schema --out`` wrote, maybe edited).

    Raises:
        UserError: The file is missing or malformed.
    """
    if not files.exists(path):
        raise UserError(f"schema file '{path}' does not exist; expected a schema .json. Check data.schema.")
    return _parse(path)


def write_schema(schema: Schema, folder: str | os.PathLike[str]) -> None:
    """Writes ``folder/schema.json`` under a temporary name and renames it, so a reader never sees half of it."""
    atomic.write_text(Path(folder) / SCHEMA_FILE, json.dumps(schema.to_json(), indent=2) + "\n")


def _parse(path: str) -> Schema:
    """The schema in the file ``path``, with every feature's encoding checked."""
    try:
        with files.open_file(path, "r") as handle:
            schema = Schema.from_json(json.loads(handle.read()))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UserError(f"schema '{path}' is malformed ({error}); expected a tfkit.records schema.") from None
    for name, feature in schema.features.items():
        if feature.encoding not in ENCODINGS:
            raise UserError(
                f"schema '{path}': feature '{name}' has encoding '{feature.encoding}'; expected one of {ENCODINGS}."
            )
    return schema
