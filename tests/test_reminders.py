"""Reminders as people use them: the real runtime, scheduler and SQLite, a scripted model, and
the injected clock (weeks pass in milliseconds)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse, LLMUnavailable
from agentcore.llm.fake import FunctionLLM, call, calls, last_message, last_user_text, reply
from agentcore.messages import Role
from agentcore.outbox import Delivery
from agentcore.runtime import AgentRuntime
from agentcore.schedule.doorbell import Doorbell
from agentcore.schedule.model import DeliveryScope, QuietHours, ReminderStatus
from agentcore.schedule.scheduler import LEASE, Scheduler
from agentcore.storage.protocols import Storage
from agentcore.types import AgentKey, ChatKind
from bots.compose import build_runtime, build_scheduler
from config import Settings
from tests.conftest import make_settings, message, open_backend

BRAD = AgentKey("console", "brad")
MINUTE = timedelta(minutes=1)
_ASK = re.compile(r"remind me (.+?) to (.+)", re.IGNORECASE)


def model(request: LLMRequest) -> LLMResponse:
    """Schedules what it is asked to ("remind me <when> to <what>"), cancels ("cancel 2"),
    lists ("what is waiting?"), sets the zone ("I live in <zone>"), echoes tool results, and
    answers a reminder with "⏰ " and the event it was given."""
    last = last_message(request)
    if last.role is Role.TOOL:
        return reply(f"tool: {last.content}")
    if last.role is Role.SYSTEM and (last.content or "").startswith(("scheduled:", "check-in:")):
        return reply(f"⏰ {last.content}")
    text = last_user_text(request)
    if asked := _ASK.match(text):
        what = "x" * 50_000 if asked[2] == "SOMETHING HUGE" else asked[2]
        return call("schedule_message", message=what, at=asked[1])
    if cancel := re.match(r"cancel (\d+)", text):
        return call("cancel_scheduled_message", id=int(cancel[1]))
    if text == "what is waiting?":
        return call("list_scheduled_messages")
    if zone := re.match(r"i live in (.+)", text, re.IGNORECASE):
        return call("set_timezone", timezone=zone[1])
    return reply(f"echo: {text}")


TERMINAL = DeliveryScope("console", "brad")


class Outbox:
    def __init__(self, scope: DeliveryScope = TERMINAL) -> None:
        self.scope = scope
        self.sent: list[Delivery] = []
        self.refuse = False

    async def deliver(self, delivery: Delivery) -> bool:
        self.sent.append(delivery)
        return not self.refuse

    @property
    def texts(self) -> list[str]:
        return [d.reply.text for d in self.sent]


@dataclass
class Bot:
    runtime: AgentRuntime
    scheduler: Scheduler
    outbox: Outbox
    llm: FunctionLLM
    storage: Storage
    clock: ManualClock
    said: list[str] = field(default_factory=list)

    async def say(self, text: str, **kw: Any) -> str:
        answer = (await self.runtime.handle(message(self.clock, text, **kw))).text
        self.said.append(answer)
        return answer

    async def settled(self, until: datetime | None = None) -> None:
        """Wait until the scheduler sleeps, until ``until`` (None: until woken)."""
        await until_true(
            lambda: self.scheduler.asleep.is_set() and self.scheduler.sleeping_until == until
        )

    async def delivered(self, count: int) -> list[str]:
        await until_true(lambda: len(self.outbox.sent) >= count)
        return self.outbox.texts


async def until_true(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for ``check`` to hold (the scheduler works on its own task and the database's)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110  (progress of other tasks and the db thread)
            await asyncio.sleep(0.002)


@asynccontextmanager
async def running(
    where: str,
    clock: ManualClock,
    settings: Settings | None = None,
    responder: Callable[[LLMRequest], LLMResponse] = model,
    outbox: Outbox | None = None,
) -> AsyncIterator[Bot]:
    """The bot as ``python -m bots`` wires it (runtime, scheduler, an outbox attached), on the
    database at ``where`` (each test runs on every backend)."""
    settings = settings or make_settings()
    storage = await open_backend(where)
    doorbell = Doorbell()
    llm = FunctionLLM(responder)
    runtime = build_runtime(settings, storage, llm, clock, doorbell=doorbell)
    scheduler = build_scheduler(settings, storage, runtime, clock, doorbell=doorbell)
    box = outbox or Outbox()
    scheduler.attach(box)
    scheduler.start()
    try:
        yield Bot(runtime, scheduler, box, llm, storage, clock)
    finally:
        await scheduler.stop(5.0)
        await runtime.shutdown()  # closes the storage too


def with_reminders(**changes: Any) -> Settings:
    base = make_settings()
    return replace(
        base, agent=replace(base.agent, reminders=replace(base.agent.reminders, **changes))
    )


async def history(storage: Storage, key: AgentKey = BRAD) -> list[tuple[str, str | None]]:
    agent = await storage.load_agent(key)
    assert agent is not None
    return [(m.role.value, m.content) for m in await storage.all_messages(agent.id)]


async def statuses(storage: Storage, key: AgentKey = BRAD) -> list[ReminderStatus]:
    agent = await storage.load_agent(key)
    assert agent is not None
    return [r.status for r in await storage.list_reminders(agent.id, pending_only=False)]


# ---------------------------------------------------------------------- firing


async def test_in_ten_minutes_comes_at_ten_once(backend: str, clock: ManualClock) -> None:
    async with running(backend, clock) as bot:
        answer = await bot.say("remind me in 10 minutes to stretch")
        assert answer.startswith("tool: Scheduled #1 for Mon 2025-01-06 09:10 UTC (UTC)")
        due = clock.now() + 10 * MINUTE
        for _ in range(9):  # nothing for nine minutes, and no polling meanwhile
            await bot.settled(due)
            clock.advance(MINUTE)
        await bot.settled(due)
        assert bot.outbox.sent == []
        clock.advance(MINUTE)
        [text] = await bot.delivered(1)
        assert text == "⏰ scheduled: stretch, set on 2025-01-06 09:00 UTC"
        clock.advance(timedelta(days=2))
        await bot.settled(None)  # nothing left to wait for
        assert len(bot.outbox.sent) == 1
        [delivery] = bot.outbox.sent
        assert delivery.key == BRAD and delivery.chat is ChatKind.PRIVATE and delivery.route == ""
        stored = await history(bot.storage)
        assert stored[-2:] == [("system", text[2:]), ("assistant", text)]
        assert await statuses(bot.storage) == [ReminderStatus.SENT]


async def test_a_restart_in_between_still_sends_it_once(backend: str, clock: ManualClock) -> None:
    async with running(backend, clock) as bot:
        await bot.say("remind me in 10 minutes to stretch")
    clock.advance(5 * MINUTE)
    async with running(backend, clock) as bot:
        await bot.settled(clock.now() + 5 * MINUTE)
        clock.advance(5 * MINUTE)
        await bot.delivered(1)
        clock.advance(timedelta(hours=1))
        await bot.settled(None)
    async with running(backend, clock) as bot:  # and after it was sent, never again
        await bot.settled(None)
        assert bot.outbox.sent == []
        events = [c for role, c in await history(bot.storage) if role == "system"]
        assert len(events) == 1


async def test_down_at_the_due_time_sends_it_late_once_at_start(
    backend: str, clock: ManualClock
) -> None:
    async with running(backend, clock) as bot:
        await bot.say("remind me in 10 minutes to stretch")
    clock.advance(timedelta(hours=3))  # the bot is down meanwhile
    async with running(backend, clock) as bot:
        [text] = await bot.delivered(1)
        assert text == (
            "⏰ scheduled: stretch, set on 2025-01-06 09:00 UTC (late: it was due at "
            "2025-01-06 09:10 UTC but the bot was offline; mention the delay)"
        )
        await bot.settled(None)
        agent = await bot.storage.load_agent(BRAD)
        assert agent is not None
        [row] = await bot.storage.list_reminders(agent.id, pending_only=False)
        assert row.late and row.status is ReminderStatus.SENT
    async with running(backend, clock) as bot:
        await bot.settled(None)
        assert bot.outbox.sent == []


async def test_across_a_daylight_saving_change_in_the_persons_zone(
    backend: str, clock: ManualClock
) -> None:
    clock.set(datetime(2025, 3, 29, 20, 15, tzinfo=UTC))  # Lisbon: WET (UTC+0) until tonight
    async with running(backend, clock) as bot:
        assert "Europe/Lisbon" in await bot.say("/timezone europe/lisbon")
        answer = await bot.say("remind me tomorrow 09:00 to water the plants")
        assert "Sun 2025-03-30 09:00 WEST (Europe/Lisbon)" in answer  # summer time from 01:00
        due = datetime(2025, 3, 30, 8, 0, tzinfo=UTC)  # 09:00 WEST, not 09:00 UTC
        await bot.settled(due)
        clock.set(due - MINUTE)
        await bot.settled(due)
        assert bot.outbox.sent == []
        clock.set(due)
        [text] = await bot.delivered(1)
        assert text == "⏰ scheduled: water the plants, set on 2025-03-29 20:15 WET"


async def test_cancel_by_command_and_by_the_agent(backend: str, clock: ManualClock) -> None:
    async with running(backend, clock) as bot:
        await bot.say("remind me in 10 minutes to stretch")
        await bot.say("remind me in 20 minutes to drink water")
        listing = await bot.say("/reminders")
        assert "#1 Mon 2025-01-06 09:10 UTC: stretch" in listing
        assert "#2 Mon 2025-01-06 09:20 UTC: drink water" in listing
        assert await bot.say("/reminders cancel 1") == "Cancelled reminder #1."
        assert await bot.say("cancel 2") == "tool: Cancelled reminder #2."
        assert (await bot.say("cancel 2")).startswith("tool: Error: reminder #2 cannot be")
        assert "no reminders waiting" in await bot.say("/reminders")
        clock.advance(timedelta(hours=1))
        await bot.settled(None)
        assert bot.outbox.sent == []


async def test_the_agent_lists_reminders_and_sets_the_zone_they_are_read_in(
    backend: str, clock: ManualClock
) -> None:
    clock.set(datetime(2025, 3, 27, 10, 0, tzinfo=UTC))  # a Thursday; Lisbon is on WET
    async with running(backend, clock) as bot:
        assert await bot.say("what is waiting?") == (
            "tool: No reminders are waiting. (Times are in UTC, the bot's default: the person "
            "has not set a time zone. If they live elsewhere, ask them and call set_timezone.)"
        )
        assert "Error: unknown time zone 'Atlantis'" in await bot.say("I live in Atlantis")
        assert await bot.say("I live in europe/lisbon") == (
            "tool: Time zone set to Europe/Lisbon; it is now Thu 2025-03-27 10:00 WET there."
        )
        await bot.say("remind me next monday 8am to call the bank")
        await bot.say("remind me 2025-04-01T09:00Z to pay rent")
        assert await bot.say("what is waiting?") == (
            "tool: 2 reminder(s) waiting:\n"
            "#1 Mon 2025-03-31 08:00 WEST: call the bank\n"
            "#2 Tue 2025-04-01 10:00 WEST: pay rent"
        )
        assert "Europe/Lisbon" in await bot.say("/timezone")
        monday_8am_lisbon = datetime(2025, 3, 31, 7, 0, tzinfo=UTC)
        await bot.settled(monday_8am_lisbon)
        clock.set(monday_8am_lisbon)
        [text] = await bot.delivered(1)
        assert text == "⏰ scheduled: call the bank, set on 2025-03-27 10:00 WET"


async def test_quiet_hours_postpone_to_their_end_unless_the_person_turns_them_off(
    backend: str, clock: ManualClock
) -> None:
    clock.set(datetime(2025, 1, 6, 21, 50, tzinfo=UTC))
    settings = with_reminders(quiet_hours=QuietHours(time(22), time(7)))
    async with running(backend, clock, settings) as bot:
        await bot.say("remind me in 20 minutes to read")
        clock.advance(20 * MINUTE)
        morning = datetime(2025, 1, 7, 7, 0, tzinfo=UTC)
        await bot.settled(morning)  # postponed, not sent
        assert bot.outbox.sent == []
        assert "postponed to Tue 2025-01-07 07:00 UTC" in await bot.say("/reminders")
        clock.set(morning)
        [text] = await bot.delivered(1)
        assert "(asked for 2025-01-06 22:10 UTC; postponed: quiet hours 22:00-07:00)" in text
        assert "No quiet hours (yours)" in await bot.say("/quiet off")
        clock.set(datetime(2025, 1, 7, 23, 0, tzinfo=UTC))
        await bot.say("remind me in 5 minutes to sleep")
        clock.advance(5 * MINUTE)
        await bot.delivered(2)
        # The person's own hours replace the operator's.
        own = await bot.say("/quiet 13:00-15:00")
        assert (
            own == "Quiet hours 13:00-15:00 (UTC, yours): reminders due then wait until they end."
        )
        clock.set(datetime(2025, 1, 8, 12, 50, tzinfo=UTC))
        await bot.say("remind me in 20 minutes to eat")
        clock.advance(20 * MINUTE)
        three = datetime(2025, 1, 8, 15, 0, tzinfo=UTC)
        await bot.settled(three)
        assert len(bot.outbox.sent) == 2
        clock.set(three)
        [*_, text] = await bot.delivered(3)
        assert "(asked for 2025-01-08 13:10 UTC; postponed: quiet hours 13:00-15:00)" in text
        assert "22:00-07:00 (UTC, the bot's default)" in await bot.say("/quiet default")


async def test_the_daily_cap_postpones_the_rest(backend: str, clock: ManualClock) -> None:
    async with running(backend, clock, with_reminders(max_unprompted_per_day=2)) as bot:
        for minutes in (1, 2, 3):
            await bot.say(f"remind me in {minutes} minutes to do thing {minutes}")
        clock.advance(3 * MINUTE)
        await bot.delivered(2)
        first_sent = clock.now()
        await bot.settled(first_sent + timedelta(days=1))
        assert [t.split(",")[0] for t in bot.outbox.texts] == [
            "⏰ scheduled: do thing 1",
            "⏰ scheduled: do thing 2",
        ]
        clock.advance(timedelta(days=1))
        [*_, third] = await bot.delivered(3)
        assert "postponed: at most 2 unprompted messages a day" in third


async def test_the_model_down_at_the_due_time_still_reminds(
    backend: str, clock: ManualClock
) -> None:
    def offline_for_events(request: LLMRequest) -> LLMResponse:
        if last_message(request).role is Role.SYSTEM:
            raise LLMUnavailable("connection refused")
        return model(request)

    async with running(backend, clock, responder=offline_for_events) as bot:
        await bot.say("remind me in 10 minutes to stretch")
        clock.advance(10 * MINUTE)
        assert await bot.delivered(1) == ["Reminder: stretch"]
        assert (await history(bot.storage))[-1] == ("assistant", "Reminder: stretch")


async def test_a_group_reminder_goes_back_to_the_group(backend: str, clock: ManualClock) -> None:
    async with running(backend, clock, outbox=Outbox(DeliveryScope("telegram"))) as bot:
        group = replace(
            message(clock, "remind me in 5 minutes to vote", "telegram:7", ChatKind.GROUP),
            route='{"chat":-100,"message":3}',
        )
        assert "in this group chat" in (await bot.runtime.handle(group)).text
        await bot.say("remind me in 6 minutes to rest", user="telegram:7")
        clock.advance(6 * MINUTE)
        await bot.delivered(2)
        where = {d.reply.text.split(",")[0]: (d.chat, d.route) for d in bot.outbox.sent}
        assert where == {
            "⏰ scheduled: vote": (ChatKind.GROUP, '{"chat":-100,"message":3}'),
            "⏰ scheduled: rest": (ChatKind.PRIVATE, ""),
        }


class SlowOutbox(Outbox):
    """Holds each delivery until released (a platform that takes its time)."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = asyncio.Event()
        self.release = asyncio.Event()

    async def deliver(self, delivery: Delivery) -> bool:
        self.sending.set()
        await self.release.wait()
        return await super().deliver(delivery)


