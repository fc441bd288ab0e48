-- 0001_init.sql - the local journal of one jobd (CONTRACT guarantees 3, 5, 6).
--
-- One row per job whose lease this jobd holds and that needs to survive a
-- crash or a Redis outage: a job that checkpointed or ran long enough to be
-- worth resuming, or whose outcome Redis has not confirmed yet. The row goes
-- once Redis confirms the outcome (or rejects it as stale).
CREATE TABLE held (
    id          TEXT PRIMARY KEY,
    queue       TEXT NOT NULL,
    token       TEXT NOT NULL,      -- the lease token: outcomes stay fenced
    attempt     INTEGER NOT NULL,
    claimed_at  INTEGER NOT NULL,   -- Unix ms
    ckpt_seq    INTEGER NOT NULL DEFAULT 0,
    checkpoint  TEXT,               -- newest checkpoint JSON, NULL if none
    progress    REAL NOT NULL DEFAULT 0,
    -- The outbox: set once the job ended and until Redis confirms.
    outcome     TEXT,               -- ack | retry | dead | canceled | release
    result      TEXT,
    error       TEXT,
    retry_ms    INTEGER NOT NULL DEFAULT 0,
    ended_at    INTEGER
) WITHOUT ROWID;
