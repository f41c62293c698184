"""The search index protocol (``agentcore.search.engine.TermIndex``) on every backend: the steps
the shared engine runs, checked one by one where the storage contract checks whole searches."""

from __future__ import annotations

import pytest

from agentcore.search import engine
from agentcore.search.plan import Uncommon
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.postgres import search as pg_search
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import search as sqlite_search
from tests.contract.test_storage_contract import T0, new_agent, user


@pytest.fixture
def store(any_storage: Storage) -> Storage:
    return any_storage


def message_index(store: Storage, agent_id: int) -> engine.MessageIndex:
    # The index is the backend's own, built on its connection, as its search_messages does.
    db = store._db  # type: ignore[attr-defined]
    if isinstance(store, PostgresStorage):
        return pg_search.MessageIndex(db, agent_id)
    return sqlite_search.MessageIndex(db, agent_id)


def passage_index(store: Storage, agent_id: int) -> engine.PassageIndex:
    db = store._db  # type: ignore[attr-defined]
    if isinstance(store, PostgresStorage):
        return pg_search.PassageIndex(db, agent_id)
    return sqlite_search.PassageIndex(db, agent_id)


async def test_holding_reads_the_uncommon_keys_rows_and_stops_at_the_cap(store: Storage) -> None:
    alice, bob = await new_agent(store, "alice"), await new_agent(store, "bob")
    rows = [user(f"kiwi day {i}" + (" pear" if i % 20 == 0 else ""), i) for i in range(60)]
    ids = await store.append_messages(alice, rows)
    await store.append_messages(bob, [user("pear and plum")])
    index = message_index(store, alice)
    keys = ["kiwi", "pear", "pea*", "plum"]

    held = await index.holding(keys, Uncommon(share=0.25, few=10, most=2000))

    assert held.totals.docs == 60
    assert held.cap == 16  # 0.25 * 60, plus one
    pears = ids[::20]  # every twentieth says pear
    assert sorted(held.ids["pear"]) == sorted(held.ids["pea*"]) == pears
    assert len(held.ids["kiwi"]) == held.cap  # more than the cap hold it: not all read
    assert set(held.ids["kiwi"]) <= set(ids)
    assert "plum" not in held.ids  # only bob wrote it
    totals, df = await index.counts(keys)
    assert totals == held.totals and df == {"kiwi": 60, "pear": 3, "pea*": 3, "plum": 0}
    assert sorted(i for k, i in await index.matches(["pear"])) == pears


async def test_holding_with_a_floor_and_a_ceiling(store: Storage) -> None:
    agent = await new_agent(store)
    await store.append_messages(agent, [user(f"kiwi {i}", i) for i in range(30)])
    index = message_index(store, agent)

    few = await index.holding(["kiwi"], Uncommon(share=0.25, few=50, most=2000))
    most = await index.holding(["kiwi"], Uncommon(share=0.25, few=5, most=3))

    assert few.cap == 51 and len(few.ids["kiwi"]) == 30  # a short history: all of it
    assert most.cap == 4 and len(most.ids["kiwi"]) == 4


async def test_holding_for_nobody_and_for_passages(store: Storage) -> None:
    agent = await new_agent(store)
    note = await store.add_passage(agent, "The kitten is called Pumpkin", [], T0)
    await store.add_passage(agent, "Dinner on Friday", [], T0)

    nobody = await message_index(store, agent + 1000).holding(["kitten"], Uncommon())
    held = await passage_index(store, agent).holding(["kitten", "friday"], Uncommon())

    assert nobody.totals.docs == 0 and nobody.ids == {}
    assert held.totals.docs == 2 and held.cap == 51
    assert held.ids["kitten"] == [note]
    assert len(held.ids["friday"]) == 1
