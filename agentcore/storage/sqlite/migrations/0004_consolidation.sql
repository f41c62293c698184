-- Sleep-time consolidation: its own kind of author in block histories, which of a person's
-- messages it has read, and what each run did and cost.

-- SQLite cannot change a CHECK constraint in place: block_history is rebuilt with the new one.
-- (No other table refers to it, and it has no triggers or indexes of its own.)
CREATE TABLE block_history_new (
    id         INTEGER PRIMARY KEY,
    block_id   INTEGER NOT NULL REFERENCES blocks(id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    actor      TEXT    NOT NULL
               CHECK (actor IN ('agent', 'operator', 'user', 'system', 'consolidation')),
    actor_name TEXT    NOT NULL DEFAULT '',
    old_value  TEXT,
    new_value  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (block_id, version)
);
INSERT INTO block_history_new (id, block_id, version, actor, actor_name, old_value, new_value,
                               created_at)
    SELECT id, block_id, version, actor, actor_name, old_value, new_value, created_at
    FROM block_history;
DROP TABLE block_history;
ALTER TABLE block_history_new RENAME TO block_history;

-- Messages with an id up to this one have been read by a consolidation. What was stored before
-- consolidation existed counts as read: an upgrade does not send everyone's history at once.
ALTER TABLE agents ADD COLUMN consolidated_through INTEGER NOT NULL DEFAULT 0;
UPDATE agents SET consolidated_through =
    COALESCE((SELECT MAX(id) FROM messages WHERE messages.agent_id = agents.id), 0);

CREATE TABLE consolidations (
    id                INTEGER PRIMARY KEY,
    agent_id          INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    after_id          INTEGER NOT NULL,  -- it read the messages after this id...
    through_id        INTEGER NOT NULL,  -- ...up to this one
    created_at        INTEGER NOT NULL,
    outcome           TEXT    NOT NULL CHECK (outcome IN ('changed', 'nothing', 'invalid')),
    model             TEXT    NOT NULL DEFAULT '',
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX consolidations_by_time ON consolidations (created_at);
CREATE INDEX consolidations_by_agent ON consolidations (agent_id);
