"""The Storage contract: every backend must pass every test here."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from agentcore.messages import Role, ToolCall
from agentcore.records import (
    Actor,
    AuditEntry,
    BlockEdit,
    BlockSpec,
    ConsolidationRun,
    LLMCallRecord,
    NewMessage,
    Purpose,
    StartupRun,
    TokensSpent,
    UsageDay,
    UserActivity,
)
from agentcore.storage.protocols import Storage
from agentcore.types import AgentKey

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BLOCKS = [BlockSpec("persona", "I am helpful.", 100), BlockSpec("human", "", 50)]
HOSTILE = [
    '"',
    "*",
    "NEAR(",
    "AND",
    "OR",
    "NOT",
    ":",
    "(",
    ")",
    "((a",
    "a)",
    "^",
    "-x",
    "col:x",
    "😀",
    "猫",
    "'; DROP TABLE messages; --",
    "\x00",
    "{agent_id}: 1",
    "",
    "   ",
]
# The hostile queries holding a word of 'he said "NEAR(" and AND: (x) 😀 猫 -x ^y' (syntax and
# single letters are not words; "or" and "not" are not in it).
HOSTILE_HITS = {"NEAR(", "AND", "-x", "col:x", "猫"}


@pytest.fixture
def store(any_storage: Storage) -> Storage:
    return any_storage


async def new_agent(store: Storage, name: str = "alice", platform: str = "telegram") -> int:
    agent = await store.create_agent(AgentKey(platform, name), name.title(), T0, BLOCKS)
    assert agent is not None
    return agent.id


def user(text: str, minutes: int = 0) -> NewMessage:
    return NewMessage(Role.USER, text, T0 + timedelta(minutes=minutes))


async def test_create_agent_is_idempotent_and_has_blocks(store: Storage) -> None:
    key = AgentKey("telegram", "42")
    first = await store.create_agent(key, "Ann", T0, BLOCKS)
    assert first is not None
    assert await store.create_agent(key, "Other", T0, BLOCKS) is None
    assert [b.label for b in await store.list_blocks(first.id)] == ["persona", "human"]
    loaded = await store.load_agent(key)
    assert loaded == first and loaded.display_name == "Ann"
    assert await store.load_agent(AgentKey("telegram", "43")) is None


async def test_load_turn_reads_everything_a_turn_needs(store: Storage) -> None:
    agent = await new_agent(store)
    await store.set_shared_block("server", "Be kind.", "console:op", T0)
    ids = await store.append_messages(agent, [user("one"), user("two")])
    await store.fold_context(agent, "They said one.", ids[1], T0)
    state = await store.load_turn(AgentKey("telegram", "alice"))
    assert state is not None
    assert state.agent.summary == "They said one."
    assert [b.label for b in state.blocks] == ["persona", "human"]
    assert [s.label for s in state.shared] == ["server"]
    assert [m.content for m in state.context] == ["two"]
    assert await store.load_turn(AgentKey("telegram", "nobody")) is None


async def test_block_edits_keep_full_history(store: Storage) -> None:
    agent = await new_agent(store)
    await store.save_block(agent, "human", "Name: Ann", Actor.AGENT, "agent", T0)
    saved = await store.save_block(
        agent, "human", "Name: Ann\nLikes tea", Actor.OPERATOR, "telegram:1", T0
    )
    assert saved.version == 3 and saved.value == "Name: Ann\nLikes tea"
    history = await store.block_history(agent, "human")
    assert [(h.version, h.actor, h.old_value, h.new_value) for h in history] == [
        (2, Actor.AGENT, "", "Name: Ann"),
        (3, Actor.OPERATOR, "Name: Ann", "Name: Ann\nLikes tea"),
    ]
    with pytest.raises(KeyError):
        await store.save_block(agent, "nope", "x", Actor.AGENT, "agent", T0)


async def test_messages_round_trip_with_tool_calls_and_counts(store: Storage) -> None:
    agent = await new_agent(store)
    call = ToolCall("c1", "core_memory_append", '{"label": "human"}')
    ids = await store.append_messages(
        agent,
        [
            user("hi"),
            NewMessage(Role.ASSISTANT, None, T0, (call,)),
            NewMessage(Role.TOOL, "Saved.", T0, tool_call_id="c1"),
        ],
        UserActivity(T0, 1, "Ann"),
    )
    assert ids == sorted(ids) and len(set(ids)) == 3
    rows = await store.context_messages(agent, ids[1])
    assert [r.role for r in rows] == [Role.ASSISTANT, Role.TOOL]
    assert rows[0].tool_calls == (call,) and rows[1].tool_call_id == "c1"
    record = await store.load_agent(AgentKey("telegram", "alice"))
    assert record is not None
    assert record.message_count == 3 and record.last_user_at == T0 and record.session_count == 1


async def test_platform_timestamp_is_kept(store: Storage) -> None:
    agent = await new_agent(store)
    sent = datetime(2024, 12, 24, 18, 30, 15, 123000, tzinfo=UTC)
    await store.append_messages(agent, [NewMessage(Role.USER, "merry", sent)])
    [row] = await store.all_messages(agent)
    assert row.created_at == sent


async def test_search_is_isolated_between_agents(store: Storage) -> None:
    alice, bob = await new_agent(store, "alice"), await new_agent(store, "bob")
    await store.append_messages(alice, [user("my secret word is pineapple")])
    await store.append_messages(bob, [user("I like pineapple pizza")])
    hits = await store.search_messages(alice, "pineapple")
    assert [h.content for h in hits] == ["my secret word is pineapple"]
    assert await store.search_messages(bob, "secret") == []


async def test_search_ignores_tool_rows_and_respects_limit(store: Storage) -> None:
    agent = await new_agent(store)
    await store.append_messages(agent, [NewMessage(Role.TOOL, "kiwi result", T0, tool_call_id="x")])
    await store.append_messages(agent, [user(f"kiwi number {i}", i) for i in range(15)])
    hits = await store.search_messages(agent, "kiwi", limit=10)
    assert len(hits) == 10
    assert all(h.role is Role.USER for h in hits)


async def test_search_ties_are_newest_first(store: Storage) -> None:
    agent = await new_agent(store)
    await store.append_messages(agent, [user("walk the dog", 1), user("walk the dog", 2)])
    hits = await store.search_messages(agent, "dog")
    assert hits[0].id > hits[1].id


async def test_search_date_filter_is_inclusive(store: Storage) -> None:
    agent = await new_agent(store)
    days = [T0 + timedelta(days=d) for d in range(5)]
    await store.append_messages(
        agent, [NewMessage(Role.USER, f"tennis day {i}", d) for i, d in enumerate(days)]
    )
    hits = await store.search_messages(agent, "tennis", start=days[1], end=days[3])
    assert sorted(h.created_at for h in hits) == days[1:4]
    only_range = await store.search_messages(agent, "", start=days[4], end=days[4])
    assert [h.content for h in only_range] == ["tennis day 4"]
    assert await store.search_messages(agent, "") == []


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_queries_find_the_words_they_hold_and_nothing_else(
    store: Storage, query: str
) -> None:
    said = 'he said "NEAR(" and AND: (x) 😀 猫 -x ^y'
    agent, other = await new_agent(store), await new_agent(store, "bob")
    target, _ = await store.append_messages(agent, [user(said), user("nothing to see here", 1)])
    await store.append_messages(other, [user(said)])
    await store.add_passage(agent, said, [], T0)
    await store.add_passage(other, said, [], T0)
    found = query in HOSTILE_HITS
    assert [h.id for h in await store.search_messages(agent, query)] == ([target] if found else [])
    passages = [p.content for p in await store.search_passages(agent, query)]
    assert passages == ([said] if found else [])


async def test_passages_are_searchable_and_isolated(store: Storage) -> None:
    alice, bob = await new_agent(store, "alice"), await new_agent(store, "bob")
    await store.add_passage(alice, "Alice's sister Jane lives in Lisbon", ["family"], T0)
    await store.add_passage(bob, "Bob's sister lives in Oslo", [], T0)
    hits = await store.search_passages(alice, "sister")
    assert [p.content for p in hits] == ["Alice's sister Jane lives in Lisbon"]
    assert hits[0].tags == ("family",)
    assert [p.content for p in await store.search_passages(alice, "family")] == [hits[0].content]
    record = await store.load_agent(AgentKey("telegram", "alice"))
    assert record is not None and record.passage_count == 1


async def test_fold_and_reset_move_the_context_window(store: Storage) -> None:
    agent = await new_agent(store)
    ids = await store.append_messages(agent, [user("one"), user("two"), user("three")])
    await store.set_pressure_warned(agent, True)
    await store.fold_context(agent, "They counted.", ids[2], T0)
    record = await store.load_agent(AgentKey("telegram", "alice"))
    assert record is not None
    assert record.summary == "They counted." and not record.pressure_warned
    assert [m.content for m in await store.context_messages(agent, record.context_start_id)] == [
        "three"
    ]
    assert len(await store.search_messages(agent, "one")) == 1  # folded rows stay searchable
    await store.reset_context(agent, T0)
    record = await store.load_agent(AgentKey("telegram", "alice"))
    assert record is not None and record.summary == ""
    assert await store.context_messages(agent, record.context_start_id) == []
    assert len(await store.all_messages(agent)) == 3


async def test_shared_blocks(store: Storage) -> None:
    await store.set_shared_block("server", "Be kind.", "console:op", T0)
    await store.set_shared_block("server", "Be very kind.", "console:op", T0)
    [block] = await store.list_shared_blocks()
    assert block.value == "Be very kind."
    assert await store.delete_shared_block("server")
    assert not await store.delete_shared_block("server")


async def test_delete_agent_erases_everything(store: Storage) -> None:
    agent = await new_agent(store)
    await store.append_messages(agent, [user("forget me")])
    await store.add_passage(agent, "forget this too", [], T0)
    await store.save_block(agent, "human", "secret", Actor.AGENT, "agent", T0)
    await store.delete_agent(agent)
    assert await store.load_agent(AgentKey("telegram", "alice")) is None
    again = await new_agent(store)
    assert await store.search_messages(again, "forget") == []
    assert await store.search_passages(again, "forget") == []
    assert await store.block_history(again, "human") == []


async def test_concurrent_appends_never_interleave(store: Storage) -> None:
    agent = await new_agent(store)

    async def write(tag: str) -> list[int]:
        batch = [user(f"{tag}-{i}") for i in range(5)]
        return await store.append_messages(agent, batch)

    batches = await asyncio.gather(*(write(t) for t in "abcdefgh"))
    for ids in batches:  # each transaction's rows are contiguous
        assert ids == list(range(ids[0], ids[0] + 5))


async def test_ops_records(store: Storage) -> None:
    run = StartupRun(T0, 120.0, 55.5, (("imports", 80.0), ("db", 5.0)))
    await store.record_startup(run)
    [loaded] = await store.recent_startups(5)
    assert loaded.phases == run.phases and loaded.total_ms == 120.0
    await store.record_llm_call(LLMCallRecord(None, T0, 12.5, True, 100, 20))
    await store.add_audit(AuditEntry("console:op", "memory", "telegram:1", T0))
    [entry] = await store.recent_audit(5)
    assert (entry.actor, entry.verb, entry.target) == ("console:op", "memory", "telegram:1")
    stats = await store.stats(T0 - timedelta(days=1))
    assert stats.llm_calls_today == 1 and stats.tokens_today == 120


async def test_list_agents_most_recent_first(store: Storage) -> None:
    a, b = await new_agent(store, "a"), await new_agent(store, "b")
    await store.append_messages(a, [user("x")], UserActivity(T0, 1, "A"))
    await store.append_messages(b, [user("y")], UserActivity(T0 + timedelta(hours=1), 1, "B"))
    listed = await store.list_agents(10)
    assert [s.key.user_id for s in listed] == ["b", "a"]
    assert listed[0].message_count == 1 and listed[0].core_memory_chars == len("I am helpful.")


async def test_inbox_holds_messages_until_claimed_once(store: Storage) -> None:
    from agentcore.types import ChatKind, InboundMessage  # noqa: PLC0415

    key = AgentKey("telegram", "alice")
    inbound = InboundMessage(key, "hello", T0, "Alice", ChatKind.GROUP, route='{"chat": 5}')
    pending_id = await store.add_pending(inbound, T0 + timedelta(seconds=1))
    await store.add_pending(InboundMessage(AgentKey("discord", "9"), "yo", T0), T0)
    [waiting] = await store.list_pending("telegram")
    assert waiting.id == pending_id and waiting.message == inbound
    agent = await new_agent(store)
    activity = UserActivity(T0, 1, "Alice")
    [claimed] = await store.claim_pending(key, pending_id, agent, activity)
    assert (claimed.content, claimed.created_at, claimed.role) == ("hello", T0, Role.USER)
    assert await store.claim_pending(key, pending_id, agent, activity) == []
    assert [m.content for m in await store.all_messages(agent)] == ["hello"]
    assert await store.list_pending("telegram") == []
    assert len(await store.list_pending()) == 1


async def test_claim_takes_earlier_waiting_messages_together(store: Storage) -> None:
    from agentcore.types import InboundMessage  # noqa: PLC0415

    key, other = AgentKey("telegram", "alice"), AgentKey("telegram", "bob")
    ids = [
        await store.add_pending(
            InboundMessage(k, f"{k.user_id} {i}", T0 + timedelta(seconds=i)), T0
        )
        for i, k in enumerate([key, other, key, key])
    ]
    assert await store.count_pending(key) == 3
    agent = await new_agent(store)
    assert ids[2] is not None
    claimed = await store.claim_pending(key, ids[2], agent, UserActivity(T0, 1, "Alice"))
    assert [m.content for m in claimed] == ["alice 0", "alice 2"]
    assert [m.id for m in claimed] == sorted(m.id for m in claimed)
    assert await store.count_pending(key) == 1 and await store.count_pending(other) == 1


async def test_recent_matches_are_newest_first(store: Storage) -> None:
    agent = await new_agent(store)
    await store.append_messages(agent, [user(f"otter fact {i}", i) for i in range(5)])
    await store.append_messages(agent, [NewMessage(Role.TOOL, "otter", T0, tool_call_id="t")])
    found = await store.recent_matches(agent, "otter", 3)
    assert [h.content for h in found] == ["otter fact 4", "otter fact 3", "otter fact 2"]
    assert await store.recent_matches(agent, "!!!", 3) == []


async def test_replace_agent_swaps_everything_atomically(store: Storage) -> None:
    from agentcore.records import AgentSnapshot, NewPassage  # noqa: PLC0415

    old = await new_agent(store)
    await store.append_messages(old, [user("old message")])
    snapshot = AgentSnapshot(
        display_name="Imported",
        blocks=(BlockSpec("persona", "I am new.", 100), BlockSpec("human", "Likes jazz", 100)),
        messages=(user("first", 1), NewMessage(Role.ASSISTANT, "reply", T0), user("last", 3)),
        passages=(NewPassage("a fact", ("t",), T0),),
        in_context=2,
        summary="They met before.",
    )
    agent = await store.replace_agent(AgentKey("telegram", "alice"), snapshot, T0)
    assert agent.display_name == "Imported" and agent.summary == "They met before."
    assert agent.message_count == 3 and agent.passage_count == 1
    assert agent.last_user_at == T0 + timedelta(minutes=3)
    assert [m.content for m in await store.context_messages(agent.id, agent.context_start_id)] == [
        "reply",
        "last",
    ]
    assert await store.search_messages(agent.id, "old") == []
    assert [b.value for b in await store.list_blocks(agent.id)] == ["I am new.", "Likes jazz"]


async def test_erasure_redacts_audit_targets(store: Storage) -> None:
    agent = await new_agent(store)
    await store.add_audit(AuditEntry("telegram:99", "memory", "telegram:alice", T0))
    await store.add_audit(AuditEntry("telegram:99", "memory", "telegram:bob", T0))
    await store.delete_agent(agent)
    targets = sorted(e.target for e in await store.recent_audit(10))
    assert targets == ["telegram:(erased)", "telegram:bob"]


async def test_a_redelivered_message_is_stored_once(store: Storage) -> None:
    from agentcore.types import InboundMessage  # noqa: PLC0415

    key = AgentKey("telegram", "alice")
    first = InboundMessage(key, "hi", T0, source="update:7")
    assert await store.add_pending(first, T0) is not None
    assert await store.add_pending(first, T0) is None  # still waiting: recognised
    agent = await new_agent(store)
    [(pending)] = await store.list_pending()
    assert pending.message.source == "update:7"
    await store.claim_pending(key, pending.id, agent, UserActivity(T0, 1, "Alice"))
    assert await store.add_pending(first, T0) is None  # answered already: still recognised
    other_platform = InboundMessage(AgentKey("discord", "a"), "hi", T0, source="update:7")
    assert await store.add_pending(other_platform, T0) is not None
    unsourced = InboundMessage(key, "hi", T0)
    assert await store.add_pending(unsourced, T0) is not None
    assert await store.add_pending(unsourced, T0) is not None
    assert await store.prune_inbox(T0 + timedelta(days=2)) == 1  # only the claimed one goes
    assert await store.add_pending(first, T0) is not None  # forgotten after the window


async def test_a_persons_scope_is_the_same_store(store: Storage) -> None:
    """What a turn writes through its person's scope is there for everyone afterwards."""
    key = AgentKey("telegram", "alice")
    async with store.person(key) as mine:
        agent = await mine.create_agent(key, "Alice", T0, BLOCKS)
        assert agent is not None
        await mine.append_messages(agent.id, [user("hello")])
        await mine.save_block(agent.id, "human", "Name: Alice", Actor.AGENT, "agent", T0)
    assert [m.content for m in await store.all_messages(agent.id)] == ["hello"]
    assert [b.value for b in await store.list_blocks(agent.id)] == ["I am helpful.", "Name: Alice"]


