-- Replies that survive a crash. A turn takes up its person's waiting messages (`claimed`),
-- stores its reply together with its last step and notes it on those rows (`reply_id`, the
-- assistant message), and once the reply went out marks them `finished`. A turn that stopped on
-- the way (its process was killed, or lost its database connection) leaves rows claimed but
-- not finished: the person's next turn first finishes it, or sends again the reply it stored.
-- Rows taken up before this migration were answered then.
ALTER TABLE inbox ADD COLUMN finished INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN reply_id INTEGER;
UPDATE inbox SET finished = 1 WHERE claimed;
CREATE INDEX inbox_open ON inbox (platform, user_id, id) WHERE claimed AND NOT finished;
