"""Free disk space, and telling a full disk apart from other write errors (Python's and TensorFlow's)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

# TensorFlow reports ENOSPC as ResourceExhaustedError (the class of a device out of memory) with the OS's words.
_FULL_WORDS = ("No space left on device", "Disk quota exceeded")


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Free bytes on the filesystem that holds ``path``, or would hold it once created."""
    candidate = Path(path).absolute()
    while not candidate.exists() and candidate != candidate.parent:
        candidate = candidate.parent
    return shutil.disk_usage(candidate).free


def is_full(error: BaseException) -> bool:
    """Whether ``error`` (an OSError or a TensorFlow error) says that the disk is full."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return any(words in str(error) for words in _FULL_WORDS)
