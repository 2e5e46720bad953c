"""Writing a file or a folder so that a reader, or a kill at any moment, sees the old one or the new one, never half.

Every file tfkit writes goes through here: the content goes to a hidden temporary sibling (same folder, so the same
filesystem), is flushed to disk, and is renamed over the target in one step. A failed write (a full disk) removes
its temporary file and leaves the target as it was. A temporary name never contains ``tfevents``, so TensorBoard,
which reads every file whose name does, never reads half an event file.

What a killed writer leaves behind (its temporary sibling, or an old output it had moved aside for the moment of a
swap) is cleared, or put back, by ``clear_leftovers`` the next time the same output is written.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_TEMPORARY, _ASIDE = "tmp", "old"


def temporary_sibling(path: str | os.PathLike[str]) -> Path:
    """A hidden name beside ``path`` for writing it: same folder, so the final rename is atomic."""
    target = Path(path)
    return target.with_name(f".{_plain(target.name)}.{_TEMPORARY}-{os.getpid()}")


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Writes ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode())


def write_bytes(path: str | os.PathLike[str], content: bytes) -> None:
    """Writes ``content`` to ``path`` atomically; on failure the temporary file goes and ``path`` is unchanged."""
    with writing(path, "wb") as handle:
        handle.write(content)


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], mode: str = "w", *, newline: str | None = None) -> Iterator[IO[Any]]:
    """Yields an open file that becomes ``path`` when the block completes (flushed to disk, then renamed).

    Args:
        path: The file to write.
        mode: ``"w"`` for text, ``"wb"`` for bytes.
        newline: As for ``open``; ``""`` for the csv module.

    Yields:
        The open temporary file. If the block raises, it is removed and ``path`` is unchanged.
    """
    target = Path(path)
    temporary = temporary_sibling(target)
    try:
        with temporary.open(mode, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary sibling to write a file or a folder into; on success it replaces ``path``.

    For writers that need a path rather than an open file (``np.save``, a TFRecord writer, a folder). The old output,
    a file or a folder, is moved aside only once the new one is complete, then deleted; if the block fails, the
    temporary output is removed and ``path`` is untouched.
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
        # A folder cannot be renamed over a non-empty folder, nor over a file: swap, then delete the old one. A kill
        # between the two renames leaves the old output aside, and clear_leftovers puts it back.
        aside = target.with_name(f".{_plain(target.name)}.{_ASIDE}-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, aside)
        try:
            os.replace(temporary, target)
        except BaseException:
            os.replace(aside, target)
            _remove(temporary)
            raise
        _remove(aside)
    else:
        os.replace(temporary, target)


def place_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Puts a copy of the finished file ``source`` at ``target`` atomically: a hard link where it can, else a copy.

    Only for files nobody rewrites in place (TensorFlow never rewrites a checkpoint's files), since a hard link
    shares the bytes.
    """
    with replacing(target) as temporary:
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)


def clear_leftovers(path: str | os.PathLike[str]) -> None:
    """Removes what a killed earlier write of ``path`` left: its temporary sibling, or its set-aside old output.

    An old output set aside by a process killed between a swap's two renames goes back in place when ``path`` is
    gone. Leftovers of a writer that is still alive are not touched.
    """
    target = Path(path)
    prefix = f".{_plain(target.name)}."
    for leftover in target.parent.glob(f"{glob.escape(prefix)}*-*"):
        kind, _, rest = leftover.name[len(prefix) :].partition("-")
        pid = rest.partition("-")[0]
        if kind not in (_TEMPORARY, _ASIDE) or not pid.isdigit() or _alive(int(pid)):
            continue
        if kind == _ASIDE and not (target.exists() or target.is_symlink()):
            os.replace(leftover, target)
        else:
            _remove(leftover)


def _plain(name: str) -> str:
    """``name`` without ``tfevents``, so TensorBoard skips a temporary file."""
    return name.replace("tfevents", "events")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
