-- 0003_pool_processes.sql - the processes of persistent handlers (protocol
-- v2), one row per live process, written when it starts and deleted when
-- jobd has reaped it. A pool process serves many jobs and is idle between
-- them, so the jobs' rows cannot name it: a jobd restarted after a crash
-- kills every process listed here (pid and start time together name one
-- process, even after the pid is reused) before it starts its own pools.
CREATE TABLE pool_procs (
    pid         INTEGER PRIMARY KEY,  -- its process group too (a new session)
    pid_start   INTEGER NOT NULL,     -- /proc/PID/stat field 22
    type        TEXT NOT NULL,        -- the job type it serves, for the log
    started_at  INTEGER NOT NULL      -- Unix ms
);
