-- Initial schema. Timestamps are integer milliseconds since the epoch, UTC.
-- Migrations are forward-only: never edit a shipped file, add the next number instead.

CREATE TABLE agents (
    id               INTEGER PRIMARY KEY,
    platform         TEXT    NOT NULL,
    user_id          TEXT    NOT NULL,
    display_name     TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    last_user_at     INTEGER,
    session_count    INTEGER NOT NULL DEFAULT 0,
    message_count    INTEGER NOT NULL DEFAULT 0,
    passage_count    INTEGER NOT NULL DEFAULT 0,
    context_start_id INTEGER NOT NULL DEFAULT 0,
    summary_id       INTEGER REFERENCES summaries(id) ON DELETE SET NULL,
    pressure_warned  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (platform, user_id)
);

CREATE TABLE blocks (
    id          INTEGER PRIMARY KEY,
    agent_id    INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    label       TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    value       TEXT    NOT NULL,
    char_limit  INTEGER NOT NULL,
    read_only   INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    UNIQUE (agent_id, label)
);

CREATE TABLE block_history (
    id         INTEGER PRIMARY KEY,
    block_id   INTEGER NOT NULL REFERENCES blocks(id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    actor      TEXT    NOT NULL CHECK (actor IN ('agent', 'operator', 'user', 'system')),
    actor_name TEXT    NOT NULL DEFAULT '',
    old_value  TEXT,
    new_value  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (block_id, version)
);

-- Read-only blocks an operator shows to every agent (e.g. a server's rules).
CREATE TABLE shared_blocks (
    label      TEXT PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL
);

-- Recall memory: every message ever exchanged, with the platform's own timestamp.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    agent_id     INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    role         TEXT    NOT NULL CHECK (role IN ('user', 'assistant', 'tool', 'system')),
    content      TEXT,
    tool_calls   TEXT,
    tool_call_id TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX messages_by_agent ON messages (agent_id, id);
-- Counters kept by the database itself, so every writer (bot, operator CLI) keeps them right.
CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
    UPDATE agents SET message_count = message_count + 1 WHERE id = new.agent_id;
END;
CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN
    UPDATE agents SET message_count = message_count - 1 WHERE id = old.agent_id;
END;

-- The agent id is an indexed column of the full-text index so that a search matches
-- "this agent AND these words" inside FTS5, instead of matching every user's rows and
-- filtering afterwards (which is slow once the table holds millions of rows).
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    agent_id, content,
    content = 'messages', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.role IN ('user', 'assistant') AND new.content IS NOT NULL BEGIN
    INSERT INTO messages_fts (rowid, agent_id, content) VALUES (new.id, new.agent_id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.role IN ('user', 'assistant') AND old.content IS NOT NULL BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, agent_id, content)
    VALUES ('delete', old.id, old.agent_id, old.content);
END;

-- Messages as they arrive. A message is stored here the moment it arrives (so a platform may
-- be told it was delivered) and copied into `messages` when its turn starts, so each turn's
-- rows stay together in recall order. A claimed row keeps only its `source` for a day, so a
-- platform delivering the same message again (after a crash) is recognised.
CREATE TABLE inbox (
    id           INTEGER PRIMARY KEY,
    platform     TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    display_name TEXT    NOT NULL DEFAULT '',
    chat         TEXT    NOT NULL,
    text         TEXT    NOT NULL,
    sent_at      INTEGER NOT NULL,
    route        TEXT    NOT NULL DEFAULT '',
    received_at  INTEGER NOT NULL,
    source       TEXT,
    claimed      INTEGER NOT NULL DEFAULT 0,
    terms        TEXT     -- the text's search terms (see migration 0002), copied on claim
);
-- Only waiting rows: claimed ones (kept a day for redeliveries) never slow a claim down.
CREATE INDEX inbox_waiting ON inbox (platform, user_id, id) WHERE NOT claimed;
CREATE UNIQUE INDEX inbox_by_source ON inbox (platform, source) WHERE source IS NOT NULL;
CREATE INDEX inbox_claimed ON inbox (claimed, received_at);

-- Archival memory: facts the agent chose to keep.
CREATE TABLE passages (
    id         INTEGER PRIMARY KEY,
    agent_id   INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    content    TEXT    NOT NULL,
    tags       TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX passages_by_agent ON passages (agent_id, id);
CREATE TRIGGER passages_count_insert AFTER INSERT ON passages BEGIN
    UPDATE agents SET passage_count = passage_count + 1 WHERE id = new.agent_id;
END;
CREATE TRIGGER passages_count_delete AFTER DELETE ON passages BEGIN
    UPDATE agents SET passage_count = passage_count - 1 WHERE id = old.agent_id;
END;
CREATE VIRTUAL TABLE passages_fts USING fts5 (
    agent_id, content, tags,
    content = 'passages', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER passages_fts_insert AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts (rowid, agent_id, content, tags)
    VALUES (new.id, new.agent_id, new.content, new.tags);
END;
CREATE TRIGGER passages_fts_delete AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts (passages_fts, rowid, agent_id, content, tags)
    VALUES ('delete', old.id, old.agent_id, old.content, old.tags);
END;

-- Running summaries; agents.summary_id points at the current one.
CREATE TABLE summaries (
    id                 INTEGER PRIMARY KEY,
    agent_id           INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    content            TEXT    NOT NULL,
    through_message_id INTEGER NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX summaries_by_agent ON summaries (agent_id);

CREATE TABLE startup_runs (
    id         INTEGER PRIMARY KEY,
    started_at INTEGER NOT NULL,
    total_ms   REAL    NOT NULL,
    rss_mb     REAL    NOT NULL,
    phases     TEXT    NOT NULL  -- JSON list of [name, ms]
);

CREATE TABLE llm_calls (
    id                INTEGER PRIMARY KEY,
    agent_id          INTEGER,
    created_at        INTEGER NOT NULL,
    latency_ms        REAL    NOT NULL,
    ok                INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX llm_calls_by_time ON llm_calls (created_at);

-- Operator reads and writes of users' data. Never holds memory content.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    actor      TEXT    NOT NULL,
    verb       TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
