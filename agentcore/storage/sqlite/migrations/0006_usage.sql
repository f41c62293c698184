-- Model usage: what each call cost, and daily totals kept by the database for budgets and
-- reports. A call counts toward the person it served (agent_id) and toward everyone (agent_id 0).
-- Erasing a person deletes their calls and their daily rows; everyone's totals keep the tokens
-- (they name no one, and the money was spent).

ALTER TABLE llm_calls ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE llm_calls ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;  -- no usage reported
ALTER TABLE llm_calls ADD COLUMN purpose TEXT NOT NULL DEFAULT 'turn';
ALTER TABLE llm_calls ADD COLUMN model TEXT NOT NULL DEFAULT '';
ALTER TABLE llm_calls ADD COLUMN day TEXT NOT NULL DEFAULT '';  -- YYYY-MM-DD in the bot's time zone
UPDATE llm_calls SET day = date(created_at / 1000, 'unixepoch');
CREATE INDEX llm_calls_by_agent ON llm_calls (agent_id, created_at);

CREATE TABLE usage_days (
    agent_id          INTEGER NOT NULL,  -- 0: everyone together
    day               TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    calls             INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    estimated_calls   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, day, model)
) WITHOUT ROWID;
CREATE INDEX usage_days_by_day ON usage_days (day, agent_id);

INSERT INTO usage_days (agent_id, day, model, calls, prompt_tokens, cached_tokens,
    completion_tokens, estimated_calls)
SELECT owner, day, model, COUNT(*), SUM(prompt_tokens), SUM(cached_tokens),
    SUM(completion_tokens), SUM(estimated)
FROM (SELECT *, agent_id AS owner FROM llm_calls UNION ALL SELECT *, 0 FROM llm_calls)
WHERE ok AND owner IS NOT NULL GROUP BY owner, day, model;

-- One row for the person served (if any) and one for everyone, in one statement.
CREATE TRIGGER llm_calls_counted AFTER INSERT ON llm_calls WHEN new.ok BEGIN
    INSERT INTO usage_days (agent_id, day, model, calls, prompt_tokens, cached_tokens,
        completion_tokens, estimated_calls)
    SELECT owner, new.day, new.model, 1, new.prompt_tokens, new.cached_tokens,
        new.completion_tokens, new.estimated
    FROM (SELECT new.agent_id AS owner UNION ALL SELECT 0) WHERE owner IS NOT NULL
    ON CONFLICT (agent_id, day, model) DO UPDATE SET
        calls = calls + 1,
        prompt_tokens = prompt_tokens + excluded.prompt_tokens,
        cached_tokens = cached_tokens + excluded.cached_tokens,
        completion_tokens = completion_tokens + excluded.completion_tokens,
        estimated_calls = estimated_calls + excluded.estimated_calls;
END;
