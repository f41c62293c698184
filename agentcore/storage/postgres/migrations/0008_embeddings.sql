-- Embeddings for search by meaning (as migration 5 on SQLite): one int8 vector per searchable
-- message and per passage, beside the row, for each embedding model. Keyed by person first, so
-- a person's vectors are one range of the primary key.

CREATE TABLE embedding_models (
    id   bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text    NOT NULL UNIQUE,
    dims integer             -- set by the first vectors the endpoint returned
);

-- vector: the components, each rounded to int8 after scaling the largest to 127.
CREATE TABLE message_vectors (
    agent_id   bigint NOT NULL,
    message_id bigint NOT NULL,
    model_id   bigint NOT NULL REFERENCES embedding_models(id),
    vector     bytea  NOT NULL,
    PRIMARY KEY (agent_id, message_id)
);
CREATE TABLE passage_vectors (
    agent_id   bigint NOT NULL,
    passage_id bigint NOT NULL,
    model_id   bigint NOT NULL REFERENCES embedding_models(id),
    vector     bytea  NOT NULL,
    PRIMARY KEY (agent_id, passage_id)
);
-- Stored as they are: int8 vectors do not compress, and out of line they cost a second read.
ALTER TABLE message_vectors ALTER COLUMN vector SET STORAGE PLAIN;
ALTER TABLE passage_vectors ALTER COLUMN vector SET STORAGE PLAIN;

-- A vector goes with its row, however the row goes (/forget, an import, a deleted document).
CREATE FUNCTION message_vectors_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM message_vectors v USING old_rows o
    WHERE v.agent_id = o.agent_id AND v.message_id = o.id;
    RETURN NULL;
END $$;
CREATE TRIGGER message_vectors_delete AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION message_vectors_delete();
CREATE FUNCTION passage_vectors_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM passage_vectors v USING old_rows o
    WHERE v.agent_id = o.agent_id AND v.passage_id = o.id;
    RETURN NULL;
END $$;
CREATE TRIGGER passage_vectors_delete AFTER DELETE ON passages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION passage_vectors_delete();