def call(agent: int | None, day: date, tokens: tuple[int, int, int], **kw: Any) -> LLMCallRecord:
    """A successful call of ``(prompt, completion, cached)`` tokens counted toward ``day``."""
    prompt, completion, cached = tokens
    return LLMCallRecord(agent, T0, 5.0, True, prompt, completion, cached, day=day, **kw)


async def test_usage_adds_up_per_person_day_and_model(store: Storage) -> None:
    alice, bob = await new_agent(store, "alice"), await new_agent(store, "bob")
    d1, d2 = date(2025, 3, 1), date(2025, 3, 2)
    for record in (
        call(alice, d1, (100, 10, 60), model="m1"),
        call(alice, d1, (200, 20, 150), model="m1", purpose=Purpose.SUMMARY),
        call(alice, d2, (50, 5, 0), model="m2", estimated=True),
        call(bob, d2, (1000, 100, 0), model="m1"),
        call(None, d2, (7, 1, 0), model="m1"),  # serving no one: counted for everyone only
        LLMCallRecord(alice, T0, 9.0, False, day=d2, model="m1"),  # failed: not counted
    ):
        await store.record_llm_call(record)
    assert await store.usage(alice, d1) == [
        UsageDay(d1, "m1", 2, 300, 210, 30, 0),
        UsageDay(d2, "m2", 1, 50, 0, 5, 1),
    ]
    assert await store.usage(alice, d2) == [UsageDay(d2, "m2", 1, 50, 0, 5, 1)]
    everyone = await store.usage(None, d1)
    assert [(d.day, d.model, d.calls, d.tokens) for d in everyone] == [
        (d1, "m1", 2, 330),
        (d2, "m1", 2, 1108),
        (d2, "m2", 1, 55),
    ]
    assert await store.tokens_spent(alice, d2) == TokensSpent(55, 1163)
    assert await store.tokens_spent(alice, date(2025, 3, 3)) == TokensSpent(0, 0)
    assert await store.tokens_spent(None, d2) == TokensSpent(0, 1163)  # no agent yet
    top = await store.usage_by_person(d1, 5)
    assert [(p.key.user_id, p.display_name, sum(d.tokens for d in p.days)) for p in top] == [
        ("bob", "Bob", 1100),
        ("alice", "Alice", 385),
    ]
    assert [p.key.user_id for p in await store.usage_by_person(d2, 1)] == ["bob"]


