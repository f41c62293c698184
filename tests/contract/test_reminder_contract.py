"""The ReminderStore contract: every backend that stores reminders must pass every test here."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agentcore.messages import Role
from agentcore.records import BlockSpec, NewMessage, UserActivity
from agentcore.schedule.model import (
    DeliveryScope,
    NewReminder,
    PersonPrefs,
    QuietHours,
    ReminderKind,
    ReminderStatus,
)
from agentcore.storage.protocols import Storage
from agentcore.types import AgentKey, ChatKind
from tests.conftest import open_backend

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)
LATE = timedelta(minutes=2)
TELEGRAM = [DeliveryScope("telegram")]
BLOCKS = [BlockSpec("human", "", 50)]


@pytest.fixture
def store(any_storage: Storage) -> Storage:
    return any_storage


async def agent(store: Storage, name: str = "alice", platform: str = "telegram") -> int:
    created = await store.create_agent(AgentKey(platform, name), name, T0, BLOCKS)
    assert created is not None
    return created.id


def new(agent_id: int, minutes: int, text: str = "call the dentist", **kw: object) -> NewReminder:
    values: dict[str, object] = {
        "agent_id": agent_id,
        "message": text,
        "due_at": T0 + timedelta(minutes=minutes),
        "created_at": T0,
        "chat": ChatKind.PRIVATE,
        "route": "",
    }
    return NewReminder(**(values | kw))  # type: ignore[arg-type]


async def test_numbers_count_per_person_and_the_cap_holds(store: Storage) -> None:
    alice, bob = await agent(store), await agent(store, "bob")
    assert [await store.add_reminder(new(alice, m), 3) for m in (10, 20, 30)] == [1, 2, 3]
    assert await store.add_reminder(new(alice, 40), 3) is None  # over the cap: nothing stored
    assert await store.add_reminder(new(bob, 5), 3) == 1
    listed = await store.list_reminders(alice, pending_only=True)
    assert [(r.number, r.due_at) for r in listed] == [
        (n, T0 + timedelta(minutes=10 * n)) for n in (1, 2, 3)
    ]
    assert await store.cancel_reminder(alice, 2)
    assert not await store.cancel_reminder(alice, 2)  # not pending any more
    assert not await store.cancel_reminder(bob, 3)  # someone else's number is not bob's
    assert await store.add_reminder(new(alice, 50), 3) == 4  # room again; numbers not reused
    every = await store.list_reminders(alice, pending_only=False)
    assert {r.number: r.status for r in every}[2] is ReminderStatus.CANCELLED


async def test_a_burst_of_adds_never_overshoots_the_cap(store: Storage) -> None:
    alice = await agent(store)
    added = await asyncio.gather(*(store.add_reminder(new(alice, i + 1), 20) for i in range(200)))
    assert sorted(n for n in added if n is not None) == list(range(1, 21))


async def test_claiming_is_exactly_once_and_in_time_order(store: Storage) -> None:
    alice, bob = await agent(store), await agent(store, "bob")
    await store.add_reminder(new(alice, 10, "second"), 10)
    await store.add_reminder(new(bob, 5, "first"), 10)
    await store.add_reminder(new(alice, 60, "later"), 10)
    assert await store.next_fire_at(TELEGRAM, LEASE) == T0 + timedelta(minutes=5)
    now = T0 + timedelta(minutes=10)
    claims = await asyncio.gather(
        *(store.claim_due(now, TELEGRAM, 10, LEASE, LATE) for _ in range(5))
    )
    taken = [d for batch in claims for d in batch]
    assert [d.message for d in sorted(taken, key=lambda d: d.fire_at)] == ["first", "second"]
    first = next(d for d in taken if d.message == "first")
    assert first.key == AgentKey("telegram", "bob") and first.kind is ReminderKind.REMINDER
    assert first.late  # claimed five minutes after its time
    assert not next(d for d in taken if d.message == "second").late
    # While claimed, the next wake-up is the claim's lease running out, or the later one.
    assert await store.next_fire_at(TELEGRAM, LEASE) == now + LEASE
    for d in taken:
        await store.finish_reminder(d.id, ReminderStatus.SENT, now)
    assert await store.next_fire_at(TELEGRAM, LEASE) == T0 + timedelta(minutes=60)
    assert await store.sent_since(alice, T0) == [now]
    assert await store.claim_due(now, TELEGRAM, 10, LEASE, LATE) == []


async def test_scopes_limit_what_is_claimed(store: Storage) -> None:
    tg, brad, other = (
        await agent(store),
        await agent(store, "brad", "console"),
        await agent(store, "else", "console"),
    )
    for who in (tg, brad, other):
        await store.add_reminder(new(who, 1), 10)
    now = T0 + timedelta(minutes=1)
    mine = await store.claim_due(now, [DeliveryScope("console", "brad")], 10, LEASE, LATE)
    assert [d.key for d in mine] == [AgentKey("console", "brad")]
    assert await store.next_fire_at([DeliveryScope("discord")], LEASE) is None
    assert await store.claim_due(now, [], 10, LEASE, LATE) == []


async def test_a_claim_left_by_a_dead_process_is_taken_again_after_the_lease(
    store: Storage,
) -> None:
    alice = await agent(store)
    await store.add_reminder(new(alice, 0), 10)
    [claimed] = await store.claim_due(T0, TELEGRAM, 10, LEASE, LATE)
    assert await store.claim_due(T0 + LEASE - timedelta(seconds=1), TELEGRAM, 10, LEASE, LATE) == []
    [again] = await store.claim_due(T0 + LEASE, TELEGRAM, 10, LEASE, LATE)
    assert again.id == claimed.id and again.late


async def test_postponing_gives_the_claim_back_with_a_new_time(store: Storage) -> None:
    alice = await agent(store)
    await store.add_reminder(new(alice, 0), 10)
    [item] = await store.claim_due(T0, TELEGRAM, 10, LEASE, LATE)
    later = T0 + timedelta(hours=8)
    await store.postpone_reminder(item.id, later, "quiet hours 22:00-07:00")
    [listed] = await store.list_reminders(alice, pending_only=True)
    assert listed.fire_at == later and listed.due_at == T0 and listed.note.startswith("quiet")
    assert await store.claim_due(later - timedelta(seconds=1), TELEGRAM, 10, LEASE, LATE) == []
    [again] = await store.claim_due(later, TELEGRAM, 10, LEASE, LATE)
    assert again.note == "quiet hours 22:00-07:00" and not again.late


async def test_checkins_once_per_silence_and_not_for_those_who_opted_out(
    store: Storage,
) -> None:
    alice, bob = await agent(store), await agent(store, "bob")
    for who, minutes in ((alice, 0), (bob, 30)):
        await store.append_messages(
            who,
            [NewMessage(Role.USER, "hi", T0 + timedelta(minutes=minutes))],
            UserActivity(T0 + timedelta(minutes=minutes), 1, "x"),
        )
    day = timedelta(days=1)
    assert await store.next_silence(T0 - day, TELEGRAM) == T0
    now = T0 + 3 * day
    assert await store.add_checkins(now, now - 4 * day, now - 2 * day, TELEGRAM) == 2
    assert await store.add_checkins(now, now - 4 * day, now - 2 * day, TELEGRAM) == 0  # once
    assert await store.list_reminders(alice, pending_only=True) == []  # check-ins are not listed
    due = await store.claim_due(now, TELEGRAM, 10, LEASE, LATE)
    assert {d.kind for d in due} == {ReminderKind.CHECKIN} and len(due) == 2
    await store.save_prefs(bob, PersonPrefs(checkins=False))
    await store.append_messages(
        alice, [NewMessage(Role.USER, "back", now)], UserActivity(now, 2, "x")
    )
    await store.append_messages(
        bob, [NewMessage(Role.USER, "back", now)], UserActivity(now, 2, "x")
    )
    later = now + 3 * day
    assert await store.next_silence(now - day, TELEGRAM) == now  # bob's does not count
    assert await store.add_checkins(later, later - 4 * day, later - 2 * day, TELEGRAM) == 1


async def test_prefs_round_trip_and_default(store: Storage) -> None:
    alice = await agent(store)
    key = AgentKey("telegram", "alice")
    assert await store.load_prefs(key) == PersonPrefs()
    lisbon = ZoneInfo("Europe/Lisbon")
    quiet = QuietHours.parse("22:30-07:00")
    await store.save_prefs(alice, PersonPrefs(lisbon, quiet, True, False))
    assert await store.load_prefs(key) == PersonPrefs(lisbon, quiet, True, False)
    await store.save_prefs(alice, PersonPrefs(lisbon, None, True, True))  # "no quiet hours"
    assert await store.load_prefs(key) == PersonPrefs(lisbon, None, True, True)
    assert (await store.reminder_counts(T0)).people_with_zone == 1


async def test_erasing_the_agent_erases_its_reminders_and_prefs(store: Storage) -> None:
    alice, bob = await agent(store), await agent(store, "bob")
    await store.add_reminder(new(alice, 5), 10)
    await store.add_reminder(new(bob, 5), 10)
    await store.save_prefs(alice, PersonPrefs(ZoneInfo("Asia/Tokyo")))
    await store.delete_agent(alice)
    assert await store.list_reminders(alice, pending_only=False) == []
    assert await store.load_prefs(AgentKey("telegram", "alice")) == PersonPrefs()
    counts = await store.reminder_counts(T0)
    assert (counts.pending, counts.people_with_zone) == (1, 0)


async def test_counts_for_operators(store: Storage) -> None:
    alice = await agent(store)
    for minutes in (0, 1, 2, 300):
        await store.add_reminder(new(alice, minutes), 10)
    now = T0 + timedelta(minutes=5)
    sent, failed, _ = await store.claim_due(now, TELEGRAM, 10, LEASE, LATE)
    await store.finish_reminder(sent.id, ReminderStatus.SENT, now)
    await store.finish_reminder(failed.id, ReminderStatus.FAILED, now, "blocked")
    counts = await store.reminder_counts(T0)
    assert (counts.pending, counts.sent_today, counts.late, counts.failed) == (1, 1, 1, 1)
    [row] = [r for r in await store.list_reminders(alice, pending_only=False) if r.note]
    assert row.status is ReminderStatus.FAILED and row.note == "blocked"


async def test_two_processes_claim_each_reminder_once(backend: str) -> None:
    """Two stores on one database (as two bot processes would be: their own connections),
    each claiming in a loop: every due reminder is taken exactly once, none is left."""
    first, second = await open_backend(backend), await open_backend(backend)
    try:
        people = [await agent(first, f"p{i}") for i in range(20)]
        for who in people:
            for minutes in range(10):
                assert await first.add_reminder(new(who, minutes), 10) is not None
        now = T0 + timedelta(minutes=10)

        async def drain(store: Storage) -> list[int]:
            taken: list[int] = []
            while batch := await store.claim_due(now, TELEGRAM, 7, LEASE, LATE):
                taken += [d.id for d in batch]
            return taken

        claims = await asyncio.gather(*(drain(s) for s in (first, second, first, second)))
        every = [i for batch in claims for i in batch]
        assert len(every) == len(set(every)) == 200
        assert await second.claim_due(now, TELEGRAM, 7, LEASE, LATE) == []
        assert await second.next_fire_at(TELEGRAM, LEASE) == now + LEASE  # all claimed
    finally:
        await first.close()
        await second.close()


async def test_two_processes_adding_at_once_keep_numbers_and_cap(backend: str) -> None:
    first, second = await open_backend(backend), await open_backend(backend)
    try:
        alice = await agent(first)
        added = await asyncio.gather(
            *(s.add_reminder(new(alice, i + 1), 25) for i in range(60) for s in (first, second))
        )
        assert sorted(n for n in added if n is not None) == list(range(1, 26))
    finally:
        await first.close()
        await second.close()
