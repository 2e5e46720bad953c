"""TFRecord framing: each record as its length, the length's masked CRC32C, the data and the data's masked CRC32C.

Written and read here with plain file I/O and a C CRC, optionally through GZIP or ZLIB compression: no TensorFlow op
per record, and no TensorFlow at all for local files (see tfkit.records.files).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import os
import struct
import zlib
from collections.abc import Iterator
from typing import Any, Protocol

import google_crc32c

from tfkit.errors import UserError
from tfkit.records import files
from tfkit.records.schema import COMPRESSIONS

_HEADER = 12  # the length (8 bytes) and its CRC (4)
_FOOTER = 4  # the data's CRC


class Readable(Protocol):
    """A binary stream: a file, or a decompressing reader of one."""

    def read(self, size: int, /) -> bytes:
        """Reads up to ``size`` bytes; fewer only at the end."""
        ...


@dataclasses.dataclass(frozen=True)
class Problem:
    """A corrupt or truncated record: the file, the record's index in it, its byte offset, and what is wrong."""

    file: str
    record: int
    offset: int
    what: str

    def describe(self) -> str:
        """``train-00003-of-00008.tfrecord: record 17 (byte 5168): data CRC mismatch``."""
        return f"{self.file}: record {self.record} (byte {self.offset}): {self.what}"


def normal_compression(compression: str | None) -> str | None:
    """``GZIP``, ``ZLIB`` or None from what a user wrote (``gzip``, ``none``, ``""``).

    Raises:
        UserError: A compression TFRecord readers do not know.
    """
    if compression is None or str(compression).lower() in ("", "none"):
        return None
    upper = str(compression).upper()
    if upper not in COMPRESSIONS:
        raise UserError(f"compression {compression!r} is not known; expected gzip, zlib or none.")
    return upper


def masked_crc(data: bytes | memoryview) -> int:
    """TFRecord's CRC of ``data``: CRC32C, rotated and offset so that a CRC of CRCs is not itself a CRC."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class ShardWriter:
    """Writes TFRecord framing, optionally compressed, to one file (local, or remote through ``tf.io.gfile``)."""

    def __init__(self, path: str, compression: str | None = None) -> None:
        self.handle = files.open_file(path, "wb", buffering=1 << 20)
        self.compressor = None
        if compression:
            self.compressor = zlib.compressobj(6, zlib.DEFLATED, 31 if compression == "GZIP" else 15)

    def write(self, record: bytes) -> None:
        """Appends one record."""
        header = struct.pack("<Q", len(record))
        frame = (header, struct.pack("<I", masked_crc(header)), record, struct.pack("<I", masked_crc(record)))
        if self.compressor is None:
            for piece in frame:
                self.handle.write(piece)
        else:
            for piece in frame:
                self.handle.write(self.compressor.compress(piece))

    def close(self) -> None:
        """Flushes and closes the file."""
        if self.compressor is not None:
            self.handle.write(self.compressor.flush())
            self.compressor = None
        self.handle.close()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def open_stream(path: str, compression: str | None) -> Iterator[Readable]:
    """A binary reader of a shard's decompressed bytes, local or remote; use it as a context manager."""
    with files.open_file(path, "rb") as raw:
        if compression == "GZIP":
            with gzip.GzipFile(fileobj=raw) as stream:
                yield stream
        elif compression == "ZLIB":
            yield _ZlibReader(raw)
        else:
            yield raw


def scan(path: str, compression: str | None = None) -> tuple[int, list[Problem], list[tuple[int, int]]]:
    """Reads every record of one shard and checks its framing, lengths and CRCs.

    A record whose data CRC fails is skipped and the scan goes on (its length is known). A record whose length is
    unreadable, or that ends early, ends the scan: nothing after it can be located.

    Returns:
        The number of good records, the problems, and the (offset, length) of every good record's data.
    """
    good: list[tuple[int, int]] = []
    problems: list[Problem] = []
    with open_stream(path, compression) as stream:
        for item in _frames(stream, os.path.basename(path)):
            if isinstance(item, Problem):
                problems.append(item)
            else:
                good.append((item[0], len(item[1])))
    return len(good), problems, good


def read_records(path: str, compression: str | None = None) -> Iterator[bytes]:
    """Yields the data of each record of one shard, in order, its CRCs checked.

    Raises:
        UserError: At the first corrupt or truncated record, naming it.
    """
    with open_stream(path, compression) as stream:
        for item in _frames(stream, os.path.basename(path)):
            if isinstance(item, Problem):
                raise UserError(
                    f"corrupt data: {item.describe()}; expected intact TFRecords. "
                    f"python -m tfkit.records verify {os.path.dirname(path) or '.'} lists every problem."
                )
            yield item[1]


def _frames(stream: Readable, name: str) -> Iterator[tuple[int, bytes] | Problem]:
    """Yields ``(offset of the data, data)`` for each good record and a ``Problem`` for each bad one."""
    index, offset = 0, 0
    while True:
        try:
            header = stream.read(_HEADER)
        except (OSError, EOFError, zlib.error) as error:
            yield Problem(name, index, offset, f"the compressed stream is broken ({error})")
            return
        if not header:
            return
        if len(header) < _HEADER:
            yield Problem(name, index, offset, "truncated: the file ends inside a record's header")
            return
        (length,) = struct.unpack("<Q", header[:8])
        (length_crc,) = struct.unpack("<I", header[8:12])
        if masked_crc(header[:8]) != length_crc:
            yield Problem(name, index, offset, "the length's CRC does not match; nothing after it can be located")
            return
        try:
            body = stream.read(length + _FOOTER)
        except (OSError, EOFError, zlib.error) as error:
            yield Problem(name, index, offset, f"the compressed stream is broken ({error})")
            return
        if len(body) < length + _FOOTER:
            yield Problem(name, index, offset, f"truncated: {length + _FOOTER} bytes expected, {len(body)} left")
            return
        (data_crc,) = struct.unpack("<I", body[length:])
        if masked_crc(body[:length]) != data_crc:
            yield Problem(name, index, offset, "the data's CRC does not match (corrupt bytes)")
        else:
            yield offset + _HEADER, body[:length]
        index += 1
        offset += _HEADER + length + _FOOTER


class _ZlibReader:
    """A file-like reader of a zlib stream (TFRecord's ZLIB compression)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.inflater = zlib.decompressobj()
        self.buffer = b""

    def read(self, size: int, /) -> bytes:
        while len(self.buffer) < size:
            chunk = self.raw.read(1 << 20)
            if not chunk:
                self.buffer += self.inflater.flush()
                break
            self.buffer += self.inflater.decompress(chunk)
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out
