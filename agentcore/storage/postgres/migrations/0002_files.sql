-- Files people send (photos, voice notes, documents), kept beside the messages they came with
-- (as on SQLite: a backup copies them, /export includes them, /forget erases them). A file
-- arrives with a waiting message (inbox_id; agent_id not yet known) and moves to the agent and
-- the recall message when that message's turn starts.
CREATE TABLE files (
    id          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform    text    NOT NULL,
    user_id     text    NOT NULL,
    agent_id    bigint  REFERENCES agents(id),
    inbox_id    bigint  REFERENCES inbox(id) ON DELETE SET NULL,
    message_id  bigint,
    kind        text    NOT NULL CHECK (kind IN ('image', 'voice', 'audio', 'document', 'other')),
    filename    text    NOT NULL,
    mime_type   text    NOT NULL,
    size        bigint  NOT NULL,
    data        bytea   NOT NULL,
    prepared    boolean NOT NULL DEFAULT false,  -- described, transcribed or checked
    note        text    NOT NULL DEFAULT '',     -- the description, transcript, or why not read
    state       text    NOT NULL DEFAULT '' CHECK (state IN ('', 'reading', 'ready', 'failed')),
    pages       integer NOT NULL DEFAULT 0,      -- documents: pages (or parts) in all
    pages_read  integer NOT NULL DEFAULT 0,
    created_at  bigint  NOT NULL
);
CREATE INDEX files_waiting ON files (inbox_id) WHERE inbox_id IS NOT NULL AND NOT prepared;
CREATE INDEX files_by_agent ON files (agent_id, id);
CREATE INDEX files_by_message ON files (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX files_by_person ON files (platform, user_id);

-- Passages read from a document: which one (deleted with it), its page, and its name.
ALTER TABLE passages
    ADD COLUMN file_id bigint REFERENCES files(id),
    ADD COLUMN page    integer,
    ADD COLUMN source  text NOT NULL DEFAULT '';
CREATE INDEX passages_by_file ON passages (file_id) WHERE file_id IS NOT NULL;
