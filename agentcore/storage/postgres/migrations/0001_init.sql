-- The PostgreSQL schema: the same tables as SQLite's (migrations 0001 and 0002 there), in one.
-- Timestamps are integer milliseconds since the epoch, UTC, as on SQLite.
-- Migrations are forward-only: never edit a shipped file, add the next number instead.

-- A GIN index over (agent, terms) needs the btree operator classes for the agent id.
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE TABLE agents (
    id               bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform         text    NOT NULL,
    user_id          text    NOT NULL,
    display_name     text    NOT NULL DEFAULT '',
    created_at       bigint  NOT NULL,
    last_user_at     bigint,
    session_count    integer NOT NULL DEFAULT 0,
    message_count    integer NOT NULL DEFAULT 0,
    passage_count    integer NOT NULL DEFAULT 0,
    context_start_id bigint  NOT NULL DEFAULT 0,
    summary_id       bigint,
    pressure_warned  boolean NOT NULL DEFAULT false,
    search_docs      integer NOT NULL DEFAULT 0,  -- searchable messages (per-person BM25)
    search_terms     bigint  NOT NULL DEFAULT 0,  -- their terms, in all
    UNIQUE (platform, user_id)
);

CREATE TABLE blocks (
    id          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id    bigint  NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    label       text    NOT NULL,
    description text    NOT NULL DEFAULT '',
    value       text    NOT NULL,
    char_limit  integer NOT NULL,
    read_only   boolean NOT NULL DEFAULT false,
    version     integer NOT NULL DEFAULT 1,
    updated_at  bigint  NOT NULL,
    UNIQUE (agent_id, label)
);

CREATE TABLE block_history (
    id         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    block_id   bigint  NOT NULL REFERENCES blocks(id) ON DELETE CASCADE,
    version    integer NOT NULL,
    actor      text    NOT NULL CHECK (actor IN ('agent', 'operator', 'user', 'system')),
    actor_name text    NOT NULL DEFAULT '',
    old_value  text,
    new_value  text    NOT NULL,
    created_at bigint  NOT NULL,
    UNIQUE (block_id, version)
);

CREATE TABLE shared_blocks (
    label      text   PRIMARY KEY,
    value      text   NOT NULL,
    updated_at bigint NOT NULL,
    updated_by text   NOT NULL
);

-- Recall memory. `terms` are the analysed search terms (agentcore/search/terms.py), NULL for
-- rows that are not searchable; `tsv` indexes them as they are (no parsing, no stemming here:
-- the application analysed them), so both backends match the same terms.
CREATE TABLE messages (
    id           bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id     bigint  NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    role         text    NOT NULL CHECK (role IN ('user', 'assistant', 'tool', 'system')),
    content      text,
    tool_calls   text,
    tool_call_id text,
    created_at   bigint  NOT NULL,
    terms        text,
    seq          integer,  -- position among the agent's searchable messages
    tsv          tsvector GENERATED ALWAYS AS (array_to_tsvector(string_to_array(terms, ' '))) STORED
);
CREATE INDEX messages_by_agent ON messages (agent_id, id);
CREATE INDEX messages_by_seq ON messages (agent_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX messages_by_time ON messages (agent_id, created_at) WHERE terms IS NOT NULL;
CREATE INDEX messages_search ON messages USING gin (agent_id, tsv) WHERE terms IS NOT NULL;

CREATE TABLE summaries (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id           bigint NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    content            text   NOT NULL,
    through_message_id bigint NOT NULL,
    created_at         bigint NOT NULL
);
CREATE INDEX summaries_by_agent ON summaries (agent_id);
ALTER TABLE agents ADD FOREIGN KEY (summary_id) REFERENCES summaries(id) ON DELETE SET NULL;

CREATE TABLE inbox (
    id           bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform     text    NOT NULL,
    user_id      text    NOT NULL,
    display_name text    NOT NULL DEFAULT '',
    chat         text    NOT NULL,
    text         text    NOT NULL,
    sent_at      bigint  NOT NULL,
    route        text    NOT NULL DEFAULT '',
    received_at  bigint  NOT NULL,
    source       text,
    claimed      boolean NOT NULL DEFAULT false,
    terms        text
);
CREATE INDEX inbox_waiting ON inbox (platform, user_id, id) WHERE NOT claimed;
CREATE UNIQUE INDEX inbox_by_source ON inbox (platform, source) WHERE source IS NOT NULL;
CREATE INDEX inbox_claimed ON inbox (claimed, received_at);

CREATE TABLE passages (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id   bigint NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    content    text   NOT NULL,
    tags       text   NOT NULL DEFAULT '',
    terms      text   NOT NULL DEFAULT '',
    created_at bigint NOT NULL,
    tsv        tsvector GENERATED ALWAYS AS (array_to_tsvector(string_to_array(terms, ' '))) STORED
);
CREATE INDEX passages_by_agent ON passages (agent_id, id);
CREATE INDEX passages_search ON passages USING gin (agent_id, tsv);

-- Every term anyone's rows hold, once (for matching misspelt query words against real ones).
-- Kept by the triggers below on insert; an erasure removes the terms no remaining row holds.
CREATE TABLE messages_vocab (term text COLLATE "C" PRIMARY KEY);
CREATE TABLE passages_vocab (term text COLLATE "C" PRIMARY KEY);

CREATE TABLE startup_runs (
    id         bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at bigint           NOT NULL,
    total_ms   double precision NOT NULL,
    rss_mb     double precision NOT NULL,
    phases     text             NOT NULL  -- JSON list of [name, ms]
);

CREATE TABLE llm_calls (
    id                bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id          bigint,
    created_at        bigint           NOT NULL,
    latency_ms        double precision NOT NULL,
    ok                boolean          NOT NULL,
    prompt_tokens     integer          NOT NULL DEFAULT 0,
    completion_tokens integer          NOT NULL DEFAULT 0
);
CREATE INDEX llm_calls_by_time ON llm_calls (created_at);
CREATE INDEX llm_calls_by_agent ON llm_calls (agent_id);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor      text   NOT NULL,
    verb       text   NOT NULL,
    target     text   NOT NULL,
    detail     text   NOT NULL DEFAULT '',
    created_at bigint NOT NULL
);
CREATE INDEX audit_by_target ON audit_log (target);

