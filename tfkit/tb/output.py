"""Where a tb command writes: a new output, complete or absent, never an input and never a half-written file.

A folder output is built in a hidden sibling folder under temporary file names that lack ``tfevents``, so that a
command killed mid-write leaves nothing TensorBoard reads; the files get their names and the folder its place only
once everything is written. An existing output is replaced only with ``force``, and an output inside an input (or
an input inside it) is refused either way, before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tfkit import atomic
from tfkit.errors import UserError


def check_target(out: Path, *, inputs: Sequence[Path], force: bool) -> None:
    """Refuses an output that overlaps an input, or that exists (and is not an empty folder) without ``force``.

    Raises:
        UserError: Writing ``out`` would touch an input or replace something without ``force``.
    """
    target = out.resolve()
    for source in inputs:
        source = source.resolve()
        if target == source or source in target.parents or target in source.parents:
            raise UserError(
                f"--out received '{out}', which overlaps the input '{source}'; expected a new folder outside every "
                f"input, e.g. '{source.parent / (source.name + '_kept')}'."
            )
    empty_folder = out.is_dir() and not any(out.iterdir())
    if (out.exists() or out.is_symlink()) and not empty_folder and not force:
        raise UserError(
            f"--out received '{out}', which already exists; expected a new path, or pass --force to replace it."
        )


class FolderWriter:
    """Hands out files inside a staged output folder; each is written under a temporary name until the end."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self.pending: list[tuple[Path, Path]] = []

    def create(self, relative: Path) -> BinaryIO:
        """Opens a new file that will be ``relative`` inside the output once the command completes."""
        final = self.staging / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.parent / f".tfkit-partial-{len(self.pending)}"  # no 'tfevents': TensorBoard skips it
        self.pending.append((temporary, final))
        return open(temporary, "wb")


@contextmanager
def staged_folder(out: Path, *, inputs: Sequence[Path], force: bool) -> Iterator[FolderWriter]:
    """Builds the folder ``out`` beside it and puts it in place only when the ``with`` block completes.

    Raises:
        UserError: From ``check_target``, before anything is written.
    """
    check_target(out, inputs=inputs, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.clear_leftovers(out)
    with atomic.replacing(out) as staging:
        staging.mkdir()
        writer = FolderWriter(staging)
        yield writer
        for temporary, final in writer.pending:
            os.replace(temporary, final)


@contextmanager
def staged_file(out: Path, *, inputs: Sequence[Path], force: bool) -> Iterator[Path]:
    """Yields a temporary path beside ``out`` to write; it becomes ``out`` when the ``with`` block completes.

    Raises:
        UserError: From ``check_target``, before anything is written.
    """
    check_target(out, inputs=inputs, force=force)
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"--out received '{out}', which is a folder; expected a file name such as scalars.csv.")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.clear_leftovers(out)
    with atomic.replacing(out) as temporary:
        yield temporary
