"""The scheduler: sends each reminder once, when it is due, through the person's agent.

It sleeps until the earliest due time (woken early by the doorbell when a reminder is added or
an adapter starts), claims what is due in one atomic statement (so two processes never both
take one), and for each runs a normal turn of that person's agent on a system event under the
person's turn lock; the answer goes out through the adapter (``Outbox``) of their platform.
Quiet hours and the daily cap postpone; a reminder claimed long after its time (the bot was
down) is marked late and the agent is told. A claim whose process died is taken up again once
its lease runs out; one this process is still sending (a slow send, or the machine slept) is
left to that send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from agentcore.clock import Timer
from agentcore.llm.base import LLMError
from agentcore.outbox import Delivery, Outbox
from agentcore.schedule.doorbell import Doorbell
from agentcore.schedule.model import (
    DeliveryScope,
    DueReminder,
    PersonPrefs,
    ReminderKind,
    ReminderStatus,
)
from agentcore.settings import ReminderSettings
from agentcore.storage.protocols import ReminderStore, StorageError
from agentcore.types import AgentKey, Reply, SystemEvent

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)  # a claim older than this was left by a process that died
LATE_AFTER = timedelta(minutes=2)  # claimed this long after its time: the bot was down
DAY = timedelta(days=1)
SKIP = "[skip]"  # a check-in the agent decided not to send


@dataclass
class _PersonQueue:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # tasks holding or waiting for the lock


class EventRunner(Protocol):
    async def run_event(self, event: SystemEvent) -> str | None: ...


def _stamp(when: datetime, tz: ZoneInfo) -> str:
    return f"{when.astimezone(tz):%Y-%m-%d %H:%M %Z}"


def event_text(item: DueReminder, tz: ZoneInfo, now: datetime) -> str:
    """What the agent is told when ``item`` fires."""
    if item.kind is ReminderKind.CHECKIN:
        days = (now - item.due_at).days
        return (
            f"check-in: the person has not written for {days} days. Write to them only if "
            "your memory gives you a real reason (something they planned, a follow-up); "
            f"otherwise answer exactly {SKIP}"
        )
    text = f"scheduled: {item.message}, set on {_stamp(item.created_at, tz)}"
    if item.late:
        text += (
            f" (late: it was due at {_stamp(item.fire_at, tz)} but the bot was offline; "
            "mention the delay)"
        )
    elif item.note:
        text += f" (asked for {_stamp(item.due_at, tz)}; postponed: {item.note})"
    return text


class Scheduler:
    def __init__(
        self,
        *,
        store: ReminderStore,
        runner: EventRunner,
        clock: Timer,
        settings: ReminderSettings,
        default_zone: ZoneInfo,
        doorbell: Doorbell,
        capacity: int = 32,
    ) -> None:
        self._store = store
        self._runner = runner
        self._clock = clock
        self._settings = settings
        self._default_zone = default_zone
        self._doorbell = doorbell
        self._capacity = capacity
        self._outboxes: dict[DeliveryScope, Outbox] = {}
        self._firing: set[asyncio.Task[None]] = set()
        self._sending: set[int] = set()  # ids of the reminders those tasks are sending
        # A claim and the end of a send (finish, postpone) take turns, so a claim that takes
        # again a reminder being sent (its lease ran out meanwhile) is seen while its id is
        # still in ``_sending``, never after that send ended: it is never sent twice from here.
        self._claims = asyncio.Lock()
        # One reminder at a time per person, in due order, so the daily cap counts each send.
        self._people: dict[AgentKey, _PersonQueue] = {}
        self._task: asyncio.Task[None] | None = None
        self.asleep = asyncio.Event()  # set while waiting for the next due time (for tests)
        self.sleeping_until: datetime | None = None  # None: until the doorbell rings

    # ----------------------------------------------------------------- lifecycle

    def attach(self, outbox: Outbox) -> None:
        """Deliver the reminders of ``outbox.scope`` through it from now on."""
        self._outboxes[outbox.scope] = outbox
        self._doorbell.ring()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self, grace: float) -> None:
        """Stop claiming; give reminders being sent ``grace`` seconds, then cancel them (their
        claims run out and another start sends them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._firing:
            _, late = await asyncio.wait(set(self._firing), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)

    async def _run(self) -> None:
        while True:
            self._doorbell.clear()
            try:
                await self._fire_due()
                wake_at = await self._next_wake()
            except StorageError as exc:
                log.warning("scheduler: cannot read reminders, trying again in a minute: %s", exc)
                wake_at = self._clock.now() + timedelta(minutes=1)
            except Exception:  # a bug must not stop reminders for good
                log.exception("scheduler: unexpected error, trying again in a minute")
                wake_at = self._clock.now() + timedelta(minutes=1)
            await self._sleep(wake_at)

    async def _sleep(self, until: datetime | None) -> None:
        self.sleeping_until = until
        self.asleep.set()
        waits = [asyncio.ensure_future(self._doorbell.wait())]
        if until is not None:
            waits.append(asyncio.ensure_future(self._clock.sleep_until(until)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.asleep.clear()
            for wait in waits:
                wait.cancel()

    # ----------------------------------------------------------------- claiming

    @property
    def _scopes(self) -> list[DeliveryScope]:
        return list(self._outboxes)

    async def _fire_due(self) -> None:
        """Claim what is due and start sending it, at most ``capacity`` at a time."""
        scopes = self._scopes
        if not scopes:
            return
        await self._queue_checkins(scopes)
        while True:
            free = self._capacity - len(self._firing)
            if free <= 0:
                await asyncio.wait(set(self._firing), return_when=asyncio.FIRST_COMPLETED)
                continue
            async with self._claims:
                now = self._clock.now()
                due = await self._store.claim_due(now, scopes, free, LEASE, LATE_AFTER)
                for item in due:
                    self._start_sending(item)
            if len(due) < free:
                return

    def _start_sending(self, item: DueReminder) -> None:
        if item.id in self._sending:
            # Its lease ran out while this process is still sending it (a slow turn or
            # platform, or the machine slept): that send ends it; a second would repeat it.
            log.warning("scheduler: reminder %d outlived its lease; not sent again", item.id)
            return
        self._sending.add(item.id)
        task = asyncio.create_task(self._fire(item), name=f"reminder-{item.id}")
        self._firing.add(task)
        task.add_done_callback(self._firing.discard)

    async def _next_wake(self) -> datetime | None:
        scopes = self._scopes
        if not scopes:
            return None
        wake = [await self._store.next_fire_at(scopes, LEASE)]
        after = self._settings.checkin_after
        if after is not None:
            # Nobody's silence can grow long enough before the earliest known one does, or
            # before ``after`` from now (someone who writes later is silent for less).
            now = self._clock.now()
            silence = await self._store.next_silence(now - after, scopes)
            wake += [now + after, silence + after if silence is not None else None]
        return min((w for w in wake if w is not None), default=None)

    async def _queue_checkins(self, scopes: Sequence[DeliveryScope]) -> None:
        """A check-in for everyone whose silence just grew long enough (and not far longer:
        people gone for months are not written to out of the blue)."""
        after = self._settings.checkin_after
        if after is None:
            return
        now = self._clock.now()
        added = await self._store.add_checkins(now, now - 2 * after, now - after, scopes)
        if added:
            log.info("scheduler: %d check-in(s) due", added)

    # ----------------------------------------------------------------- sending

    async def _fire(self, item: DueReminder) -> None:
        queue = self._people.setdefault(item.key, _PersonQueue())
        queue.users += 1
        try:
            async with queue.lock:
                await self._send(item)
        except StorageError as exc:  # the claim runs out and the reminder is tried again
            log.warning("scheduler: reminder %d stalled on storage: %s", item.id, exc)
        except Exception:
            log.exception("scheduler: reminder %d failed", item.id)
            with contextlib.suppress(StorageError):
                await self._finish(item, ReminderStatus.FAILED, "internal error")
        finally:
            self._sending.discard(item.id)
            queue.users -= 1
            if not queue.users:
                del self._people[item.key]
            self._doorbell.ring()  # its claim is gone: the next wake-up may be later now

    async def _send(self, item: DueReminder) -> None:
        outbox = next((o for s, o in self._outboxes.items() if s.covers(item.key)), None)
        if outbox is None:  # its adapter stopped meanwhile: give it back as it was
            await self._postpone(item, item.fire_at, item.note)
            return
        now = self._clock.now()
        prefs = await self._store.load_prefs(item.key)
        zone = prefs.timezone or self._default_zone
        held = await self._held_until(item, prefs, zone, now)
        if held is not None:
            until, why = held
            log.info("scheduler: reminder %d postponed to %s (%s)", item.id, until, why)
            await self._postpone(item, until, why)
            return
        text = await self._answer(item, zone, now)
        if text is None or (item.kind is ReminderKind.CHECKIN and _skipped(text)):
            await self._finish(item, ReminderStatus.SKIPPED)
            return
        delivered = await outbox.deliver(Delivery(item.key, Reply(text), item.chat, item.route))
        status = ReminderStatus.SENT if delivered else ReminderStatus.FAILED
        await self._finish(item, status)

    async def _finish(self, item: DueReminder, status: ReminderStatus, note: str = "") -> None:
        async with self._claims:
            await self._store.finish_reminder(item.id, status, self._clock.now(), note)

    async def _postpone(self, item: DueReminder, until: datetime, why: str) -> None:
        async with self._claims:
            await self._store.postpone_reminder(item.id, until, why)

    async def _held_until(
        self, item: DueReminder, prefs: PersonPrefs, zone: ZoneInfo, now: datetime
    ) -> tuple[datetime, str] | None:
        """When ``item`` may go out instead, and why, if not now (daily cap, quiet hours)."""
        at, why = now, ""
        cap = self._settings.max_unprompted_per_day
        sent = await self._store.sent_since(item.agent_id, now - DAY)
        if len(sent) >= cap:
            at, why = sent[len(sent) - cap] + DAY, f"at most {cap} unprompted messages a day"
        quiet = prefs.quiet_hours if prefs.quiet_set else self._settings.quiet_hours
        ends = quiet.ends_after(at, zone) if quiet is not None else None
        if ends is not None:
            at, why = ends, f"quiet hours {quiet}"
        return (at, why) if at > now else None

    async def _answer(self, item: DueReminder, zone: ZoneInfo, now: datetime) -> str | None:
        fallback = f"Reminder: {item.message}" if item.kind is ReminderKind.REMINDER else ""
        event = SystemEvent(
            item.key, event_text(item, zone, now), now, item.chat, item.route, fallback
        )
        try:
            return await self._runner.run_event(event)
        except LLMError as exc:  # a check-in without a model is simply not sent
            log.warning("scheduler: check-in for %s skipped, model unreachable: %s", item.key, exc)
            return None


def _skipped(text: str) -> bool:
    return text.strip().lower().strip(".") in {SKIP, SKIP.strip("[]")}
