"""Keys written as people write them (``64MB``, ``85%``, ``8h45m``), resolved once, at load, and written back.

A section declares such a key as ``Annotated[int, SIZE]`` (bytes), ``Annotated[units.Limit, LIMIT]`` (bytes or a
share of a budget known at run time) or ``Annotated[float | None, DURATION]`` (seconds). The loader resolves the
text through ``tfkit.units``, so the rest of tfkit sees bytes and seconds, and ``dump`` writes the value back as
text that reads the same (``64000000`` as ``64MB``, ``31500.0`` as ``8h45m``).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any, Literal

from tfkit import units
from tfkit.errors import UserError

# Exact units for writing sizes back, largest first; a size none divides is written as a number of bytes.
_WRITTEN_UNITS = (
    ("TiB", 2**40),
    ("TB", 10**12),
    ("GiB", 2**30),
    ("GB", 10**9),
    ("MiB", 2**20),
    ("MB", 10**6),
    ("KiB", 2**10),
    ("KB", 10**3),
)


@dataclasses.dataclass(frozen=True)
class Unit:
    """How a key's text is resolved.

    Attributes:
        kind: ``size`` (bytes, an int), ``limit`` (a ``units.Limit``) or ``duration`` (seconds, a float).
    """

    kind: Literal["size", "limit", "duration"]

    def holds(self, value: object) -> bool:
        """Whether ``value`` is already resolved (a section built in Python may be given either)."""
        if self.kind == "size":
            return isinstance(value, int) and not isinstance(value, bool)
        if self.kind == "limit":
            return isinstance(value, units.Limit)
        return isinstance(value, float)

    def resolve(self, value: object, *, key: str) -> int | float | units.Limit:
        """Resolves text such as ``64MB``, ``85%`` or ``8h45m`` (or a plain number) for config key ``key``.

        Raises:
            UserError: Naming the key, the value and what is expected.
        """
        if self.holds(value):
            return typing.cast("int | float | units.Limit", value)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            expected = {
                "size": "a size such as 64MB",
                "limit": "a share such as 85% or a size such as 6GB",
                "duration": "a duration such as 8h45m, 90m or 3600s",
            }[self.kind]
            raise UserError(f"config key '{key}': received {value!r} ({type(value).__name__}); expected {expected}.")
        if self.kind == "size":
            return units.parse_size(value, key=key)
        if self.kind == "limit":
            return units.parse_limit(value, key=key)
        return units.parse_duration(value, key=key)

    def written(self, value: Any) -> str | int | float:
        """The value as YAML text that resolves to it again: ``64MB``, ``85%``, ``8h45m``."""
        if isinstance(value, units.Limit):
            return value.text
        if self.kind == "size":
            return _size_text(int(value))
        return _duration_text(float(value))


SIZE = Unit("size")
LIMIT = Unit("limit")
DURATION = Unit("duration")


def unit_fields(cls: type) -> dict[str, Unit]:
    """The fields of a section class that are declared with a ``Unit``, by name."""
    fields: dict[str, Unit] = {}
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        if typing.get_origin(hint) is not Annotated:
            continue
        for meta in hint.__metadata__:
            if isinstance(meta, Unit):
                fields[name] = meta
    return fields


def resolve_fields(section: Any, *, prefix: str) -> None:
    """Resolves a section's unit fields in place, for sections built in Python with text (``"64MB"``).

    Called from the frozen sections' ``__post_init__``; values the loader already resolved are left alone.
    """
    for name, unit in unit_fields(type(section)).items():
        value = getattr(section, name)
        if value is not None and not unit.holds(value):
            object.__setattr__(section, name, unit.resolve(value, key=f"{prefix}{name}"))


def _size_text(size: int) -> str | int:
    for name, factor in _WRITTEN_UNITS:
        if size and size % factor == 0:
            text = f"{size // factor}{name}"
            if units.parse_size(text, key="") == size:  # a float product past 2**53 would not read back
                return text
    return size


def _duration_text(seconds: float) -> str | float:
    if not seconds.is_integer():
        return seconds
    whole = int(seconds)
    hours, minutes, rest = whole // 3600, whole % 3600 // 60, whole % 60
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{rest}s" if rest else "")
    return text if units.parse_duration(text, key="") == seconds else seconds
