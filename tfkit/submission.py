"""Writing predictions as a competition wants them: a CSV of ids and predictions, or a ``.npy`` of raw outputs.

``--like sample_submission.csv`` takes the header and the order of the ids from a competition's sample file. Files
are written under a temporary name and renamed, so a reader never sees half a submission; an existing file is
replaced only when asked.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfkit import atomic
from tfkit.errors import UserError


def refuse_existing(path: Path, *, force: bool) -> None:
    """Refuses to replace ``path`` unless ``force``.

    Raises:
        UserError: ``path`` exists and ``force`` is off.
    """
    if path.exists() and not force:
        raise UserError(f"'{path}' already exists; expected a new file. Pass --force to replace it.")


def read_like(path: Path) -> tuple[list[str], list[str]]:
    """The header and the ids (first column) of a sample submission.

    Raises:
        UserError: The file is missing, empty, or has fewer than two columns.
    """
    if not path.is_file():
        raise UserError(f"--like '{path}' does not exist; expected a sample submission CSV. Check the path.")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        ids = [row[0] for row in reader if row]
    if not header or len(header) < 2:
        raise UserError(
            f"--like '{path}' has header {header}; expected an id column and at least one prediction column."
        )
    return header, ids


def order_by(ids: Sequence[str], wanted: Sequence[str], *, like: Path) -> np.ndarray:
    """The positions in ``ids`` of each of ``wanted``, for rows in the sample submission's order.

    Raises:
        UserError: An id of the sample file is not among the predicted records, or an id repeats.
    """
    position = {identifier: index for index, identifier in enumerate(ids)}
    if len(position) != len(ids):
        repeated = next(identifier for identifier in ids if ids.count(identifier) > 1)
        raise UserError(f"the id '{repeated}' occurs more than once in the data; expected each id once.")
    missing = [identifier for identifier in wanted if identifier not in position]
    if missing:
        raise UserError(
            f"--like '{like}' lists {len(missing)} id(s) the data does not hold, e.g. '{missing[0]}'; expected "
            "the ids of --data. Check --data and --id."
        )
    return np.array([position[identifier] for identifier in wanted], dtype=np.int64)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Writes a CSV under a temporary name and renames it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.writing(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_npy(path: Path, values: np.ndarray) -> None:
    """Writes an array under a temporary name and renames it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.writing(path, "wb") as handle:
        np.save(handle, values)
