"""Writing a file or a folder so that a reader, or a kill at any moment, sees the old one or the new one, never half.

Every file tfkit writes goes through here: the content goes to a hidden temporary sibling (same folder, so the same
filesystem), is flushed to disk, and is renamed over the target in one step. A failed write (a full disk) removes
its temporary file and leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path


def temporary_sibling(path: str | os.PathLike[str]) -> Path:
    """A hidden name beside ``path`` for writing it: same folder, so the final rename is atomic."""
    target = Path(path)
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Writes ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode())


def write_bytes(path: str | os.PathLike[str], content: bytes) -> None:
    """Writes ``content`` to ``path`` atomically; on failure the temporary file goes and ``path`` is unchanged."""
    target = Path(path)
    temporary = temporary_sibling(target)
    try:
        with temporary.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary sibling to write a file or a folder into; on success it replaces ``path``.

    The old output, a file or a folder, is moved aside only once the new one is complete, then deleted; if the
    block fails, the temporary output is removed and ``path`` is untouched.
    """
    target = Path(path)
    temporary = temporary_sibling(target)
    _remove(temporary)
    try:
        yield temporary
    except BaseException:
        _remove(temporary)
        raise
    if target.exists() and (target.is_dir() or temporary.is_dir()) and not target.is_symlink():
        # A folder cannot be renamed over a non-empty folder, nor over a file: swap, then delete the old one.
        aside = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, aside)
        os.replace(temporary, target)
        _remove(aside)
    else:
        os.replace(temporary, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
