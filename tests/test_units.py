from __future__ import annotations

import pytest

from tfkit import units
from tfkit.errors import UserError


def test_sizes_are_bytes_with_decimal_or_binary_units():
    assert units.parse_size("64MB", key="k") == 64 * 10**6
    assert units.parse_size("2GiB", key="k") == 2 * 2**30
    assert units.parse_size(1500, key="k") == 1500
    with pytest.raises(UserError, match=r"^'k': received '50%'; expected a size such as 128MB, not a share\.$"):
        units.parse_size("50%", key="k")


def test_a_limit_is_a_share_taken_of_a_budget_known_later_or_a_size():
    share = units.parse_limit("85%", key="k")
    assert (share.share, share.bytes, str(share), share.of(1000)) == (0.85, None, "85%", 850)
    size = units.parse_limit("6GB", key="k")
    assert (size.bytes, size.of(1)) == (6 * 10**9, 6 * 10**9)


@pytest.mark.parametrize(("text", "seconds"), [("8h45m", 31500.0), ("90m", 5400.0), ("3600s", 3600.0), (12, 12.0)])
def test_durations_are_seconds(text, seconds):
    assert units.parse_duration(text, key="train.time_limit") == seconds


@pytest.mark.parametrize("text", ["soon", "0", "h", "-5m"])
def test_a_bad_duration_names_the_key(text):
    with pytest.raises(UserError, match=r"^config key 'train.time_limit': received .*; expected a duration"):
        units.parse_duration(text, key="train.time_limit")


def test_formatting_for_people():
    assert (units.format_bytes(None), units.format_bytes(512), units.format_bytes(3 * 2**20)) == (
        "n/a",
        "512 B",
        "3.0 MB",
    )
    assert (units.format_duration(40), units.format_duration(720), units.format_duration(31260)) == (
        "40s",
        "12m",
        "8h41m",
    )
