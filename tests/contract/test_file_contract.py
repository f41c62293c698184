"""The FileStore contract (files people send, documents read into archival memory) and passage
paging: every backend must pass every test here."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentcore.records import DocState, DocumentPassage, FileUpdate, UserActivity
from agentcore.storage.protocols import Storage
from agentcore.types import AgentKey, FileKind, InboundFile, InboundMessage
from tests.contract.test_storage_contract import T0, new_agent


@pytest.fixture
def store(any_storage: Storage) -> Storage:
    """Each backend in turn (``any_storage``, tests/conftest.py)."""
    return any_storage


ANN = AgentKey("telegram", "ann")
PHOTO = InboundFile("cat.jpg", "image/jpeg", b"\xff\xd8jpeg bytes")
REPORT = InboundFile("report.pdf", "application/pdf", b"%PDF-1.7 bytes")


def sent(text: str, *files: InboundFile, source: str = "") -> InboundMessage:
    return InboundMessage(ANN, text, T0, files=files, source=source)


async def waiting_with_files(store: Storage, *files: InboundFile, text: str = "") -> int:
    pending = await store.add_pending(sent(text, *files), T0)
    assert pending is not None
    return pending


async def test_files_wait_with_their_message_until_prepared(store: Storage) -> None:
    pending = await waiting_with_files(store, PHOTO, REPORT, text="look")
    waiting = await store.pending_files(ANN, pending)
    assert [(w.pending_id, w.caption, w.file.filename) for w in waiting] == [
        (pending, "look", "cat.jpg"),
        (pending, "look", "report.pdf"),
    ]
    photo, report = (w.file for w in waiting)
    assert (
        photo.kind is FileKind.IMAGE and photo.data == PHOTO.data and photo.size == len(PHOTO.data)
    )
    assert report.kind is FileKind.DOCUMENT and report.message_id is None
    assert await store.pending_files(ANN, pending - 1) == []
    assert await store.pending_files(AgentKey("telegram", "bob"), pending) == []
    await store.prepare_pending(
        pending,
        "[photo: a cat]\n[document: report.pdf]\nlook",
        [
            FileUpdate(photo.id, "a cat", b"smaller", mime_type="image/png"),
            FileUpdate(report.id, "", None, DocState.READING, 12),
        ],
    )
    assert await store.pending_files(ANN, pending) == []  # prepared once
    [waiting_message] = await store.list_pending()
    assert waiting_message.message.text == "[photo: a cat]\n[document: report.pdf]\nlook"


async def test_a_claim_moves_the_files_to_the_agent_and_its_message(store: Storage) -> None:
    first = await waiting_with_files(store, PHOTO)
    await store.add_pending(sent("no files"), T0)
    last = await waiting_with_files(store, REPORT)
    for item in await store.pending_files(ANN, last):
        await store.prepare_pending(item.pending_id, "[file]", [FileUpdate(item.file.id, "")])
    agent = await new_agent(store, "ann")
    claimed = await store.claim_pending(ANN, last, agent, UserActivity(T0, 1, "Ann"))
    assert len(claimed) == 3 and first < last
    images = await store.message_files(agent, [m.id for m in claimed], FileKind.IMAGE)
    assert [(f.filename, f.message_id, f.data) for f in images] == [
        ("cat.jpg", claimed[0].id, PHOTO.data)
    ]
    documents = await store.message_files(agent, [claimed[2].id], FileKind.DOCUMENT)
    assert [f.message_id for f in documents] == [claimed[2].id]
    assert await store.message_files(agent, [claimed[1].id], FileKind.IMAGE) == []
    listed = await store.list_files(agent)
    assert [f.filename for f in listed] == ["cat.jpg", "report.pdf"]
    assert all(f.data == b"" for f in listed)  # bytes only where asked for
    assert await store.file_data(agent, listed[1].id) == REPORT.data
    other = await new_agent(store, "bob")
    assert await store.file_data(other, listed[1].id) is None  # never another person's
    assert await store.message_files(other, [m.id for m in claimed], FileKind.IMAGE) == []


async def claimed_document(store: Storage) -> tuple[int, int]:
    pending = await waiting_with_files(store, REPORT)
    [item] = await store.pending_files(ANN, pending)
    update = FileUpdate(item.file.id, "", None, DocState.READING, 3)
    await store.prepare_pending(pending, "[document]", [update])
    agent = await new_agent(store, "ann")
    await store.claim_pending(ANN, pending, agent, UserActivity(T0, 1, "Ann"))
    return agent, item.file.id


async def test_a_document_is_read_page_by_page_into_archival_memory(store: Storage) -> None:
    agent, file_id = await claimed_document(store)
    [reading] = await store.list_files(agent, DocState.READING)
    assert (reading.pages, reading.pages_read) == (3, 0)
    first = [
        DocumentPassage("The lighthouse keeper is Ottilie.", 1, T0),
        DocumentPassage("Her cat is called Biscuit.", 2, T0),
    ]
    assert await store.add_document_passages(agent, file_id, first, 2)
    # A second reader of the same pages (another process took the reading up meanwhile)
    # files nothing again.
    assert await store.add_document_passages(agent, file_id, first, 2)
    assert await store.add_document_passages(agent, file_id, [], 3)
    await store.finish_document(agent, file_id, DocState.READY, "")
    [ready] = await store.list_files(agent, DocState.READY)
    assert (ready.state, ready.pages_read) == (DocState.READY, 3)
    assert await store.list_files(agent, DocState.READING) == []
    [hit] = await store.search_passages(agent, "lighthouse keeper")
    assert (hit.source, hit.page) == ("report.pdf", 1)
    # Both pages are from report.pdf; the one whose page was asked for comes first.
    by_page, *_ = await store.search_passages(agent, "page 2 report")
    assert by_page.content == "Her cat is called Biscuit."
    loaded = await store.load_agent(ANN)
    assert loaded is not None and loaded.passage_count == 2
    assert await store.delete_file(agent, file_id)
    assert not await store.delete_file(agent, file_id)
    assert await store.search_passages(agent, "lighthouse") == []
    assert await store.list_files(agent) == []
    assert not await store.add_document_passages(agent, file_id, first, 2)  # gone: nothing filed
    assert await store.search_passages(agent, "lighthouse") == []


async def test_forgetting_erases_files_waiting_and_kept(store: Storage) -> None:
    agent, _ = await claimed_document(store)
    await store.add_pending(sent("later", PHOTO), T0 + timedelta(minutes=1))
    await store.delete_agent(agent)
    again = await new_agent(store, "ann")
    assert await store.list_files(again) == []
    assert await store.pending_files(ANN, 10**9) == []


async def test_a_redelivered_message_stores_its_files_once(store: Storage) -> None:
    assert await store.add_pending(sent("hi", PHOTO, source="m1"), T0) is not None
    assert await store.add_pending(sent("hi", PHOTO, source="m1"), T0) is None
    assert len(await store.pending_files(ANN, 10**9)) == 1


async def test_a_file_too_large_to_fetch_keeps_its_declared_size(store: Storage) -> None:
    huge = InboundFile("huge.pdf", "application/pdf", b"", size=30 * 2**20)
    pending = await waiting_with_files(store, huge)
    [item] = await store.pending_files(ANN, pending)
    assert (item.file.size, item.file.data) == (30 * 2**20, b"")


async def test_passage_search_pages_through_results(store: Storage) -> None:
    agent = await new_agent(store)
    for i in range(12):
        await store.add_passage(agent, f"note {i} on gardening", [], T0)
    pages = [await store.search_passages(agent, "gardening", 5, offset) for offset in (0, 5, 10)]
    assert [len(p) for p in pages] == [5, 5, 2]
    ids = [p.id for page in pages for p in page]
    assert len(set(ids)) == 12
    assert await store.search_passages(agent, "gardening", 5, 15) == []
