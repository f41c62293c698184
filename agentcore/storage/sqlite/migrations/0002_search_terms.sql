-- Search by analysed terms. The application analyses each searchable message and passage
-- (agentcore/search/analysis.py: stems, accents folded, character pairs for Chinese, Japanese and
-- Korean) and stores the terms beside the text; the full-text index indexes those terms, split
-- at spaces, so the index, the re-ranker and every storage backend agree on what a word is.
-- Rows stored before this migration get their terms from the application right after it runs.

ALTER TABLE messages ADD COLUMN terms TEXT;   -- NULL: not searchable (tool rows, no content)
ALTER TABLE messages ADD COLUMN seq INTEGER;  -- position among the agent's searchable messages
ALTER TABLE passages ADD COLUMN terms TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN search_docs INTEGER NOT NULL DEFAULT 0;   -- searchable messages
ALTER TABLE agents ADD COLUMN search_terms INTEGER NOT NULL DEFAULT 0;  -- their terms, in all

-- Each searchable message's position among its agent's searchable messages, and the agent's
-- totals (for per-person BM25), kept by the database so every writer keeps them right.
CREATE TRIGGER messages_search_position AFTER INSERT ON messages WHEN new.terms IS NOT NULL BEGIN
    UPDATE messages SET seq = (SELECT search_docs FROM agents WHERE id = new.agent_id)
    WHERE id = new.id;
    UPDATE agents SET
        search_docs = search_docs + 1,
        search_terms = search_terms + CASE WHEN new.terms = '' THEN 0
            ELSE length(new.terms) - length(replace(new.terms, ' ', '')) + 1 END
    WHERE id = new.agent_id;
END;

-- Neighbouring turns of a search hit, and messages written in a given period.
CREATE INDEX messages_by_seq ON messages (agent_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX messages_by_time ON messages (agent_id, created_at) WHERE terms IS NOT NULL;

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TABLE messages_fts;
-- The owner is an indexed column, so a search matches "this agent AND these words" inside FTS5
-- rather than matching every user's rows and filtering afterwards. Its token is "_" and the
-- agent id ("_42"): the analyser never makes a term with "_", so an owner token never shares a
-- doclist with the number 42 in someone's text. The table is contentless (nothing is stored
-- twice); the triggers give the 'delete' command the values that were indexed.
-- `prefix = '5'` keeps the five-letter prefix queries of word-variant matching fast.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    agent_id, terms,
    content = '', tokenize = "ascii tokenchars '_'", prefix = '5'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.terms IS NOT NULL BEGIN
    INSERT INTO messages_fts (rowid, agent_id, terms)
    VALUES (new.id, '_' || new.agent_id, new.terms);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.terms IS NOT NULL BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, agent_id, terms)
    VALUES ('delete', old.id, '_' || old.agent_id, old.terms);
END;
-- Every term in the index once (for matching misspelt query words against real ones).
CREATE VIRTUAL TABLE messages_vocab USING fts5vocab (messages_fts, 'row');

DROP TRIGGER passages_fts_insert;
DROP TRIGGER passages_fts_delete;
DROP TABLE passages_fts;
CREATE VIRTUAL TABLE passages_fts USING fts5 (
    agent_id, terms,
    content = '', tokenize = "ascii tokenchars '_'", prefix = '5'
);
CREATE TRIGGER passages_fts_insert AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts (rowid, agent_id, terms)
    VALUES (new.id, '_' || new.agent_id, new.terms);
END;
CREATE TRIGGER passages_fts_delete AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts (passages_fts, rowid, agent_id, terms)
    VALUES ('delete', old.id, '_' || old.agent_id, old.terms);
END;
CREATE VIRTUAL TABLE passages_vocab USING fts5vocab (passages_fts, 'row');
