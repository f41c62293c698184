-- Model usage: what each call cost, and daily totals kept by the database for budgets and
-- reports (as SQLite's migration 0006). A call counts toward the person it served (agent_id)
-- and toward everyone (agent_id 0). Erasing a person deletes their calls and their daily rows;
-- everyone's totals keep the tokens (they name no one, and the money was spent).

ALTER TABLE llm_calls
    ADD COLUMN cached_tokens integer NOT NULL DEFAULT 0,
    ADD COLUMN estimated     boolean NOT NULL DEFAULT false,  -- no usage reported
    ADD COLUMN purpose       text    NOT NULL DEFAULT 'turn',
    ADD COLUMN model         text    NOT NULL DEFAULT '',
    ADD COLUMN day           date;  -- in the bot's time zone
UPDATE llm_calls SET day = (to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC')::date;
ALTER TABLE llm_calls ALTER COLUMN day SET NOT NULL;

CREATE TABLE usage_days (
    agent_id          bigint  NOT NULL,  -- 0: everyone together
    day               date    NOT NULL,
    model             text    NOT NULL,
    calls             integer NOT NULL DEFAULT 0,
    prompt_tokens     bigint  NOT NULL DEFAULT 0,
    cached_tokens     bigint  NOT NULL DEFAULT 0,
    completion_tokens bigint  NOT NULL DEFAULT 0,
    estimated_calls   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, day, model)
);
CREATE INDEX usage_days_by_day ON usage_days (day, agent_id);

INSERT INTO usage_days (agent_id, day, model, calls, prompt_tokens, cached_tokens,
    completion_tokens, estimated_calls)
SELECT owner, day, model, count(*), sum(prompt_tokens), sum(cached_tokens),
    sum(completion_tokens), count(*) FILTER (WHERE estimated)
FROM llm_calls, LATERAL (VALUES (agent_id), (0)) AS owners (owner)
WHERE ok AND owner IS NOT NULL GROUP BY owner, day, model;

CREATE FUNCTION llm_calls_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_days AS u (agent_id, day, model, calls, prompt_tokens, cached_tokens,
        completion_tokens, estimated_calls)
    SELECT owner, NEW.day, NEW.model, 1, NEW.prompt_tokens, NEW.cached_tokens,
        NEW.completion_tokens, NEW.estimated::integer
    FROM (VALUES (NEW.agent_id), (0)) AS owners (owner) WHERE owner IS NOT NULL
    ON CONFLICT (agent_id, day, model) DO UPDATE SET
        calls = u.calls + 1,
        prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
        cached_tokens = u.cached_tokens + excluded.cached_tokens,
        completion_tokens = u.completion_tokens + excluded.completion_tokens,
        estimated_calls = u.estimated_calls + excluded.estimated_calls;
    RETURN NULL;
END $$;
CREATE TRIGGER llm_calls_counted AFTER INSERT ON llm_calls
    FOR EACH ROW WHEN (NEW.ok) EXECUTE FUNCTION llm_calls_counted();