async def test_a_send_that_outlives_its_lease_is_not_sent_twice(
    backend: str, clock: ManualClock
) -> None:
    outbox = SlowOutbox()
    async with running(backend, clock, outbox=outbox) as bot:
        await bot.say("remind me in 1 minute to stretch")
        clock.advance(MINUTE)
        await asyncio.wait_for(outbox.sending.wait(), 5)
        clock.advance(LEASE + 5 * MINUTE)  # still sending when its claim runs out
        await bot.settled(clock.now() + LEASE)  # the claim was taken again, and left alone
        outbox.release.set()
        await bot.settled(None)
        await bot.scheduler.stop(5.0)  # every send under way has finished
        assert len(outbox.sent) == 1
        events = [c for role, c in await history(bot.storage) if role == "system"]
        assert len(events) == 1
        assert await statuses(bot.storage) == [ReminderStatus.SENT]


async def test_a_refused_delivery_is_marked_failed_not_retried(
    backend: str, clock: ManualClock
) -> None:
    async with running(backend, clock) as bot:
        bot.outbox.refuse = True
        await bot.say("remind me in 1 minute to stretch")
        clock.advance(MINUTE)
        await bot.delivered(1)
        clock.advance(timedelta(hours=1))
        await bot.settled(None)
        assert len(bot.outbox.sent) == 1
        assert await statuses(bot.storage) == [ReminderStatus.FAILED]


