-- Reminders the agent sends on its own (schedule_message), optional check-ins, and each
-- person's own settings for them. Deleting an agent deletes these with it (ON DELETE CASCADE).

CREATE TABLE reminders (
    id         INTEGER PRIMARY KEY,
    agent_id   INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    number     INTEGER,          -- per person, as they see it (#1, #2, ...); NULL for check-ins
    kind       TEXT    NOT NULL CHECK (kind IN ('reminder', 'checkin')),
    message    TEXT    NOT NULL,
    due_at     INTEGER NOT NULL, -- the time asked for (a check-in: when the silence began)
    fire_at    INTEGER NOT NULL, -- when it goes out: due_at, or later once postponed
    created_at INTEGER NOT NULL,
    chat       TEXT    NOT NULL CHECK (chat IN ('private', 'group')),
    route      TEXT    NOT NULL DEFAULT '',  -- a group's route (reminders set in a group)
    status     TEXT    NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'claimed', 'sent', 'skipped', 'failed', 'cancelled')),
    claimed_at INTEGER,          -- while claimed: when (a claim expires after a lease)
    sent_at    INTEGER,
    late       INTEGER NOT NULL DEFAULT 0,  -- claimed well after its time (the bot was down)
    note       TEXT    NOT NULL DEFAULT '', -- why it was postponed or failed
    UNIQUE (agent_id, number)
);
-- The scheduler's two questions, each answered from a small partial index.
CREATE INDEX reminders_due ON reminders (fire_at) WHERE status = 'pending';
CREATE INDEX reminders_claimed ON reminders (claimed_at) WHERE status = 'claimed';
CREATE INDEX reminders_by_agent ON reminders (agent_id, status);
-- At most one check-in per silence (a silence is named by the message that began it).
CREATE UNIQUE INDEX checkins_once ON reminders (agent_id, due_at) WHERE kind = 'checkin';

CREATE TABLE agent_prefs (
    agent_id    INTEGER PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    timezone    TEXT,            -- IANA name; NULL: the bot's default zone
    quiet_hours TEXT,            -- NULL: the operator's default; '': none; '22:00-07:00'
    checkins    INTEGER NOT NULL DEFAULT 1
);
