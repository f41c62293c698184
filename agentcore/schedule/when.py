"""Reading the time a reminder is for: ISO 8601 (with or without a zone) or an English phrase
("in 10 minutes", "tomorrow 09:00", "next monday 8am"), in the person's time zone.

ISO text is read by the standard library; phrases by ``parsedatetime`` (imported on first use,
so the bot's start-up does not pay for it). Wall-clock times are placed in the zone by
``zoneinfo``, so a time across a daylight-saving change lands at the right instant. Durations
under a day ("in 2 hours") are elapsed time; longer ones ("in 3 days") keep the time of day.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

MAX_AHEAD = timedelta(days=5 * 366)
_RECURRING = re.compile(
    r"\b(every|each|daily|weekly|monthly|yearly|annually|hourly|weekdays|weekends|"
    r"recurring|repeat(?:ing|edly)?)\b",
    re.IGNORECASE,
)
# A shift of the reference time that no phrase rounds to: a result that moves by exactly this
# much when "now" does is relative to now ("in 2 hours"), not a wall-clock time ("9am").
_PROBE = timedelta(hours=1, minutes=7, seconds=11)


class WhenError(ValueError):
    """The text is not a time a reminder can be set for; the message says what to send."""


class RecurringError(WhenError):
    """The text asks for a repeating reminder, which is not supported."""


@dataclass(frozen=True, slots=True)
class Resolved:
    at: datetime  # the instant, UTC
    local: datetime  # the same instant in the person's zone


def resolve(text: str, now: datetime, tz: ZoneInfo) -> Resolved:
    """The future instant ``text`` names, read in ``tz``; ``WhenError`` if there is none."""
    phrase = " ".join(text.split())
    if not phrase:
        raise WhenError("`at` is empty; give a time such as 'in 10 minutes' or 2025-01-31T09:00")
    if _RECURRING.search(phrase):
        raise RecurringError(
            "repeating reminders are not supported: schedule only the next one; when it "
            "fires you can schedule the one after"
        )
    at = _iso(phrase, tz)
    if at is None:
        at = _phrase(phrase, now, tz)
    local = at.astimezone(tz)
    if at <= now:
        raise WhenError(
            f"{local:%Y-%m-%d %H:%M %Z} is in the past (it is now "
            f"{now.astimezone(tz):%Y-%m-%d %H:%M %Z}); give a future time"
        )
    if at - now > MAX_AHEAD:
        raise WhenError("that is more than five years ahead; choose a nearer time")
    return Resolved(at.astimezone(UTC), local)


def _iso(text: str, tz: ZoneInfo) -> datetime | None:
    """An ISO 8601 date-time, or None if ``text`` is not one."""
    if not re.match(r"^\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise WhenError(f"{text!r} is not a valid ISO 8601 time ({exc})") from None
    if len(text) <= len("2025-01-31"):
        raise WhenError(f"{text!r} is a date without a time; add one, e.g. {text}T09:00")
    return _placed(parsed, tz) if parsed.tzinfo is None else parsed


def _phrase(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    local_now = now.astimezone(tz).replace(tzinfo=None)
    naive, has_date, has_time = _parse(text, local_now)
    moved, _, _ = _parse(text, local_now + _PROBE)
    if moved - naive == _PROBE:  # relative to now
        offset = naive - local_now
        return now + offset if offset < timedelta(days=1) else _placed(naive, tz)
    if has_date and not has_time:
        raise WhenError(f"{text!r} names a day but no time; add one, e.g. '{text} 09:00'")
    at = _placed(naive, tz)
    if not has_date and at <= now:  # "9am" said after 9am means tomorrow's
        at = _placed(datetime.combine(naive.date() + timedelta(days=1), naive.time()), tz)
    return at


def _parse(text: str, source: datetime) -> tuple[datetime, bool, bool]:
    result, context = _calendar().parseDT(text, sourceTime=source)
    if not context.hasDateOrTime:
        raise WhenError(
            f"could not read {text!r} as a time; use ISO 8601 such as 2025-01-31T09:00 "
            "(a zone like +01:00 is optional) or a phrase such as 'in 10 minutes', "
            "'tomorrow 09:00' or 'next monday 8am'"
        )
    return result, bool(context.hasDate), bool(context.hasTime)


def _placed(naive: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time in ``tz``; one that falls in a daylight-saving gap becomes the
    instant just after the gap, as clocks show it."""
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


@functools.cache
def _calendar() -> Any:
    import parsedatetime  # noqa: PLC0415  (lazy: ~40 ms and a few MB, paid on first use)

    return parsedatetime.Calendar(version=parsedatetime.VERSION_CONTEXT_STYLE)


def find_zone(name: str) -> ZoneInfo | None:
    """The IANA zone ``name`` names (any letter case: "europe/lisbon"), or None."""
    text = name.strip().replace(" ", "_")
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    wanted = text.lower()
    match = next((z for z in available_timezones() if z.lower() == wanted), None)
    return ZoneInfo(match) if match else None