async def test_erasing_a_person_erases_their_usage_but_not_everyones_total(
    store: Storage,
) -> None:
    alice, bob = await new_agent(store, "alice"), await new_agent(store, "bob")
    day = date(2025, 3, 1)
    await store.record_llm_call(call(alice, day, (100, 10, 0), model="m"))
    await store.record_llm_call(call(bob, day, (40, 2, 0), model="m"))
    await store.delete_agent(alice)
    assert await store.usage(alice, day) == []
    assert [p.key.user_id for p in await store.usage_by_person(day, 5)] == ["bob"]
    assert [d.tokens for d in await store.usage(None, day)] == [152]
    stats = await store.stats(T0 - timedelta(days=1))
    assert stats.llm_calls_today == 1  # only bob's call is left in the log


async def test_a_call_without_a_day_counts_toward_its_utc_day(store: Storage) -> None:
    agent = await new_agent(store)
    late = datetime(2025, 3, 1, 23, 30, tzinfo=UTC)
    await store.record_llm_call(LLMCallRecord(agent, late, 1.0, True, 10, 1))
    [row] = await store.usage(agent, date(2025, 3, 1))
    assert (row.day, row.tokens, row.model) == (date(2025, 3, 1), 11, "")


async def consolidation_ready(store: Storage, name: str = "alice") -> int:
    """An agent with a session: two messages, the person's last one at T0 + 1 minute."""
    agent = await new_agent(store, name)
    activity = UserActivity(T0 + timedelta(minutes=1), 1, name)
    await store.append_messages(agent, [user("I have a dog", 0), user("called Miso", 1)], activity)
    return agent


