-- When the daemon first scheduled each plan's job kind (its track), so
-- that slots from before a plan existed are never recorded as missed: a
-- new plan, or a plan given a `[verify]` or drill schedule, starts with
-- no misses, whatever its start window. A row is removed when the daemon
-- stops scheduling that track (the plan file removed, the schedule
-- dropped), so a plan added back later starts afresh. Daemon downtime
-- keeps the row: slots missed while the daemon was down are still misses.
CREATE TABLE plans_first_seen (
    plan        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,          -- backup | drill | prune | verify
    first_seen  INTEGER NOT NULL,          -- ms since the epoch, UTC
    PRIMARY KEY (plan, kind)
);
-- Tracks the daemon already ran keep their history: seen since their
-- first job's slot.
INSERT INTO plans_first_seen (plan, kind, first_seen)
    SELECT plan, kind, MIN(slot) FROM jobs GROUP BY plan, kind;
