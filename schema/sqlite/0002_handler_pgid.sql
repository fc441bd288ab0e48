-- 0002_handler_pgid.sql - the exec handler's process group, so that a jobd
-- restarted after a crash can stop the handlers its predecessor left running
-- before it hands their jobs on (otherwise two copies could run at once).
ALTER TABLE held ADD COLUMN pgid INTEGER;          -- NULL: no exec handler
ALTER TABLE held ADD COLUMN pgid_start INTEGER;    -- its start time (/proc/PID/stat field 22)
