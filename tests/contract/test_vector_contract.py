"""The VectorStore contract (embeddings beside messages and passages, search by meaning):
every backend must pass every test here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import numpy as np
import pytest

from agentcore.messages import Role
from agentcore.records import NewMessage, NewVector, VectorKind
from agentcore.search.meaning import MIN_ROWS, QueryVector
from agentcore.search.vectors import quantize, unit
from agentcore.storage.protocols import Storage
from agentcore.types import AgentKey
from tests.contract.test_storage_contract import T0, new_agent, user


@pytest.fixture
def store(any_storage: Storage) -> Storage:
    """Each backend in turn (``any_storage``, tests/conftest.py)."""
    return any_storage


class Meanings:
    """A query embedder that knows a few queries' vectors (4 dimensions)."""

    def __init__(self, model_id: int, known: Mapping[str, Sequence[float]]) -> None:
        self._model_id = model_id
        self._known = known
        self.asked: list[str] = []

    async def query_vector(self, text: str) -> QueryVector | None:
        self.asked.append(text)
        values = self._known.get(text)
        if values is None:
            return None
        return QueryVector(self._model_id, unit(np.asarray(values, dtype=np.float32)))


def int8(*values: float) -> bytes:
    return quantize(np.asarray(values, dtype=np.float32))


async def test_models_are_registered_once_and_keep_their_first_dimension(store: Storage) -> None:
    first = await store.embedding_model("e5-small")
    again = await store.embedding_model("e5-small")
    other = await store.embedding_model("text-embedding-3-small")
    assert first == again and first.dims is None and other.id != first.id
    assert await store.set_embedding_dims(first.id, 384) == 384
    assert await store.set_embedding_dims(first.id, 1536) == 384  # the first one stays
    assert (await store.embedding_model("e5-small")).dims == 384


async def test_unembedded_rows_until_their_vectors_are_stored(store: Storage) -> None:
    ann = await new_agent(store, "ann")
    bob = await new_agent(store, "bob")
    tool = NewMessage(Role.TOOL, "tool output", T0, tool_call_id="c1")
    [a1, _, a3] = await store.append_messages(ann, [user("our new dog"), tool, user("pasta")])
    [b1] = await store.append_messages(bob, [user("the weather")])
    p1 = await store.add_passage(ann, "Ann has a dog called Rex", ["pets"], T0)
    model = await store.embedding_model("m")

    waiting = await store.unembedded(VectorKind.MESSAGE, model.id, 0, 10)
    assert [(u.id, u.agent_id, u.text) for u in waiting] == [
        (a1, ann, "our new dog"),  # tool results are not searchable, so not embedded
        (a3, ann, "pasta"),
        (b1, bob, "the weather"),
    ]
    assert [u.id for u in await store.unembedded(VectorKind.MESSAGE, model.id, a1, 1)] == [a3]
    [passage] = await store.unembedded(VectorKind.PASSAGE, model.id, 0, 10)
    assert (passage.id, passage.agent_id, passage.text) == (p1, ann, "Ann has a dog called Rex")

    stored = await store.store_vectors(
        VectorKind.MESSAGE,
        model.id,
        [NewVector(a1, ann, int8(1, 0, 0, 0)), NewVector(b1, ann, int8(0, 1, 0, 0))],
    )
    assert stored == 1  # b1 is not Ann's message: nothing is stored for it
    assert [u.id for u in await store.unembedded(VectorKind.MESSAGE, model.id, 0, 10)] == [a3, b1]
    other = await store.embedding_model("another model")
    assert len(await store.unembedded(VectorKind.MESSAGE, other.id, 0, 10)) == 3

    [progress, _] = await store.embedding_progress()
    assert (progress.model, progress.messages, progress.messages_embedded) == ("m", 3, 1)
    assert (progress.passages, progress.passages_embedded) == (1, 0)


async def test_a_vector_is_replaced_by_a_new_one(store: Storage) -> None:
    ann = await new_agent(store, "ann")
    [a1] = await store.append_messages(ann, [user("hello")])
    old, new = await store.embedding_model("old"), await store.embedding_model("new")
    await store.store_vectors(VectorKind.MESSAGE, old.id, [NewVector(a1, ann, int8(1, 0))])
    await store.store_vectors(VectorKind.MESSAGE, new.id, [NewVector(a1, ann, int8(0, 1))])
    assert await store.unembedded(VectorKind.MESSAGE, old.id, 0, 10) != []
    assert await store.unembedded(VectorKind.MESSAGE, new.id, 0, 10) == []