-- Counters and search statistics kept by the database, so every writer (each bot process, the
-- operator CLI) keeps them right. A searchable message takes the next position among its
-- agent's searchable messages and adds to the agent's totals; the agent's row is locked for
-- the rest of the transaction, so positions never repeat.
CREATE FUNCTION messages_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.terms IS NULL THEN
        UPDATE agents SET message_count = message_count + 1 WHERE id = NEW.agent_id;
    ELSE
        UPDATE agents SET
            message_count = message_count + 1,
            search_docs = search_docs + 1,
            search_terms = search_terms
                + coalesce(array_length(string_to_array(NEW.terms, ' '), 1), 0)
        WHERE id = NEW.agent_id
        RETURNING search_docs - 1 INTO NEW.seq;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER messages_counted BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_counted();

CREATE FUNCTION messages_uncounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE agents a SET message_count = a.message_count - gone.n
    FROM (SELECT agent_id, count(*) AS n FROM old_rows GROUP BY agent_id) gone
    WHERE a.id = gone.agent_id;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_uncounted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION messages_uncounted();

-- New terms join the vocabulary in sorted order, so two transactions adding the same new words
-- wait for each other instead of deadlocking.
CREATE FUNCTION messages_vocab_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO messages_vocab (term)
    SELECT DISTINCT t FROM new_rows, unnest(string_to_array(new_rows.terms, ' ')) AS t
    WHERE new_rows.terms IS NOT NULL ORDER BY 1
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_vocab_added AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION messages_vocab_added();

CREATE FUNCTION passages_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE agents a SET passage_count = a.passage_count + added.n
    FROM (SELECT agent_id, count(*) AS n FROM new_rows GROUP BY agent_id) added
    WHERE a.id = added.agent_id;
    INSERT INTO passages_vocab (term)
    SELECT DISTINCT t FROM new_rows, unnest(string_to_array(new_rows.terms, ' ')) AS t
    ORDER BY 1
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER passages_counted AFTER INSERT ON passages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION passages_counted();

CREATE FUNCTION passages_uncounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE agents a SET passage_count = a.passage_count - gone.n
    FROM (SELECT agent_id, count(*) AS n FROM old_rows GROUP BY agent_id) gone
    WHERE a.id = gone.agent_id;
    RETURN NULL;
END $$;
CREATE TRIGGER passages_uncounted AFTER DELETE ON passages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION passages_uncounted();

-- An erasure takes its words out of the vocabulary unless someone else's rows still hold them.
CREATE FUNCTION term_query(term text) RETURNS tsquery LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ('''' || replace(replace(term, '\', '\\'), '''', '''''') || '''')::tsquery
$$;

CREATE FUNCTION messages_vocab_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM messages_vocab v
    WHERE v.term IN (SELECT DISTINCT t FROM old_rows, unnest(string_to_array(old_rows.terms, ' ')) AS t
                     WHERE old_rows.terms IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM messages m
                      WHERE m.terms IS NOT NULL AND m.tsv @@ term_query(v.term));
    RETURN NULL;
END $$;
CREATE TRIGGER messages_vocab_removed AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION messages_vocab_removed();

CREATE FUNCTION passages_vocab_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM passages_vocab v
    WHERE v.term IN (SELECT DISTINCT t FROM old_rows, unnest(string_to_array(old_rows.terms, ' ')) AS t)
      AND NOT EXISTS (SELECT 1 FROM passages p WHERE p.tsv @@ term_query(v.term));
    RETURN NULL;
END $$;
CREATE TRIGGER passages_vocab_removed AFTER DELETE ON passages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION passages_vocab_removed();