def run(agent: int, after: int, through: int, **fields: object) -> ConsolidationRun:
    return ConsolidationRun(
        agent_id=agent,
        after_id=after,
        through_id=through,
        created_at=T0 + timedelta(hours=5),
        outcome="changed",
        model="small-model",
        **fields,  # type: ignore[arg-type]
    )


async def test_unconsolidated_sessions_are_found_once_ended(store: Storage) -> None:
    agent = await consolidation_ready(store)
    await new_agent(store, "bob")  # no messages: nothing to read
    assert await store.unconsolidated(T0 + timedelta(minutes=1), 10) == []  # not ended yet
    [waiting] = await store.unconsolidated(T0 + timedelta(hours=5), 10)
    assert waiting.agent_id == agent and waiting.key == AgentKey("telegram", "alice")
    assert waiting.after_id == 0


async def test_a_consolidation_is_recorded_once_with_its_edits(store: Storage) -> None:
    agent = await consolidation_ready(store)
    [waiting] = await store.unconsolidated(T0 + timedelta(hours=5), 10)
    through = max(m.id for m in await store.all_messages(agent))
    [human] = [b for b in await store.list_blocks(agent) if b.label == "human"]
    done = run(
        agent,
        waiting.after_id,
        through,
        edits=(BlockEdit("human", "Has a dog called Miso", human.version),),
        notes=("Miso is a dog",),
        prompt_tokens=900,
        completion_tokens=40,
    )
    assert await store.record_consolidation(done)
    assert not await store.record_consolidation(done)  # the messages were read already
    assert await store.unconsolidated(T0 + timedelta(hours=5), 10) == []
    [version] = await store.block_history(agent, "human")
    assert (version.actor, version.actor_name, version.new_value) == (
        Actor.CONSOLIDATION,
        "small-model",
        "Has a dog called Miso",
    )
    [note] = await store.search_passages(agent, "Miso")
    assert note.content == "Miso is a dog" and note.tags == ("consolidation",)
    assert await store.consolidation_tokens_since(T0) == 940
    assert await store.consolidation_tokens_since(T0 + timedelta(days=1)) == 0
    # A later session is the next consolidation's.
    later = UserActivity(T0 + timedelta(days=1), 2, "alice")
    await store.append_messages(agent, [user("Miso is three", 60 * 24)], later)
    [again] = await store.unconsolidated(T0 + timedelta(days=2), 10)
    assert again.after_id == through


