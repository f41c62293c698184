-- Replies that survive a crash, and several bot processes on one database.
--
-- A turn takes up its person's waiting messages (`claimed`), stores its reply together with its
-- last step and notes it on those rows (`reply_id`, the assistant message), and once the reply
-- went out marks them `finished`. A turn that stopped on the way (its process was killed, or
-- lost its connection and with it the person's lock) leaves rows claimed but not finished: the
-- person's next lock holder, in any process, first finishes it, or sends again the reply it
-- stored. Rows taken up before this migration were answered then.
ALTER TABLE inbox ADD COLUMN finished boolean NOT NULL DEFAULT false;
ALTER TABLE inbox ADD COLUMN reply_id bigint;
UPDATE inbox SET finished = true WHERE claimed;
CREATE INDEX inbox_open ON inbox (platform, user_id, id) WHERE claimed AND NOT finished;

-- When something paced across processes last happened (`Storage.pace`: Discord allows one
-- gateway IDENTIFY per 5 seconds for the whole bot), in seconds since the epoch, server time.
CREATE TABLE pacing (
    name    text             PRIMARY KEY,
    last_at double precision NOT NULL
);