async def test_search_ranks_in_what_is_near_in_meaning_for_this_person_only(
    store: Storage,
) -> None:
    ann = await new_agent(store, "ann")
    bob = await new_agent(store, "bob")
    [dog, paris, lunch] = await store.append_messages(
        ann, [user("our new dog", 1), user("I went to Paris", 2), user("soup for lunch", 3)]
    )
    [bobs] = await store.append_messages(bob, [user("my puppy chews shoes", 1)])
    note = await store.add_passage(ann, "Ann adopted a dog in May", [], T0)
    model = await store.embedding_model("m")
    await store.store_vectors(
        VectorKind.MESSAGE,
        model.id,
        [
            NewVector(dog, ann, int8(1, 0.1, 0, 0)),
            NewVector(paris, ann, int8(0, 1, 0, 0)),
            NewVector(lunch, ann, int8(0, 0, 1, 0)),
        ],
    )
    await store.store_vectors(
        VectorKind.MESSAGE, model.id, [NewVector(bobs, bob, int8(1, 0, 0, 0))]
    )
    await store.store_vectors(
        VectorKind.PASSAGE, model.id, [NewVector(note, ann, int8(1, 0, 0, 0))]
    )
    assert await store.search_messages(ann, "my puppy") == []  # no shared word: lexical finds none

    meanings = Meanings(model.id, {"my puppy": [1, 0, 0, 0], "Paris": [0, 1, 0, 0]})
    store.search_by_meaning(meanings)
    found = await store.search_messages(ann, "my puppy", limit=1)
    assert [h.id for h in found] == [dog]  # Bob's puppy is nearer, but it is not Ann's
    assert (await store.search_messages(ann, "Paris", limit=3))[0].id == paris
    # A date range still bounds what is found; the nearest row outside it gives way.
    later = await store.search_messages(ann, "my puppy", start=T0 + timedelta(minutes=2), limit=1)
    assert len(later) == 1 and later[0].id in (paris, lunch)
    assert [p.id for p in await store.search_passages(ann, "my puppy", limit=1)] == [note]
    assert [h.id for h in await store.recent_matches(ann, "my puppy", 1)] == [dog]
    assert await store.search_messages(ann, "lunch", limit=3) != []  # no vector: lexical only
    assert "lunch" in meanings.asked
    async with store.person(AgentKey("telegram", "ann")) as held:
        assert [h.id for h in await held.search_messages(ann, "my puppy", limit=1)] == [dog]


async def test_forgetting_erases_the_vectors(store: Storage) -> None:
    ann = await new_agent(store, "ann")
    [dog] = await store.append_messages(ann, [user("our new dog")])
    note = await store.add_passage(ann, "Ann adopted a dog", [], T0)
    model = await store.embedding_model("m")
    await store.store_vectors(VectorKind.MESSAGE, model.id, [NewVector(dog, ann, int8(1, 0))])
    await store.store_vectors(VectorKind.PASSAGE, model.id, [NewVector(note, ann, int8(1, 0))])
    await store.delete_agent(ann)
    [progress] = await store.embedding_progress()
    assert (progress.messages_embedded, progress.passages_embedded) == (0, 0)
    # A vector made from a row read before the erasure is not stored after it.
    assert (
        await store.store_vectors(VectorKind.MESSAGE, model.id, [NewVector(dog, ann, int8(1, 0))])
        == 0
    )
    again = await new_agent(store, "ann")
    store.search_by_meaning(Meanings(model.id, {"puppy": [1, 0]}))
    assert await store.search_messages(again, "puppy") == []


async def test_the_query_is_embedded_without_the_words_most_of_the_persons_rows_hold(
    store: Storage,
) -> None:
    ann = await new_agent(store, "ann")
    chat = [user(f"Melanie: chat number {i}", i) for i in range(MIN_ROWS)]
    chat.append(user("Caroline: I painted the sunrise over the lake", MIN_ROWS))
    ids = await store.append_messages(ann, chat)
    model = await store.embedding_model("m")
    await store.store_vectors(
        VectorKind.MESSAGE, model.id, [NewVector(i, ann, int8(1, 0, 0, 0)) for i in ids]
    )
    meanings = Meanings(model.id, {"When did see a dawn?": [1, 0, 0, 0]})
    store.search_by_meaning(meanings)
    await store.search_messages(ann, "When did Melanie see a dawn?", limit=1)
    assert meanings.asked == ["When did see a dawn?"]  # "Melanie" is in almost every row
    await store.search_messages(ann, "Melanie", limit=1)
    assert meanings.asked[-1] == "Melanie"  # nothing else to embed: as written
    bob = await new_agent(store, "bob")
    await store.append_messages(bob, [user("Melanie: hello", 1), user("Melanie: again", 2)])
    await store.search_messages(bob, "When did Melanie see a dawn?", limit=1)
    assert meanings.asked[-1] == "When did Melanie see a dawn?"  # too few rows to judge