async def test_a_consolidation_against_an_old_block_version_changes_nothing(
    store: Storage,
) -> None:
    agent = await consolidation_ready(store)
    through = max(m.id for m in await store.all_messages(agent))
    [human] = [b for b in await store.list_blocks(agent) if b.label == "human"]
    await store.save_block(agent, "human", "Name: Alice", Actor.AGENT, "agent", T0)
    stale = run(agent, 0, through, edits=(BlockEdit("human", "Has a dog", human.version),))
    assert not await store.record_consolidation(stale)
    assert [b.value for b in await store.list_blocks(agent) if b.label == "human"] == [
        "Name: Alice"
    ]
    assert len(await store.unconsolidated(T0 + timedelta(hours=5), 10)) == 1
    assert await store.consolidation_tokens_since(T0) == 0


async def test_erasure_and_import_cover_consolidation(store: Storage) -> None:
    from agentcore.records import AgentSnapshot  # noqa: PLC0415

    agent = await consolidation_ready(store)
    through = max(m.id for m in await store.all_messages(agent))
    done = run(agent, 0, through, notes=("a note",), prompt_tokens=10)
    assert await store.record_consolidation(done)
    assert await store.consolidation_tokens_since(T0) == 10
    await store.delete_agent(agent)
    assert await store.consolidation_tokens_since(T0) == 0  # its runs went with it
    snapshot = AgentSnapshot("Imported", tuple(BLOCKS), (user("old history"),))
    imported = await store.replace_agent(AgentKey("telegram", "carol"), snapshot, T0)
    assert imported.message_count == 1
    # An imported history is not a session to consolidate.
    assert await store.unconsolidated(T0 + timedelta(days=30), 10) == []


