"""A folder of images in class subfolders as a source, its JPEG or PNG files kept encoded."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tfkit.errors import UserError
from tfkit.records.images import image_shape
from tfkit.records.schema import Feature

SUFFIXES = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}


class ImageFolderSource:
    """A folder of images in class subfolders (``root/cat/001.jpg``); JPEG and PNG are kept encoded.

    Features: ``image`` (``jpeg`` or ``png``, its shape read from the headers; -1 where sizes vary) and ``label``
    (the class index, with the class names in the schema).
    """

    parallel = True

    def __init__(self, root: str) -> None:
        self.root = root
        classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
        if not classes:
            raise UserError(f"image folder '{root}' has no class subfolders; expected root/CLASS/IMAGE.jpg.")
        self.files: list[tuple[str, int]] = []
        for label, name in enumerate(classes):
            folder = Path(root) / name
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in SUFFIXES:
                    self.files.append((str(path), label))
        if not self.files:
            raise UserError(f"image folder '{root}' has no .jpg, .jpeg or .png files in its class subfolders.")
        kinds = {SUFFIXES[Path(path).suffix.lower()] for path, _ in self.files}
        if len(kinds) > 1:
            raise UserError(
                f"image folder '{root}' mixes JPEG and PNG files; expected one format. Convert them to one first."
            )
        shapes = {image_shape(path) for path, _ in self.files}
        channels = {shape[2] for shape in shapes}
        shape = tuple(
            sizes.pop() if len(sizes) == 1 else -1 for sizes in ({s[0] for s in shapes}, {s[1] for s in shapes})
        )
        self.features = {
            "image": Feature(dtype="uint8", shape=(*shape, max(channels)), encoding=kinds.pop()),
            "label": Feature(
                dtype="int64", shape=(), encoding="int64", num_classes=len(classes), classes=tuple(classes)
            ),
        }
        self.example_bytes = max(1, sum(os.path.getsize(path) for path, _ in self.files) // len(self.files))

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> str:
        """The source in words, for messages."""
        return f"image folder '{self.root}'"

    def read(self, indices: np.ndarray) -> Iterator[dict[str, Any]]:
        """Yields the examples at ``indices``: the file's bytes, unchanged, and the class index."""
        for index in indices.tolist():
            path, label = self.files[index]
            yield {"image": Path(path).read_bytes(), "label": np.int64(label)}