# ---------------------------------------------------------------------- check-ins


async def test_checkins_once_per_silence_and_never_when_turned_off(
    backend: str, clock: ManualClock
) -> None:
    days = timedelta(days=3)
    async with running(backend, clock, with_reminders(checkin_after=days)) as bot:
        await bot.say("hi")
        await bot.settled(clock.now() + days)
        clock.advance(days)
        [text] = await bot.delivered(1)
        assert text.startswith("⏰ check-in: the person has not written for 3 days.")
        clock.advance(days)
        await bot.settled(clock.now() + days)  # looks again in three days, sends nothing now
        assert len(bot.outbox.sent) == 1  # once per silence
        await bot.say("back again")  # a new silence starts
        clock.advance(days)
        await bot.delivered(2)
        assert "off" in await bot.say("/checkins off")
        await bot.say("and again")
        clock.advance(2 * days)
        await bot.settled(clock.now() + days)
        assert len(bot.outbox.sent) == 2


async def test_a_checkin_the_agent_skips_is_not_sent(backend: str, clock: ManualClock) -> None:
    def no_reason(request: LLMRequest) -> LLMResponse:
        if (last_message(request).content or "").startswith("check-in:"):
            return reply("[skip]")
        return model(request)

    days = timedelta(days=2)
    settings = with_reminders(checkin_after=days)
    async with running(backend, clock, settings, responder=no_reason) as bot:
        await bot.say("hi")
        clock.advance(days)
        await until_true(lambda: len(bot.llm.requests) == 2)
        await bot.settled(clock.now() + days)
        assert bot.outbox.sent == []
        agent = await bot.storage.load_agent(BRAD)
        assert agent is not None
        assert await bot.storage.sent_since(agent.id, clock.now() - days) == []


