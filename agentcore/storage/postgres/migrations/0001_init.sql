-- The PostgreSQL schema: the same tables as SQLite's (migrations 0001 and 0002 there), in one.
-- Timestamps are integer milliseconds since the epoch, UTC, as on SQLite.
-- Migrations are forward-only: never edit a shipped file, add the next number instead.

-- Search. The application analyses each searchable message and passage (agentcore/search:
-- stems, folded accents, character pairs for Chinese, Japanese and Korean) and stores its terms
-- beside the text, space-separated, as on SQLite. The full-text index holds them as they are
-- (no parsing, no stemming here), each prefixed with its owner: "42_paint" is the term "paint"
-- in agent 42's rows. A search for one person's word is then one small entry of the index, as
-- "this agent AND this word" is in SQLite's FTS5 index; terms never contain "_", so an owner's
-- prefix cannot be confused with another's ("42_" is not "420_").
CREATE FUNCTION owned_terms(owner bigint, terms text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_to_tsvector(ARRAY(
        SELECT owner || '_' || t FROM unnest(string_to_array(terms, ' ')) AS t))
$$;

-- A tsquery matching the owner's rows that hold the term (every character of it is data).
CREATE FUNCTION owned_query(owner bigint, term text) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ('''' || owner || '_' || replace(replace(term, '\', '\\'), '''', '''''') || '''')::tsquery
$$;

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
-- rows that are not searchable; `tsv` holds them for the index, owned (see above).
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
    tsv          tsvector GENERATED ALWAYS AS (owned_terms(agent_id, terms)) STORED
);
CREATE INDEX messages_by_agent ON messages (agent_id, id);
CREATE INDEX messages_by_seq ON messages (agent_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX messages_by_time ON messages (agent_id, created_at) WHERE terms IS NOT NULL;
CREATE INDEX messages_search ON messages USING gin (tsv) WHERE terms IS NOT NULL;

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
    tsv        tsvector GENERATED ALWAYS AS (owned_terms(agent_id, terms)) STORED
);
CREATE INDEX passages_by_agent ON passages (agent_id, id);
CREATE INDEX passages_search ON passages USING gin (tsv);

-- Every term anyone's rows hold, once, with how many people's rows hold it (for matching
-- misspelt query words against real ones). Kept by the triggers below; a term leaves when the
-- last person who wrote it is erased.
CREATE TABLE messages_vocab (
    term   text    COLLATE "C" PRIMARY KEY,
    owners integer NOT NULL
);
CREATE TABLE passages_vocab (
    term   text    COLLATE "C" PRIMARY KEY,
    owners integer NOT NULL
);

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

-- A person's first row holding a term adds them to its owners. Terms are added in sorted order,
-- so two transactions adding the same words wait for each other instead of deadlocking.
CREATE FUNCTION messages_vocab_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO messages_vocab AS v (term, owners)
    SELECT n.term, count(*) FROM (
        SELECT DISTINCT r.agent_id, t AS term
        FROM new_rows r, unnest(string_to_array(r.terms, ' ')) AS t
        WHERE r.terms IS NOT NULL) n
    WHERE NOT EXISTS (
        SELECT 1 FROM messages m
        WHERE m.terms IS NOT NULL AND m.tsv @@ owned_query(n.agent_id, n.term)
          AND m.id NOT IN (SELECT id FROM new_rows))
    GROUP BY n.term ORDER BY n.term
    ON CONFLICT (term) DO UPDATE SET owners = v.owners + excluded.owners;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_vocab_added AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION messages_vocab_added();

CREATE FUNCTION passages_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE agents a SET passage_count = a.passage_count + added.n
    FROM (SELECT agent_id, count(*) AS n FROM new_rows GROUP BY agent_id) added
    WHERE a.id = added.agent_id;
    INSERT INTO passages_vocab AS v (term, owners)
    SELECT n.term, count(*) FROM (
        SELECT DISTINCT r.agent_id, t AS term
        FROM new_rows r, unnest(string_to_array(r.terms, ' ')) AS t) n
    WHERE NOT EXISTS (
        SELECT 1 FROM passages p
        WHERE p.tsv @@ owned_query(n.agent_id, n.term) AND p.id NOT IN (SELECT id FROM new_rows))
    GROUP BY n.term ORDER BY n.term
    ON CONFLICT (term) DO UPDATE SET owners = v.owners + excluded.owners;
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

-- An erasure takes the person off the owners of each term none of their rows holds any more; a
-- term nobody's rows hold leaves the vocabulary.
CREATE FUNCTION messages_vocab_removed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unowned text[];
BEGIN
    WITH gone AS (
        SELECT g.term, count(*) AS n FROM (
            SELECT DISTINCT r.agent_id, t AS term
            FROM old_rows r, unnest(string_to_array(r.terms, ' ')) AS t
            WHERE r.terms IS NOT NULL) g
        WHERE NOT EXISTS (
            SELECT 1 FROM messages m
            WHERE m.terms IS NOT NULL AND m.tsv @@ owned_query(g.agent_id, g.term))
        GROUP BY g.term),
    fewer AS (
        UPDATE messages_vocab v SET owners = v.owners - gone.n FROM gone
        WHERE v.term = gone.term RETURNING v.term, v.owners)
    SELECT array_agg(term) INTO unowned FROM fewer WHERE owners <= 0;
    DELETE FROM messages_vocab WHERE term = ANY(unowned);
    RETURN NULL;
END $$;
CREATE TRIGGER messages_vocab_removed AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION messages_vocab_removed();

CREATE FUNCTION passages_vocab_removed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unowned text[];
BEGIN
    WITH gone AS (
        SELECT g.term, count(*) AS n FROM (
            SELECT DISTINCT r.agent_id, t AS term
            FROM old_rows r, unnest(string_to_array(r.terms, ' ')) AS t) g
        WHERE NOT EXISTS (
            SELECT 1 FROM passages p WHERE p.tsv @@ owned_query(g.agent_id, g.term))
        GROUP BY g.term),
    fewer AS (
        UPDATE passages_vocab v SET owners = v.owners - gone.n FROM gone
        WHERE v.term = gone.term RETURNING v.term, v.owners)
    SELECT array_agg(term) INTO unowned FROM fewer WHERE owners <= 0;
    DELETE FROM passages_vocab WHERE term = ANY(unowned);
    RETURN NULL;
END $$;
CREATE TRIGGER passages_vocab_removed AFTER DELETE ON passages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION passages_vocab_removed();
