"""Recall on small hand-written histories, through both storage backends (the same engine)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentcore.messages import Role
from agentcore.records import NewMessage
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.storage.sqlite.migrate import load_migrations
from agentcore.types import AgentKey

WEEK1 = datetime(2025, 3, 3, 18, 0, tzinfo=UTC)

# Three evenings of chat between Sam (the user) and the bot, weeks apart.
HISTORY: Sequence[tuple[datetime, Sequence[tuple[Role, str]]]] = (
    (
        WEEK1,
        (
            (Role.USER, "My sister Jane just moved to Lisbon for her new job."),
            (Role.ASSISTANT, "That's exciting! How is she settling in?"),
            (Role.USER, "Great, she loves the food there. I've been painting landscapes again."),
            (Role.ASSISTANT, "Lovely. Oil or watercolour?"),
            (Role.USER, "Watercolour, mostly mountains."),
        ),
    ),
    (
        WEEK1 + timedelta(days=14),
        (
            (Role.USER, "We had dinner at a tiny Italian restaurant near the river."),
            (Role.ASSISTANT, "Sounds nice. What did you order?"),
            (Role.USER, "Mushroom risotto, it was amazing."),
            (Role.USER, "Also my team won the chess tourney on Saturday!"),
            (Role.USER, "我喜欢吃苹果，尤其是青苹果。"),
        ),
    ),
    (
        WEEK1 + timedelta(days=30),
        (
            (Role.USER, "Volunteered at the animal shelter today, walked three dogs."),
            (Role.ASSISTANT, "That's kind of you. Any favourite?"),
            (Role.USER, "A shy greyhound called Pepper."),
            (Role.USER, "Jane called, she misses the rain of home."),
        ),
    ),
)


@pytest.fixture
def store(any_storage: Storage) -> Storage:
    return any_storage


async def remember(store: Storage, who: str = "sam") -> int:
    agent = await store.create_agent(AgentKey("telegram", who), who, WEEK1, [])
    assert agent is not None
    for start, turns in HISTORY:
        await store.append_messages(
            agent.id,
            [
                NewMessage(role, text, start + timedelta(minutes=i))
                for i, (role, text) in enumerate(turns)
            ],
        )
    return agent.id


async def found(store: Storage, agent: int, query: str, **kwargs: object) -> list[str]:
    hits = await store.search_messages(agent, query, **kwargs)  # type: ignore[arg-type]
    return [h.content for h in hits]


async def test_names(store: Storage) -> None:
    agent = await remember(store)
    hits = await found(store, agent, "Where did Jane move?")
    assert hits[0] == "My sister Jane just moved to Lisbon for her new job."
    assert "Jane called, she misses the rain of home." in hits[:2]


async def test_word_forms_and_paraphrase(store: Storage) -> None:
    agent = await remember(store)
    assert (await found(store, agent, "paintings"))[0].startswith("Great, she loves the food")
    assert (await found(store, agent, "volunteering with animals"))[0].startswith("Volunteered")
    # "tournament" and "tourney" share their first letters, not a stem
    assert (await found(store, agent, "chess tournament"))[0].startswith("Also my team won")


async def test_typos(store: Storage) -> None:
    agent = await remember(store)
    assert (await found(store, agent, "that restaurnt by the river"))[0].startswith(
        "We had dinner at a tiny Italian restaurant"
    )
    assert (await found(store, agent, "greyhund"))[0] == "A shy greyhound called Pepper."


async def test_chinese_without_spaces(store: Storage) -> None:
    agent = await remember(store)
    assert await found(store, agent, "苹果") == ["我喜欢吃苹果，尤其是青苹果。"]
    assert await found(store, agent, "青苹果") == ["我喜欢吃苹果，尤其是青苹果。"]


async def test_dates_in_the_query(store: Storage) -> None:
    agent = await remember(store)
    day = (WEEK1 + timedelta(days=14)).strftime("%d %B %Y")
    hits = await found(store, agent, f"what did I eat on {day}?")
    assert sorted(hits) == sorted(t for _, t in HISTORY[1][1])  # "eat" nowhere: the day decides


async def test_date_filters_bound_the_results(store: Storage) -> None:
    agent = await remember(store)
    later = WEEK1 + timedelta(days=20)
    assert await found(store, agent, "Jane", start=later) == [
        "Jane called, she misses the rain of home."
    ]
    assert await found(store, agent, "Jane", end=later) == [
        "My sister Jane just moved to Lisbon for her new job."
    ]
    assert await found(store, agent, "Jane", start=later, end=later) == []


async def test_longer_lists_start_with_the_shorter(store: Storage) -> None:
    agent = await remember(store)
    for query in ("Jane painting dinner dogs", "the", "what did she love"):
        five = await found(store, agent, query, limit=5)
        assert five == (await found(store, agent, query, limit=20))[: len(five)]


async def test_only_matching_turns_and_no_one_elses(store: Storage) -> None:
    agent = await remember(store)
    other = await remember(store, "kim")
    assert await found(store, agent, "zebra") == []
    hits = await store.search_messages(agent, "Pepper greyhound")
    assert {h.id for h in hits}.isdisjoint(
        {h.id for h in await store.search_messages(other, "Pepper greyhound")}
    )


async def test_archival_memory_uses_the_same_engine(store: Storage) -> None:
    agent = await remember(store)
    await store.add_passage(agent, "Sam's sister Jane lives in Lisbon", ["family"], WEEK1)
    await store.add_passage(agent, "Sam paints watercolour landscapes", ["hobbies"], WEEK1)
    assert [p.content for p in await store.search_passages(agent, "painting")] == [
        "Sam paints watercolour landscapes"
    ]
    assert [p.tags for p in await store.search_passages(agent, "family")] == [("family",)]
    assert [p.content for p in await store.search_passages(agent, "watercolor")] == [
        "Sam paints watercolour landscapes"
    ]


async def test_rows_stored_before_the_search_migration_are_indexed(tmp_path: Path) -> None:
    """A database at schema version 1 (the old index) gets its rows analysed on upgrade."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in load_migrations()[0].statements:
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO agents (id, platform, user_id, created_at) VALUES (1, 't', 'sam', 0)")
    db.executemany(
        "INSERT INTO messages (agent_id, role, content, created_at) VALUES (1, ?, ?, ?)",
        [
            ("user", "I adopted a puppy named Biscuit", 1000),
            ("tool", "tool output about puppies", 2000),
            ("assistant", "Biscuit is a lovely name!", 3000),
        ],
    )
    db.execute(
        "INSERT INTO passages (agent_id, content, tags, created_at) "
        "VALUES (1, 'Biscuit is a beagle', 'pets', 0)"
    )
    db.close()
    store = await SQLiteStorage.open(path)
    try:
        hits = await store.search_messages(1, "puppies")
        assert [h.content for h in hits] == ["I adopted a puppy named Biscuit"]
        assert len(await store.search_messages(1, "Biscuit")) == 2
        assert [p.content for p in await store.search_passages(1, "beagles")] == [
            "Biscuit is a beagle"
        ]
        await store.append_messages(1, [NewMessage(Role.USER, "Biscuit chewed a shoe", WEEK1)])
        assert (await found(store, 1, "Biscuit shoe"))[0] == "Biscuit chewed a shoe"
    finally:
        await store.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT seq FROM messages ORDER BY id").fetchall() == [
        (0,),
        (None,),
        (1,),
        (2,),
    ]
    assert check.execute("SELECT search_docs FROM agents").fetchone() == (3,)
    check.close()
