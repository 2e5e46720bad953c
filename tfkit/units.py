"""Sizes, shares and durations as people write them (``6GB``, ``85%``, ``8h45m``), parsed and formatted.

Config values are parsed here once, when the config is loaded; the rest of tfkit sees bytes and seconds.
"""

from __future__ import annotations

import dataclasses
import re

from tfkit.errors import UserError

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(%|[kmgt]?i?b?)\s*")
_DURATION = re.compile(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*")


@dataclasses.dataclass(frozen=True)
class Limit:
    """A memory limit: a number of bytes, or a share of a budget known only at run time.

    Attributes:
        text: What the user wrote, e.g. ``85%`` or ``6GB``; kept for messages and for writing the config back.
        bytes: The size, for a size; None for a share.
        share: The fraction in (0, 1], for a share; None for a size.
    """

    text: str
    bytes: int | None = None
    share: float | None = None

    def of(self, budget: int) -> int:
        """The limit in bytes, a share being taken of ``budget`` bytes."""
        return self.bytes if self.bytes is not None else int(budget * (self.share or 0.0))

    def __str__(self) -> str:
        return self.text


def parse_limit(text: object, *, key: str) -> Limit:
    """Parses ``85%`` (a share) or a size such as ``6GB`` or ``512MiB``.

    Raises:
        UserError: Naming the key when the text is neither.
    """
    match = _SIZE.fullmatch(str(text).lower())
    unit = match.group(2) if match else None
    if match is None or (unit != "%" and unit not in _SIZE_UNITS):
        raise UserError(f"config key '{key}': received {text!r}; expected a share such as 85% or a size such as 6GB.")
    number = float(match.group(1))
    if unit == "%":
        if not 0 < number <= 100:
            raise UserError(f"config key '{key}': received {text!r}; expected a share above 0% and up to 100%.")
        return Limit(text=str(text).strip(), share=number / 100)
    return Limit(text=str(text).strip(), bytes=int(number * _SIZE_UNITS[unit or ""]))


def parse_size(text: object, *, key: str) -> int:
    """Parses a size such as ``128MB`` or ``2GiB`` into bytes.

    Raises:
        UserError: Naming the key when the text is not a size (a share is not one).
    """
    limit = parse_limit(text, key=key)
    if limit.bytes is None:
        raise UserError(f"'{key}': received {text!r}; expected a size such as 128MB, not a share.")
    return limit.bytes


def parse_duration(text: object, *, key: str) -> float:
    """Parses ``8h45m``, ``90m``, ``1h``, ``3600s`` or a plain number of seconds into seconds.

    Raises:
        UserError: Naming the key when the text is not a duration above zero.
    """
    match = _DURATION.fullmatch(str(text))
    if not match or not any(match.groups()):
        raise UserError(f"config key '{key}': received {text!r}; expected a duration such as 8h45m, 90m or 3600s.")
    hours, minutes, seconds = (float(group) if group else 0.0 for group in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise UserError(f"config key '{key}': received {text!r}; expected a duration above zero.")
    return total


def format_bytes(value: int | None) -> str:
    """``1.2 GB``-style text (powers of 1024), or ``n/a``."""
    if value is None:
        return "n/a"
    if value < 1024:
        return f"{value} B"
    size = float(value)
    unit = "KB"
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def format_duration(seconds: float) -> str:
    """``8h41m``, ``12m`` or ``40s``: how long a run has trained, as a person reads it."""
    minutes = int(seconds // 60)
    if minutes == 0:
        return f"{seconds:.0f}s"
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
