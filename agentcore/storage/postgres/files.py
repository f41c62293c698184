"""``FileStore`` on PostgreSQL: the files people send, kept as ``bytea`` beside their messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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
from agentcore.storage.postgres.connection import Conn, Part
from agentcore.storage.postgres.passages import insert_passages
from agentcore.storage.rows import FILE_COLUMNS, stored_file
from agentcore.types import AgentKey, FileKind, InboundMessage

_PENDING_COLUMNS = ", ".join(f"f.{c}" for c in FILE_COLUMNS.split(", "))


class FileRows(Part):
    async def pending_files(self, key: AgentKey, up_to_id: int) -> list[PendingFile]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {_PENDING_COLUMNS}, f.data, f.inbox_id, i.text FROM files f "
                "JOIN inbox i ON i.id = f.inbox_id WHERE i.platform = $1 AND i.user_id = $2 "
                "AND NOT i.claimed AND i.id <= $3 AND NOT f.prepared ORDER BY f.id",
                key.platform,
                key.user_id,
                up_to_id,
            )
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
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {FILE_COLUMNS}, data FROM files WHERE agent_id = $1 AND kind = $2 "
                "AND message_id = ANY($3::bigint[]) ORDER BY id",
                agent_id,
                kind.value,
                list(message_ids),
            )
        )
        return [stored_file(r, with_data=True) for r in found]

    async def list_files(self, agent_id: int, state: DocState | None = None) -> list[StoredFile]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {FILE_COLUMNS} FROM files WHERE agent_id = $1 "
                "AND ($2::text IS NULL OR state = $2) ORDER BY id",
                agent_id,
                None if state is None else state.value,
            )
        )
        return [stored_file(r) for r in found]

    async def file_data(self, agent_id: int, file_id: int) -> bytes | None:
        data: bytes | None = await self._db.read(
            lambda conn: conn.fetchval(
                "SELECT data FROM files WHERE agent_id = $1 AND id = $2", agent_id, file_id
            )
        )
        return data

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
        await self._db.statement(
            lambda conn: conn.execute(
                "UPDATE files SET state = $1, note = $2 WHERE agent_id = $3 AND id = $4",
                state.value,
                note,
                agent_id,
                file_id,
            )
        )


async def insert_files(
    conn: Conn, inbox_id: int, message: InboundMessage, received_at: datetime
) -> None:
    """The files that came with a waiting message."""
    await conn.executemany(
        "INSERT INTO files (platform, user_id, inbox_id, kind, filename, mime_type, size, data,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
                to_millis(received_at),
            )
            for f in message.files
        ],
    )


async def delete_person_files(conn: Conn, agent_id: int, platform: str, user_id: str) -> None:
    """Every file of an agent and those still waiting with its person's messages (after the
    agent's passages, which may have been read from them)."""
    await conn.execute(
        "DELETE FROM files WHERE agent_id = $1 OR (platform = $2 AND user_id = $3)",
        agent_id,
        platform,
        user_id,
    )


async def _prepare(conn: Conn, pending_id: int, text: str, updates: Sequence[FileUpdate]) -> None:
    await conn.execute(
        "UPDATE inbox SET text = $1, terms = $2 WHERE id = $3 AND NOT claimed",
        text,
        message_terms(Role.USER, text),
        pending_id,
    )
    await conn.executemany(
        "UPDATE files SET prepared = true, note = $1, state = $2, pages = $3, "
        "data = COALESCE($4, data), mime_type = COALESCE(NULLIF($5, ''), mime_type) "
        "WHERE id = $6",
        [(u.note, u.state.value, u.pages, u.data, u.mime_type, u.file_id) for u in updates],
    )


async def _delete_file(conn: Conn, agent_id: int, file_id: int) -> bool:
    found = await conn.fetchval(
        "SELECT id FROM files WHERE agent_id = $1 AND id = $2 FOR UPDATE", agent_id, file_id
    )
    if found is None:
        return False
    await conn.execute("DELETE FROM passages WHERE file_id = $1", file_id)
    await conn.execute("DELETE FROM files WHERE id = $1", file_id)
    return True


async def _add_pages(
    conn: Conn,
    agent_id: int,
    file_id: int,
    passages: Sequence[DocumentPassage],
    pages_read: int,
) -> bool:
    found = await conn.fetchrow(
        "SELECT filename, pages_read FROM files WHERE agent_id = $1 AND id = $2 FOR UPDATE",
        agent_id,
        file_id,
    )
    if found is None:
        return False
    source: str = found["filename"]
    if found["pages_read"] >= pages_read:
        return True  # another process read these pages already (both took the reading up)
    await insert_passages(
        conn,
        agent_id,
        [NewPassage(p.content, (), p.created_at, source, p.page) for p in passages],
        file_id=file_id,
    )
    await conn.execute("UPDATE files SET pages_read = $1 WHERE id = $2", pages_read, file_id)
    return True
