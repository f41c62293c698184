"""Reminders: ``schedule_message``, ``list_scheduled_messages``, ``cancel_scheduled_message``,
and ``set_timezone`` (the person's zone, used to read and show times)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from agentcore.schedule.model import NewReminder, Reminder, ReminderStatus
from agentcore.schedule.when import WhenError, find_zone, resolve
from agentcore.tools.base import Scheduling, Tool, ToolContext, ToolError, schema
from agentcore.types import ChatKind


def _scheduling(ctx: ToolContext) -> Scheduling:
    if ctx.scheduling is None:
        raise ToolError("reminders are turned off on this bot")
    return ctx.scheduling


def when_text(when: datetime, tz: ZoneInfo) -> str:
    """How a time is shown to the person: ``Mon 2025-01-06 09:00 WET``."""
    return f"{when.astimezone(tz):%a %Y-%m-%d %H:%M %Z}"


def _zone_note(ctx: ToolContext, sched: Scheduling) -> str:
    if sched.prefs.timezone is not None:
        return ""
    return (
        f" (Times are in {ctx.tz.key}, the bot's default: the person has not set a time zone. "
        "If they live elsewhere, ask them and call set_timezone.)"
    )


async def schedule_message(ctx: ToolContext, message: str, at: str) -> str:
    sched = _scheduling(ctx)
    text = message.strip()
    if not text:
        raise ToolError("message is empty; write what you want to remind them of")
    cap = sched.settings.max_message_chars
    if len(text) > cap:
        raise ToolError(
            f"message is {len(text):,} characters; keep it under {cap:,} (a short note of what "
            "to remind them of: when it fires you can look the rest up in your memory)"
        )
    now = ctx.clock.now()
    try:
        when = resolve(at, now, ctx.tz)
    except WhenError as exc:
        raise ToolError(str(exc)) from None
    new = NewReminder(ctx.agent_id, text, when.at, now, sched.chat, sched.route)
    number = await sched.store.add_reminder(new, sched.settings.max_pending)
    if number is None:
        raise ToolError(
            f"this person already has {sched.settings.max_pending} reminders waiting, the "
            "most allowed; cancel one (cancel_scheduled_message) or tell them"
        )
    sched.doorbell.ring()
    where = "in this group chat" if sched.chat is ChatKind.GROUP else "in your private chat"
    return (
        f"Scheduled #{number} for {when_text(when.at, ctx.tz)} ({ctx.tz.key}); it will be sent "
        f"{where}: {text!r}.{_zone_note(ctx, sched)}"
    )


def describe(reminder: Reminder, tz: ZoneInfo) -> str:
    """One line per reminder, as the agent and the person see it."""
    line = f"#{reminder.number} {when_text(reminder.due_at, tz)}: {reminder.message}"
    if reminder.fire_at != reminder.due_at and reminder.status is ReminderStatus.PENDING:
        line += f" (postponed to {when_text(reminder.fire_at, tz)}: {reminder.note})"
    if reminder.chat is ChatKind.GROUP:
        line += " [in a group]"
    return line


async def list_scheduled_messages(ctx: ToolContext) -> str:
    sched = _scheduling(ctx)
    waiting = await sched.store.list_reminders(ctx.agent_id, pending_only=True)
    if not waiting:
        return "No reminders are waiting." + _zone_note(ctx, sched)
    lines = [describe(r, ctx.tz) for r in waiting]
    return f"{len(waiting)} reminder(s) waiting:\n" + "\n".join(lines) + _zone_note(ctx, sched)


async def cancel_scheduled_message(ctx: ToolContext, id: int) -> str:
    sched = _scheduling(ctx)
    if await sched.store.cancel_reminder(ctx.agent_id, id):
        return f"Cancelled reminder #{id}."
    every = await sched.store.list_reminders(ctx.agent_id, pending_only=False)
    found = next((r for r in every if r.number == id), None)
    if found is None:
        raise ToolError(
            f"there is no reminder #{id}; list_scheduled_messages shows the waiting ones"
        )
    raise ToolError(f"reminder #{id} cannot be cancelled: it is {found.status.value} already")


async def set_timezone(ctx: ToolContext, timezone: str) -> str:
    sched = _scheduling(ctx)
    zone = find_zone(timezone)
    if zone is None:
        raise ToolError(
            f"unknown time zone {timezone!r}; use an IANA name such as Europe/Lisbon, "
            "America/New_York or Asia/Tokyo"
        )
    sched.prefs = replace(sched.prefs, timezone=zone)
    await sched.store.save_prefs(ctx.agent_id, sched.prefs)
    ctx.tz = zone
    return f"Time zone set to {zone.key}; it is now {when_text(ctx.clock.now(), zone)} there."


TOOLS = (
    Tool(
        "schedule_message",
        "Schedule a message to yourself that wakes you at a time, so you can write to the "
        "person first (a reminder). `at` is ISO 8601 (2025-01-31T09:00, zone optional; without "
        "one the person's time zone is used) or a phrase: 'in 10 minutes', 'tomorrow 09:00', "
        "'next monday 8am'. Repeating reminders are not supported. Returns the reminder's id.",
        schema(
            ["message", "at"],
            message={"type": "string", "description": "What to remind them of (short)."},
            at={"type": "string", "description": "When, e.g. 'tomorrow 09:00'."},
        ),
        schedule_message,
    ),
    Tool(
        "list_scheduled_messages",
        "List the reminders waiting to be sent to this person, with their ids and times.",
        schema([]),
        list_scheduled_messages,
    ),
    Tool(
        "cancel_scheduled_message",
        "Cancel a waiting reminder by its id (from schedule_message or list_scheduled_messages).",
        schema(["id"], id={"type": "integer", "description": "The reminder's id, e.g. 3."}),
        cancel_scheduled_message,
    ),
    Tool(
        "set_timezone",
        "Set the person's time zone (an IANA name such as Europe/Lisbon) once they tell you "
        "where they are; times for reminders are then read and shown in it.",
        schema(
            ["timezone"],
            timezone={"type": "string", "description": "IANA name, e.g. America/New_York."},
        ),
        set_timezone,
    ),
)
