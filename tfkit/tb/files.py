"""Which files TensorBoard reads, and their records as raw bytes: TFRecord framing read and written by hand.

TensorBoard reads every file whose name contains ``tfevents``, in every folder under the logdir; each folder with
such files is a run, and a run's files are read in name order as one stream. A record is framed as a little-endian
uint64 length, the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data. Records are handed
on as the bytes that were written, so a copy is the writer's own encoding, not a re-serialisation.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import google_crc32c

from tfkit.errors import UserError

EVENTS_MARK = "tfevents"  # TensorBoard's test: the mark anywhere in the file's name
_HEADER = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8


def is_event_file(name: str) -> bool:
    """Whether TensorBoard reads a file of this name as an event file."""
    return EVENTS_MARK in name


def event_files(logdir: str | os.PathLike[str]) -> list[Path]:
    """The event files under ``logdir``, in every run folder, in the order TensorBoard reads them.

    Raises:
        UserError: The folder is missing or holds no event file.
    """
    root = Path(logdir)
    if not root.is_dir():
        raise UserError(f"log folder '{root}' does not exist; expected a TensorBoard logdir.")
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        files += [Path(folder) / name for name in sorted(names) if is_event_file(name)]
    files = [path for path in files if path.is_file()]
    if not files:
        raise UserError(
            f"log folder '{root}' holds no event file (a name containing '{EVENTS_MARK}'); "
            "expected a TensorBoard logdir."
        )
    return sorted(files, key=lambda path: (path.parent.relative_to(root).parts, path.name))


def run_name(logdir: str | os.PathLike[str], path: Path) -> str:
    """The run an event file belongs to, as TensorBoard names it: its folder under the logdir, ``.`` for the top."""
    return path.parent.relative_to(Path(logdir)).as_posix()


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def read_records(path: Path) -> Iterator[bytes]:
    """Yields each record's data in ``path``, as written.

    A record cut short at the end of the file (a writer still running, or killed) ends the file, as it does for
    TensorBoard.

    Raises:
        UserError: A record's checksum does not match: the file is damaged.
    """
    with open(path, "rb") as handle:
        offset = 0
        while True:
            header = handle.read(_HEADER.size + _CRC.size)
            if len(header) < _HEADER.size + _CRC.size:
                return
            (length,) = _HEADER.unpack_from(header)
            (length_crc,) = _CRC.unpack_from(header, _HEADER.size)
            if length_crc != masked_crc(header[: _HEADER.size]):
                raise _damaged(path, offset, "its length")
            body = handle.read(length + _CRC.size)
            if len(body) < length + _CRC.size:
                return
            data = body[:length]
            if _CRC.unpack_from(body, length)[0] != masked_crc(data):
                raise _damaged(path, offset, "its data")
            yield data
            offset += len(header) + len(body)


def frame(data: bytes) -> bytes:
    """``data`` framed as one TFRecord record."""
    header = _HEADER.pack(len(data))
    return header + _CRC.pack(masked_crc(header)) + data + _CRC.pack(masked_crc(data))


def _damaged(path: Path, offset: int, part: str) -> UserError:
    return UserError(
        f"event file '{path}' is damaged: the record at byte {offset} fails the checksum of {part}; expected intact "
        "TFRecord records. Move the file out of the logdir, or truncate it at that byte, and run again."
    )
