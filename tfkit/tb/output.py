"""Where a tb command writes: a new output, complete or absent, never an input and never a half-written file.

A folder output is built in a hidden sibling folder under temporary file names that lack ``tfevents``, so that a
command killed mid-write leaves nothing TensorBoard reads; the files get their names and the folder its place only
once everything is written. An existing output is replaced only with ``force``, and an output inside an input (or
an input inside it) is refused either way, before anything is written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tfkit.errors import UserError
from tfkit.tb.files import EVENTS_MARK


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
    staging = out.parent / _temporary_name(out.name)
    staging.mkdir()
    try:
        writer = FolderWriter(staging)
        yield writer
        for temporary, final in writer.pending:
            os.replace(temporary, final)
        _put_in_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    temporary = out.parent / _temporary_name(out.name)
    try:
        yield temporary
        if out.is_dir():
            out.rmdir()  # an empty folder of that name
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)


def _temporary_name(name: str) -> str:
    return f".{name.replace(EVENTS_MARK, 'events')}.tfkit-partial-{os.getpid()}"


def _put_in_place(staging: Path, out: Path) -> None:
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        os.replace(staging, out)  # renaming onto an empty folder is one atomic step
        return
    if not (out.exists() or out.is_symlink()):
        os.replace(staging, out)
        return
    # --force on an existing output: move it aside, put the new one in place, then delete the old one. The output
    # path is without a complete folder only between two renames.
    old = out.parent / f".{out.name}.tfkit-replaced-{os.getpid()}"
    os.replace(out, old)
    os.replace(staging, out)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()