# ---------------------------------------------------------------------- bad input


async def test_bad_times_and_texts_get_short_errors_the_model_can_act_on(
    backend: str, clock: ManualClock
) -> None:
    async with running(backend, clock, with_reminders(max_pending=3)) as bot:
        cases = {
            "remind me blorp to x": "could not read 'blorp' as a time",
            "remind me 2024-01-01T09:00 to x": "is in the past",
            "remind me every weekday at 8 to x": "repeating reminders are not supported",
            "remind me tomorrow to x": "names a day but no time",
            "remind me in 5 minutes to SOMETHING HUGE": "message is 50,000 characters",
        }
        for text, error in cases.items():
            assert error in await bot.say(text), text
        results = [await bot.say(f"remind me in {i + 1} minutes to n{i}") for i in range(5)]
        assert sum(r.startswith("tool: Scheduled") for r in results) == 3
        assert "already has 3 reminders waiting" in results[-1]
        assert len(await bot.storage.list_reminders(1, pending_only=True)) == 3
        assert "don't know the time zone" in await bot.say("/timezone Mars/Olympus")
        assert "Usage: /reminders [cancel <id>]" in await bot.say("/reminders delete all")
        assert "Usage: /quiet" in await bot.say("/quiet 25:00-07:00")


async def test_a_thousand_reminders_at_once_keep_to_the_cap(
    backend: str, clock: ManualClock
) -> None:
    """A model gone wrong asks for 1,000 reminders in one step: the cap holds, each refusal is
    a short tool error, the turn ends normally, and only the capped ones are sent."""

    def flood(request: LLMRequest) -> LLMResponse:
        if last_user_text(request) == "flood" and last_message(request).role is Role.USER:
            asks = [
                ("schedule_message", {"message": f"n{i}", "at": "in 1 hour"}) for i in range(1000)
            ]
            return calls(*asks)
        return model(request)

    async with running(backend, clock, with_reminders(max_pending=20), flood) as bot:
        answer = await bot.say("flood")
        assert answer.startswith("tool: Error: this person already has 20 reminders waiting")
        agent = await bot.storage.load_agent(BRAD)
        assert agent is not None
        results = [
            m.content or "" for m in await bot.storage.all_messages(agent.id) if m.role is Role.TOOL
        ]
        assert len(results) == 1000
        assert sum(r.startswith("Scheduled #") for r in results) == 20
        clock.advance(timedelta(hours=1))
        await bot.delivered(10)  # the daily cap of unprompted messages (10) sends the first
        await bot.settled(clock.now() + timedelta(days=1))
        assert len(bot.outbox.sent) == 10


