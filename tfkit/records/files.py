"""Opening a split's files: plain ``open()`` for local paths, TensorFlow's file systems only for remote ones.

Reading and checking local data never imports TensorFlow, so ``python -m tfkit.records inspect|verify`` start in a
fraction of a second. A remote path (``gs://``) needs ``tf.io.gfile``, and loads TensorFlow then.
"""

from __future__ import annotations

import os
from typing import IO, Any


def is_remote(path: str) -> bool:
    """Whether ``path`` names a remote file system (``gs://``, ``s3://``) rather than a local file."""
    return "://" in path


def open_file(path: str, mode: str, *, buffering: int = -1) -> IO[Any]:
    """Opens a file, local or remote, in a binary or text ``mode``; use it as a context manager."""
    if is_remote(path):
        return _gfile().GFile(path, mode)
    return open(path, mode, buffering=buffering)


def exists(path: str) -> bool:
    """Whether a file or folder exists, locally or remotely."""
    if is_remote(path):
        return bool(_gfile().exists(path))
    return os.path.exists(path)


def _gfile() -> Any:
    import tensorflow as tf  # only remote paths need TensorFlow; see the module's doc

    return tf.io.gfile
