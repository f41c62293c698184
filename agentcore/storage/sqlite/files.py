"""``FileStore`` on SQLite: the files people send, kept as BLOBs beside their messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from agentcore.clock import to_millis
from agentcore.messages import Role
from agentcore.records import (
    DocState,
    DocumentPassage,
    FileUpdate,
    NewPassage,
    PendingFile,
    StoredFile,
)
from agentcore.search.terms import message_terms
from agentcore.storage.rows import FILE_COLUMNS, stored_file
from agentcore.storage.sqlite.connection import Part
from agentcore.storage.sqlite.passages import insert_passages
from agentcore.storage.sqlite.sql import one_row
from agentcore.types import AgentKey, FileKind, InboundMessage


class FileRows(Part):
    async def pending_files(self, key: AgentKey, up_to_id: int) -> list[PendingFile]:
        found = await self._db.fetch(
            f"SELECT f.{FILE_COLUMNS.replace(', ', ', f.')}, f.data, f.inbox_id, i.text "
            "FROM files f "
            "JOIN inbox i ON i.id = f.inbox_id WHERE i.platform = ? AND i.user_id = ? "
            "AND NOT i.claimed AND i.id <= ? AND NOT f.prepared ORDER BY f.id",
            (key.platform, key.user_id, up_to_id),
        )
        return [
            PendingFile(r["inbox_id"], r["text"], stored_file(r, with_data=True)) for r in found
        ]

    async def prepare_pending(
        self, pending_id: int, text: str, updates: Sequence[FileUpdate]
    ) -> None:
        await self._db.write(lambda conn: _prepare(conn, pending_id, text, updates))

    async def message_files(
        self, agent_id: int, message_ids: Sequence[int], kind: FileKind
    ) -> list[StoredFile]:
        if not message_ids:
            return []
        marks = ", ".join("?" * len(message_ids))
        found = await self._db.fetch(
            f"SELECT {FILE_COLUMNS}, data FROM files WHERE agent_id = ? AND kind = ? "
            f"AND message_id IN ({marks}) ORDER BY id",
            (agent_id, kind.value, *message_ids),
        )
        return [stored_file(r, with_data=True) for r in found]

    async def list_files(self, agent_id: int, state: DocState | None = None) -> list[StoredFile]:
        found = await self._db.fetch(
            f"SELECT {FILE_COLUMNS} FROM files WHERE agent_id = ? AND (? IS NULL OR state = ?) "
            "ORDER BY id",
            (agent_id, *(2 * [None if state is None else state.value])),
        )
        return [stored_file(r) for r in found]

    async def file_data(self, agent_id: int, file_id: int) -> bytes | None:
        found = await self._db.fetch(
            "SELECT data FROM files WHERE agent_id = ? AND id = ?", (agent_id, file_id)
        )
        return bytes(found[0]["data"]) if found else None

    async def delete_file(self, agent_id: int, file_id: int) -> bool:
        return await self._db.write(lambda conn: _delete_file(conn, agent_id, file_id))

    async def add_document_passages(
        self, agent_id: int, file_id: int, passages: Sequence[DocumentPassage], pages_read: int
    ) -> bool:
        return await self._db.write(
            lambda conn: _add_pages(conn, agent_id, file_id, passages, pages_read)
        )

    async def finish_document(
        self, agent_id: int, file_id: int, state: DocState, note: str
    ) -> None:
        await self._db.execute(
            "UPDATE files SET state = ?, note = ? WHERE agent_id = ? AND id = ?",
            (state.value, note, agent_id, file_id),
        )


async def insert_files(
    conn: aiosqlite.Connection, inbox_id: int, message: InboundMessage, received_at: datetime
) -> None:
    """The files that came with a waiting message."""
    ms = to_millis(received_at)
    await conn.executemany(
        "INSERT INTO files (platform, user_id, inbox_id, kind, filename, mime_type, size, data,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                message.key.platform,
                message.key.user_id,
                inbox_id,
                f.kind.value,
                f.filename,
                f.mime_type,
                f.declared_size,
                f.data,
                ms,
            )
            for f in message.files
        ],
    )


async def claim_files(
    conn: aiosqlite.Connection, agent_id: int, inbox_ids: Sequence[int], message_ids: Sequence[int]
) -> None:
    """Files of claimed waiting messages move to the agent and the recall messages made of
    them (``inbox_ids[i]`` became ``message_ids[i]``)."""
    await conn.executemany(
        "UPDATE files SET agent_id = ?, message_id = ? WHERE inbox_id = ?",
        [(agent_id, m, i) for i, m in zip(inbox_ids, message_ids, strict=True)],
    )


async def delete_person_files(conn: aiosqlite.Connection, agent_id: int) -> None:
    """Every file of an agent, and those still waiting with its person's messages."""
    await conn.execute(
        "DELETE FROM passages WHERE file_id IN (SELECT id FROM files WHERE agent_id = ?)",
        (agent_id,),
    )
    await conn.execute(
        "DELETE FROM files WHERE agent_id = ? OR (platform, user_id) = "
        "(SELECT platform, user_id FROM agents WHERE id = ?)",
        (agent_id, agent_id),
    )


async def _prepare(
    conn: aiosqlite.Connection, pending_id: int, text: str, updates: Sequence[FileUpdate]
) -> None:
    await conn.execute(
        "UPDATE inbox SET text = ?, terms = ? WHERE id = ? AND NOT claimed",
        (text, message_terms(Role.USER, text), pending_id),
    )
    for u in updates:
        await conn.execute(
            "UPDATE files SET prepared = 1, note = ?, state = ?, pages = ?, "
            "data = COALESCE(?, data), mime_type = COALESCE(NULLIF(?, ''), mime_type) "
            "WHERE id = ?",
            (u.note, u.state.value, u.pages, u.data, u.mime_type, u.file_id),
        )


async def _delete_file(conn: aiosqlite.Connection, agent_id: int, file_id: int) -> bool:
    found = await one_row(
        conn, "SELECT id FROM files WHERE agent_id = ? AND id = ?", (agent_id, file_id)
    )
    if found is None:
        return False
    await conn.execute("PRAGMA secure_delete = ON")
    try:
        await conn.execute("DELETE FROM passages WHERE file_id = ?", (file_id,))
        await conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
    finally:
        await conn.execute("PRAGMA secure_delete = OFF")
    return True


async def _add_pages(
    conn: aiosqlite.Connection,
    agent_id: int,
    file_id: int,
    passages: Sequence[DocumentPassage],
    pages_read: int,
) -> bool:
    found = await one_row(
        conn,
        "SELECT filename, pages_read FROM files WHERE agent_id = ? AND id = ?",
        (agent_id, file_id),
    )
    if found is None:
        return False
    source: str = found["filename"]
    if found["pages_read"] >= pages_read:
        return True  # read already (one process per file: only a repeated call gets here)
    await insert_passages(
        conn,
        agent_id,
        [NewPassage(p.content, (), p.created_at, source, p.page) for p in passages],
        file_id=file_id,
    )
    await conn.execute("UPDATE files SET pages_read = ? WHERE id = ?", (pages_read, file_id))
    return True
