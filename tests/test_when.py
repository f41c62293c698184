"""Reading the time a reminder is for (``agentcore.schedule.when.resolve``), in a zone with a
daylight-saving change: every form the tool's description promises, at a fixed "now"."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agentcore.schedule.when import RecurringError, WhenError, resolve

LISBON = ZoneInfo("Europe/Lisbon")  # WET (UTC+0), WEST (UTC+1) from 01:00 on 2025-03-30
NOW = datetime(2025, 3, 27, 10, 0, tzinfo=UTC)  # a Thursday, 10:00 in Lisbon


@pytest.mark.parametrize(
    ("text", "utc", "local"),
    [
        # phrases
        ("in 10 minutes", "2025-03-27 10:10", "2025-03-27 10:10 WET"),
        ("tomorrow 09:00", "2025-03-28 09:00", "2025-03-28 09:00 WET"),
        ("next monday 8am", "2025-03-31 07:00", "2025-03-31 08:00 WEST"),
        ("9am", "2025-03-28 09:00", "2025-03-28 09:00 WET"),  # already past today
        ("in 3 days", "2025-03-30 09:00", "2025-03-30 10:00 WEST"),  # keeps the time of day
        # ISO 8601: without a zone it is the person's; with one, that instant
        ("2025-04-01T09:00", "2025-04-01 08:00", "2025-04-01 09:00 WEST"),
        ("2025-04-01T09:00Z", "2025-04-01 09:00", "2025-04-01 10:00 WEST"),
        ("2025-04-01T09:00+02:00", "2025-04-01 07:00", "2025-04-01 08:00 WEST"),
        ("2025-04-01 09:00:30", "2025-04-01 08:00", "2025-04-01 09:00 WEST"),
        # a wall-clock time inside the daylight-saving gap is the instant just after it
        ("2025-03-30T01:30", "2025-03-30 01:30", "2025-03-30 02:30 WEST"),
    ],
)
def test_each_promised_form_names_the_right_instant(text: str, utc: str, local: str) -> None:
    resolved = resolve(text, NOW, LISBON)
    assert resolved.at.tzinfo is UTC
    assert f"{resolved.at:%Y-%m-%d %H:%M}" == utc
    assert f"{resolved.local:%Y-%m-%d %H:%M %Z}" == local
    assert resolved.local == resolved.at


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "`at` is empty"),
        ("blorp", "could not read 'blorp' as a time"),
        ("2025-04-01", "is a date without a time"),
        ("2025-13-01T09:00", "is not a valid ISO 8601 time"),
        ("2025-03-27T09:59Z", "2025-03-27 09:59 WET is in the past"),
        ("2025-03-27T10:00+00:00", "is in the past"),  # now is not the future
        ("tomorrow", "names a day but no time"),
        ("in 6 years", "more than five years ahead"),
    ],
)
def test_anything_else_says_what_to_send(text: str, error: str) -> None:
    with pytest.raises(WhenError, match=error) as raised:
        resolve(text, NOW, LISBON)
    assert not isinstance(raised.value, RecurringError)


@pytest.mark.parametrize("text", ["every monday 8am", "daily at 9", "each week", "weekdays 8am"])
def test_repeating_times_are_refused(text: str) -> None:
    with pytest.raises(RecurringError, match="repeating reminders are not supported"):
        resolve(text, NOW, LISBON)
