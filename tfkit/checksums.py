"""A sha256 manifest beside each checkpoint, so a damaged checkpoint is found before it is read.

TensorFlow writes a checkpoint as ``ckpt-<step>.index`` and ``ckpt-<step>.data-*``; tfkit adds ``ckpt-<step>.sha256``
once they are complete, written atomically. A flipped byte, a truncated file or a missing shard then shows as a
mismatch, and the reader (``export``, a resume) refuses that checkpoint or falls back to an older one instead of
restoring damaged weights without a word. A checkpoint without a manifest (an older tfkit, or a kill between the save
and the manifest) is read as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tfkit import atomic

SUFFIX = ".sha256"
_CHUNK = 1 << 20


def files_of(prefix: str | os.PathLike[str]) -> list[Path]:
    """The files TensorFlow wrote for the checkpoint at ``prefix`` (``.../ckpt-120``), without the manifest."""
    base = Path(prefix)
    return sorted(path for path in base.parent.glob(f"{base.name}.*") if path.suffix != SUFFIX and path.is_file())


def write(prefix: str | os.PathLike[str]) -> None:
    """Writes the manifest of the checkpoint at ``prefix``: each file's name, size and sha256."""
    manifest = {path.name: {"bytes": path.stat().st_size, "sha256": _sha256(path)} for path in files_of(prefix)}
    atomic.write_text(f"{prefix}{SUFFIX}", json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def problem(prefix: str | os.PathLike[str]) -> str | None:
    """What is wrong with the checkpoint at ``prefix`` by its manifest, or None when it is intact (or has none)."""
    manifest_path = Path(f"{prefix}{SUFFIX}")
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        return f"its manifest {manifest_path.name} cannot be read ({error})"
    for name, expected in sorted(manifest.items()):
        path = manifest_path.parent / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"]:
            return f"{name} has {path.stat().st_size} bytes, {expected['bytes']} were written"
        if _sha256(path) != expected["sha256"]:
            return f"{name} does not match the sha256 written with it"
    return None


def remove_stale(folder: str | os.PathLike[str]) -> None:
    """Removes manifests whose checkpoint TensorFlow has deleted (``max_to_keep``)."""
    for manifest_path in Path(folder).glob(f"*{SUFFIX}"):
        if not Path(str(manifest_path)[: -len(SUFFIX)] + ".index").exists():
            manifest_path.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
