-- Files people send (photos, voice notes, documents). The bytes live in the database, beside
-- the messages they came with, so the one 0600 file holds everything about a person: a backup
-- copies them, /export includes them, /forget erases them (secure_delete zeroes the pages).
-- Each file is capped in size (media.max_file_mb); images are stored scaled down.
-- A file arrives with a waiting message (inbox_id, agent_id not yet known) and moves to the
-- agent and the recall message when that message's turn starts.
CREATE TABLE files (
    id          INTEGER PRIMARY KEY,
    platform    TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    agent_id    INTEGER REFERENCES agents(id),
    inbox_id    INTEGER REFERENCES inbox(id) ON DELETE SET NULL,
    message_id  INTEGER,
    kind        TEXT    NOT NULL CHECK (kind IN ('image', 'voice', 'audio', 'document', 'other')),
    filename    TEXT    NOT NULL,
    mime_type   TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    prepared    INTEGER NOT NULL DEFAULT 0,   -- described, transcribed or checked
    note        TEXT    NOT NULL DEFAULT '',  -- the description, transcript, or why not read
    state       TEXT    NOT NULL DEFAULT '' CHECK (state IN ('', 'reading', 'ready', 'failed')),
    pages       INTEGER NOT NULL DEFAULT 0,   -- documents: pages (or parts) in all
    pages_read  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
CREATE INDEX files_waiting ON files (inbox_id) WHERE inbox_id IS NOT NULL AND NOT prepared;
CREATE INDEX files_by_agent ON files (agent_id, id);
CREATE INDEX files_by_message ON files (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX files_by_person ON files (platform, user_id);

-- Passages read from a document: which one (deleted with it), its page, and its name.
ALTER TABLE passages ADD COLUMN file_id INTEGER REFERENCES files(id);
ALTER TABLE passages ADD COLUMN page INTEGER;
ALTER TABLE passages ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX passages_by_file ON passages (file_id) WHERE file_id IS NOT NULL;
