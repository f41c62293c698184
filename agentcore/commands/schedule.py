"""The person's reminder commands: /timezone, /reminders, /checkins and /quiet."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from agentcore.clock import Clock
from agentcore.commands.spec import USER_COMMANDS, usage_line
from agentcore.memory.blocks import default_blocks
from agentcore.records import AgentRecord
from agentcore.schedule.model import PersonPrefs, QuietHours
from agentcore.schedule.when import find_zone
from agentcore.settings import AgentSettings
from agentcore.storage.protocols import Storage
from agentcore.tools.schedule import describe, when_text
from agentcore.types import InboundMessage, Reply, ReplyKind

TURNED_OFF = "Reminders are turned off on this bot."
_USAGE = {c.name: c for c in USER_COMMANDS}

Handler = Callable[[InboundMessage, str], Awaitable[Reply]]


def _reply(text: str) -> Reply:
    return Reply(text, ReplyKind.COMMAND, private=True)


class ScheduleCommands:
    def __init__(self, *, storage: Storage, clock: Clock, settings: AgentSettings) -> None:
        self._storage = storage
        self._enabled = settings.reminders.enabled
        self._clock = clock
        self._settings = settings
        self.handlers: dict[str, Handler] = {
            "timezone": self.timezone,
            "reminders": self.reminders,
            "checkins": self.checkins,
            "quiet": self.quiet,
        }

    async def _agent(self, message: InboundMessage) -> AgentRecord:
        """The person's agent; created now if they set something before ever writing."""
        agent = await self._storage.load_agent(message.key)
        if agent is None:
            specs = default_blocks(self._settings.memory)
            name = message.display_name
            await self._storage.create_agent(message.key, name, self._clock.now(), specs)
            agent = await self._storage.load_agent(message.key)
            assert agent is not None
        return agent

    async def _prefs(self, message: InboundMessage) -> tuple[int, PersonPrefs]:
        agent = await self._agent(message)
        return agent.id, await self._storage.load_prefs(message.key)

    async def timezone(self, message: InboundMessage, args: str) -> Reply:
        if not self._enabled:
            return _reply(TURNED_OFF)
        agent_id, prefs = await self._prefs(message)
        default = self._settings.memory.timezone.key
        if not args:
            if prefs.timezone is None:
                return _reply(
                    f"I don't know your time zone, so I use {default}, the bot's default. "
                    "Set yours with /timezone Region/City, e.g. /timezone Europe/Lisbon."
                )
            return _reply(f"Your time zone is {prefs.timezone.key}.")
        zone = find_zone(args)
        if zone is None:
            return _reply(
                f"I don't know the time zone “{args}”. Use a Region/City name such as "
                "Europe/Lisbon, America/New_York or Asia/Tokyo."
            )
        await self._storage.save_prefs(agent_id, replace(prefs, timezone=zone))
        return _reply(
            f"Your time zone is now {zone.key}; it's {when_text(self._clock.now(), zone)} there."
        )

    async def reminders(self, message: InboundMessage, args: str) -> Reply:
        if not self._enabled:
            return _reply(TURNED_OFF)
        words = args.split()
        if words and (len(words) != 2 or words[0].lower() != "cancel" or not words[1].isdigit()):
            return _reply(usage_line("/", _USAGE["reminders"]))
        agent = await self._storage.load_agent(message.key)
        if agent is None:
            return _reply("You have no reminders.")
        if words:
            number = int(words[1])
            if await self._storage.cancel_reminder(agent.id, number):
                return _reply(f"Cancelled reminder #{number}.")
            return _reply(f"You have no waiting reminder #{number}. Send /reminders to see them.")
        waiting = await self._storage.list_reminders(agent.id, pending_only=True)
        if not waiting:
            return _reply("You have no reminders waiting.")
        zone = (await self._storage.load_prefs(message.key)).timezone
        tz = zone or self._settings.memory.timezone
        lines = [describe(r, tz) for r in waiting]
        return _reply(
            f"Your reminders ({tz.key}):\n" + "\n".join(lines) + "\n\nCancel one with "
            "/reminders cancel <id>."
        )

    async def checkins(self, message: InboundMessage, args: str) -> Reply:
        if not self._enabled:
            return _reply(TURNED_OFF)
        choice = args.strip().lower()
        if choice not in {"", "on", "off"}:
            return _reply(usage_line("/", _USAGE["checkins"]))
        agent_id, prefs = await self._prefs(message)
        offered = self._settings.reminders.checkin_after
        if choice:
            prefs = replace(prefs, checkins=choice == "on")
            await self._storage.save_prefs(agent_id, prefs)
        if offered is None:
            state = "on" if prefs.checkins else "off"
            return _reply(f"Check-ins are {state} for you, but this bot does not send any.")
        if not prefs.checkins:
            return _reply("Check-ins are off: I won't write to you unless you ask me to.")
        return _reply(
            f"Check-ins are on: after {offered.days} days of silence I may write once, if I "
            "have a reason. /checkins off turns them off."
        )

    async def quiet(self, message: InboundMessage, args: str) -> Reply:
        if not self._enabled:
            return _reply(TURNED_OFF)
        agent_id, prefs = await self._prefs(message)
        choice = args.strip().lower()
        if choice == "default":
            prefs = replace(prefs, quiet_hours=None, quiet_set=False)
        elif choice:
            try:
                prefs = replace(prefs, quiet_hours=QuietHours.parse(choice), quiet_set=True)
            except ValueError:
                return _reply(
                    usage_line("/", _USAGE["quiet"]) + " (for example /quiet 22:00-07:00)"
                )
        if choice:
            await self._storage.save_prefs(agent_id, prefs)
        hours = prefs.quiet_hours if prefs.quiet_set else self._settings.reminders.quiet_hours
        zone = (prefs.timezone or self._settings.memory.timezone).key
        whose = "yours" if prefs.quiet_set else "the bot's default"
        if hours is None:
            return _reply(f"No quiet hours ({whose}): reminders go out at any time.")
        return _reply(
            f"Quiet hours {hours} ({zone}, {whose}): reminders due then wait until they end."
        )
