-- Embeddings for search by meaning: one int8 vector per searchable message and per passage,
-- beside the row, for each embedding model (a new model's vectors are made anew in the
-- background). Keyed by person first, so a person's vectors are one range of the table.

CREATE TABLE embedding_models (
    id   INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE,
    dims INTEGER             -- set by the first vectors the endpoint returned
);

-- vector: the components, each rounded to int8 after scaling the largest to 127 (cosine
-- similarity is unchanged by the scale, so none is stored).
CREATE TABLE message_vectors (
    agent_id   INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    model_id   INTEGER NOT NULL REFERENCES embedding_models(id),
    vector     BLOB    NOT NULL,
    PRIMARY KEY (agent_id, message_id)
) WITHOUT ROWID;
CREATE TABLE passage_vectors (
    agent_id   INTEGER NOT NULL,
    passage_id INTEGER NOT NULL,
    model_id   INTEGER NOT NULL REFERENCES embedding_models(id),
    vector     BLOB    NOT NULL,
    PRIMARY KEY (agent_id, passage_id)
) WITHOUT ROWID;

-- A vector goes with its row, however the row goes (/forget, an import, a deleted document).
CREATE TRIGGER message_vectors_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_vectors WHERE agent_id = old.agent_id AND message_id = old.id;
END;
CREATE TRIGGER passage_vectors_delete AFTER DELETE ON passages BEGIN
    DELETE FROM passage_vectors WHERE agent_id = old.agent_id AND passage_id = old.id;
END;