async def test_searches_without_corrections_find_only_what_was_written(store: Storage) -> None:
    agent = await new_agent(store)
    await store.append_messages(agent, [user("We adopted a kitten called Pumpkin")])
    await store.add_passage(agent, "The kitten is called Pumpkin", [], T0)
    assert [h.content for h in await store.search_messages(agent, "kiten")] == [
        "We adopted a kitten called Pumpkin"
    ]
    assert await store.search_messages(agent, "kiten", fuzzy=False) == []
    assert len(await store.search_passages(agent, "kiten")) == 1
    assert await store.search_passages(agent, "kiten", fuzzy=False) == []
    assert len(await store.search_messages(agent, "kitten", fuzzy=False)) == 1


async def test_any_text_can_be_stored(store: Storage) -> None:
    """What a model or an import writes is stored whatever it holds (PostgreSQL cannot hold
    NUL, so a backend may drop it; nothing else is changed)."""
    agent = await new_agent(store)
    odd = "nul\x00 emoji 😀 rtl \u202e quote ' back\\slash 猫"
    [stored_id] = await store.append_messages(agent, [NewMessage(Role.ASSISTANT, odd, T0)])
    await store.save_block(agent, "human", odd, Actor.AGENT, "agent", T0)
    await store.add_passage(agent, odd, [odd], T0)
    [message] = await store.context_messages(agent, stored_id)
    [_, block] = await store.list_blocks(agent)
    [passage] = await store.all_passages(agent)
    for text in (message.content, block.value, passage.content):
        assert text is not None and text.replace("\x00", "") == odd.replace("\x00", "")
    assert [h.id for h in await store.search_messages(agent, "emoji 猫")] == [stored_id]


