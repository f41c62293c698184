-- Sleep-time consolidation: its own kind of author in block histories, which of a person's
-- messages it has read, and what each run did and cost (as migration 4 on SQLite).

ALTER TABLE block_history DROP CONSTRAINT block_history_actor_check;
ALTER TABLE block_history ADD CONSTRAINT block_history_actor_check
    CHECK (actor IN ('agent', 'operator', 'user', 'system', 'consolidation'));

-- Messages with an id up to this one have been read by a consolidation. What was stored before
-- consolidation existed counts as read: an upgrade does not send everyone's history at once.
ALTER TABLE agents ADD COLUMN consolidated_through bigint NOT NULL DEFAULT 0;
UPDATE agents SET consolidated_through =
    coalesce((SELECT max(id) FROM messages WHERE messages.agent_id = agents.id), 0);

CREATE TABLE consolidations (
    id                bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id          bigint  NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    after_id          bigint  NOT NULL,  -- it read the messages after this id...
    through_id        bigint  NOT NULL,  -- ...up to this one
    created_at        bigint  NOT NULL,
    outcome           text    NOT NULL CHECK (outcome IN ('changed', 'nothing', 'invalid')),
    model             text    NOT NULL DEFAULT '',
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0
);
CREATE INDEX consolidations_by_time ON consolidations (created_at);
CREATE INDEX consolidations_by_agent ON consolidations (agent_id);
