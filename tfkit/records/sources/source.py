"""What a source is (the ``Source`` protocol), and the choices every source makes the same way.

A source has a known length, its features (a ``Feature`` each) and ``read(indices)``, which yields one example dict
per index, for ascending indices. A source holds paths, never open files, so writer processes can each open it again;
nothing reads the whole dataset into memory (an ``.npz`` member is the exception: numpy cannot map it, so use
``.npy`` files for data larger than RAM).

A Python iterator of dicts is written with ``tfkit.records.write_split`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from tfkit.errors import UserError
from tfkit.records.schema import Feature

LABEL_NAMES = ("label", "labels", "y", "target")  # a feature of one of these names is the label, unless told
INT64_MAX_VALUES = 16  # integer features this small are stored as an Int64List; larger ones as raw bytes


class Source(Protocol):
    """What ``tfkit.records.write`` converts: a known number of examples, their features, and a reader."""

    @property
    def features(self) -> Mapping[str, Feature]:
        """Each feature of an example, by name."""
        ...

    @property
    def example_bytes(self) -> int:
        """Bytes of one example, on average: what sizes the shards."""
        ...

    @property
    def parallel(self) -> bool:
        """Whether writer processes may each open the source again (it pickles as paths, not open files)."""
        ...

    def __len__(self) -> int: ...

    def describe(self) -> str:
        """The source in words, for messages."""
        ...

    def read(self, indices: np.ndarray) -> Iterator[dict[str, Any]]:
        """Yields the examples at ascending ``indices``, each a dict from feature name to value."""
        ...


def select_features(available: dict[str, Any], names: Sequence[str], *, where: str) -> dict[str, Any]:
    """The entries ``--features`` names, in its order.

    Raises:
        UserError: A name the source does not hold.
    """
    missing = [name for name in names if name not in available]
    if missing:
        raise UserError(
            f"--features names {', '.join(missing)}, which {where} does not hold; expected some of "
            f"{', '.join(available)}."
        )
    return {name: available[name] for name in names}


def pick_label(names: Sequence[str], label: str | None) -> str | None:
    """The label feature: ``--label`` when given, else the first feature named like one (``LABEL_NAMES``).

    Raises:
        UserError: ``--label`` names no feature.
    """
    if label is not None:
        if label not in names:
            raise UserError(f"--label received '{label}', which is not a feature; expected one of {', '.join(names)}.")
        return label
    return next((name for name in LABEL_NAMES if name in names), None)
