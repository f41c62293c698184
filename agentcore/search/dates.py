"""Dates written in a query ("on 9 November, 2022", "in March 2023", "2024-01-31", "in 2023").

A question about a day should prefer what was said that day. Only absolute dates are read:
relative ones ("last week") depend on when the question is asked, and the search tool has
explicit ``start_date``/``end_date`` arguments for those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20)\d\d)"
_PATTERNS = (
    ("dmy", re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s*{_YEAR}\b", re.IGNORECASE)),
    ("mdy", re.compile(rf"\b{_MONTH}\s+{_DAY},?\s*{_YEAR}\b", re.IGNORECASE)),
    ("iso", re.compile(rf"\b{_YEAR}-(\d\d)-(\d\d)\b")),
    ("my", re.compile(rf"\b{_MONTH},?\s+(?:of\s+)?{_YEAR}\b", re.IGNORECASE)),
    ("y", re.compile(rf"\b{_YEAR}\b")),
)
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Period:
    """Whole days, ``first`` to ``last`` inclusive."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def bounds_ms(self) -> tuple[int, int]:
        """Milliseconds (UTC) from the first day's start to the last day's end."""
        start = datetime.combine(self.first, datetime.min.time(), UTC)
        start_ms = int(start.timestamp() * 1000)
        return start_ms, start_ms + self.days * DAY_MS - 1


def periods(text: str) -> list[Period]:
    """Every absolute date or period written in ``text``, most specific readings first."""
    found: list[Period] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            if any(a < match.end() and match.start() < b for a, b in taken):
                continue  # already part of a more specific date ("9 May 2023" is not "2023")
            period = _period(kind, match.groups())
            if period is not None:
                taken.append(match.span())
                found.append(period)
    return found


def _period(kind: str, groups: tuple[str | None, ...]) -> Period | None:
    parts = [g or "" for g in groups]
    try:
        if kind == "dmy":
            return _day(int(parts[2]), _month(parts[1]), int(parts[0]))
        if kind == "mdy":
            return _day(int(parts[2]), _month(parts[0]), int(parts[1]))
        if kind == "iso":
            return _day(int(parts[0]), int(parts[1]), int(parts[2]))
        if kind == "my":
            return _whole_month(int(parts[1]), _month(parts[0]))
        return Period(date(int(parts[0]), 1, 1), date(int(parts[0]), 12, 31))
    except ValueError:  # "31 February 2023" and the like
        return None


def _month(name: str) -> int:
    prefix = name.lower().rstrip(".")[:3]
    return next(i for i, m in enumerate(_MONTHS, 1) if m.startswith(prefix))


def _day(year: int, month: int, day: int) -> Period:
    when = date(year, month, day)
    return Period(when, when)


def _whole_month(year: int, month: int) -> Period:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period(first, following - timedelta(days=1))