async def test_a_turn_stays_open_until_its_reply_is_sent(store: Storage) -> None:
    """A turn that took up messages is open until finished: first without its reply (it must
    run again), then with the reply it stored (only sending is left)."""
    from agentcore.types import InboundMessage  # noqa: PLC0415

    key, other = AgentKey("telegram", "alice"), AgentKey("telegram", "bob")
    first, second = (InboundMessage(key, t, T0, route=f"r{t}") for t in ("one", "two"))
    ids = [await store.add_pending(m, T0) for m in (first, second)]
    await store.add_pending(InboundMessage(other, "hi", T0), T0)
    agent = await new_agent(store)
    assert await store.open_turn(key) is None
    await store.claim_pending(key, ids[1] or 0, agent, UserActivity(T0, 1, "Alice"))
    stopped = await store.open_turn(key)
    assert stopped is not None and stopped.reply is None
    assert (stopped.message.key, stopped.message.route) == (key, "rtwo")  # the latest one
    assert [p.id for p in await store.list_unfinished("telegram")] == [ids[1]]
    assert await store.list_unfinished("discord") == []
    step = [NewMessage(Role.ASSISTANT, "hello both", T0), user("not the reply")]
    stored = await store.store_reply(key, agent, step)
    assert [m.id for m in (await store.all_messages(agent))[-2:]] == stored
    stopped = await store.open_turn(key)
    assert stopped is not None and stopped.reply == "hello both"
    assert await store.open_turn(other) is None  # nobody else's turn is touched
    await store.finish_turn(key)
    assert await store.open_turn(key) is None and await store.list_unfinished("telegram") == []
    assert await store.count_pending(other) == 1