# ---------------------------------------------------------------------- control


async def test_export_includes_them_stats_count_them_and_forget_erases_them(
    backend: str, clock: ManualClock
) -> None:
    async with running(backend, clock) as bot:
        await bot.say("/timezone Asia/Tokyo")
        await bot.say("remind me in 10 minutes to stretch")
        await bot.say("remind me in 20 minutes to drink water")
        clock.advance(10 * MINUTE)
        await bot.delivered(1)
        exported = await bot.runtime.handle(message(clock, "/export"))
        extra = json.loads(exported.attachments[0].data)["agentcore"]
        assert [(r["id"], r["message"], r["status"]) for r in extra["reminders"]] == [
            (1, "stretch", "sent"),
            (2, "drink water", "pending"),
        ]
        assert extra["preferences"] == {
            "timezone": "Asia/Tokyo",
            "quiet_hours": None,
            "checkins": True,
        }
        stats = await bot.say("/admin stats")
        assert "reminders: 1 waiting, 1 sent today, 0 sent late in all, 0 failed" in stats
        await bot.say("/forget")
        assert "erased everything" in await bot.say("/forget confirm")
        clock.advance(timedelta(hours=1))
        await bot.settled(None)
        assert len(bot.outbox.sent) == 1  # the waiting one went with everything else
        assert "reminders: 0 waiting" in await bot.say("/admin stats")
        assert await bot.say("/reminders") == "You have no reminders."
