-- Reminders the agent sends on its own (schedule_message), optional check-ins, and each
-- person's own settings for them; the same tables as SQLite's 0004_reminders.sql. Deleting an
-- agent deletes these with it (ON DELETE CASCADE).

CREATE TABLE reminders (
    id         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id   bigint  NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    number     integer,          -- per person, as they see it (#1, #2, ...); NULL for check-ins
    kind       text    NOT NULL CHECK (kind IN ('reminder', 'checkin')),
    message    text    NOT NULL,
    due_at     bigint  NOT NULL, -- the time asked for (a check-in: when the silence began)
    fire_at    bigint  NOT NULL, -- when it goes out: due_at, or later once postponed
    created_at bigint  NOT NULL,
    chat       text    NOT NULL CHECK (chat IN ('private', 'group')),
    route      text    NOT NULL DEFAULT '',  -- a group's route (reminders set in a group)
    status     text    NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'claimed', 'sent', 'skipped', 'failed', 'cancelled')),
    claimed_at bigint,           -- while claimed: when (a claim expires after a lease)
    sent_at    bigint,
    late       boolean NOT NULL DEFAULT false,  -- claimed well after its time (the bot was down)
    note       text    NOT NULL DEFAULT '',     -- why it was postponed or failed
    UNIQUE (agent_id, number)
);
-- The scheduler's two questions (what is due next; which claim runs out next), each answered
-- by walking a small partial index in order and stopping at the first rows it needs.
CREATE INDEX reminders_due ON reminders (fire_at) WHERE status = 'pending';
CREATE INDEX reminders_claimed ON reminders (claimed_at) WHERE status = 'claimed';
CREATE INDEX reminders_by_agent ON reminders (agent_id, status);
-- At most one check-in per silence (a silence is named by the message that began it).
CREATE UNIQUE INDEX checkins_once ON reminders (agent_id, due_at) WHERE kind = 'checkin';

CREATE TABLE agent_prefs (
    agent_id    bigint  PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    timezone    text,            -- IANA name; NULL: the bot's default zone
    quiet_hours text,            -- NULL: the operator's default; '': none; '22:00-07:00'
    checkins    boolean NOT NULL DEFAULT true
);