async def test_a_role_is_held_by_one_holder_at_a_time(store: Storage) -> None:
    poller = await store.take_role("telegram poller", wait=False)
    assert poller is not None and await poller.alive()
    assert await store.take_role("telegram poller", wait=False) is None
    other = await store.take_role("discord shard 0/1", wait=False)
    assert other is not None
    standby = asyncio.ensure_future(store.take_role("telegram poller", wait=True))
    await asyncio.sleep(0.05)
    assert not standby.done()  # it waits for the holder
    await poller.release()
    successor = await asyncio.wait_for(standby, 10)
    assert successor is not None and await successor.alive()
    for role in (successor, other):
        await role.release()


async def test_pace_spaces_events_by_the_interval(store: Storage) -> None:
    """Calls made together get moments an interval apart: the k-th returns no earlier than
    k intervals after they were made (however late a busy machine wakes the ones before it)."""
    done: list[float] = []

    async def paced() -> None:
        await store.pace("identify", 0.2)
        done.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(paced(), paced(), paced())
    early = 0.005  # the event loop may run a timer up to its clock's resolution early
    assert all(at - started >= k * 0.2 - early for k, at in enumerate(sorted(done))), done


async def test_the_prompt_view_is_kept_with_the_agent(store: Storage) -> None:
    key = AgentKey("telegram", "alice")
    agent = await new_agent(store)
    assert (await store.load_agent(key)).prefix_blocks == ""  # type: ignore[union-attr]
    await store.set_prefix_blocks(agent, '{"blocks": [["human", "", "Ann", 50, false]]}')
    state = await store.load_turn(key)
    assert state is not None and state.agent.prefix_blocks.startswith('{"blocks": [["human"')
    await store.set_prefix_blocks(agent, "")
    assert (await store.load_agent(key)).prefix_blocks == ""  # type: ignore[union-attr]
