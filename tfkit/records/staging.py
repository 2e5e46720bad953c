"""Replacing an output folder safely: the new data is written beside it and renamed over it only when complete.

A failed, empty or interrupted write leaves the old folder byte for byte as it was. What a killed write leaves (its
hidden staged folder, or old data set aside during the swap) is cleared, or put back, by the next write.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tfkit import atomic
from tfkit.errors import UserError
from tfkit.records.schema import SCHEMA_FILE


@contextlib.contextmanager
def staged_folder(out_dir: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """A temporary sibling of ``out_dir`` to write into, renamed over ``out_dir`` only when the write is complete.

    The new data must leave a ``schema.json`` (written last) in the staged folder or in each of its subfolders; if
    the body raises, or leaves nothing complete, the staged folder is removed and ``out_dir`` is untouched. An
    existing ``out_dir`` is moved aside only for the moment of the swap, and removed after it.

    Args:
        out_dir: The output folder: new, empty, or (with ``force``) an existing one to replace.
        force: Replace an ``out_dir`` that already holds files.

    Yields:
        The staged folder (created; on the same file system as ``out_dir``, so the rename is atomic).

    Raises:
        UserError: ``out_dir`` is a file, or holds files without ``force``, or its parent cannot be created.
    """
    out = Path(os.path.abspath(os.fspath(out_dir)))
    if out.exists() and not out.is_dir():
        raise UserError(
            f"output '{out_dir}' is a file; expected a folder to write the split into. Choose another --out."
        )
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(
            f"output folder '{out_dir}' already holds files; expected a new or empty folder. Add --force to replace "
            "it (the old data stays until the new write is complete), or choose another --out."
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"cannot create the parent of output folder '{out_dir}' ({error.strerror}); expected a writable folder."
        ) from None
    atomic.clear_leftovers(out)
    with atomic.replacing(out) as staging:
        staging.mkdir()
        yield staging
        if not any(staging.glob(f"**/{SCHEMA_FILE}")):
            raise UserError(f"the write into '{out_dir}' produced no complete split; the old data is left as it was.")
