-- The daemons of a fleet sharing this catalog: one row each, renewed by its
-- heartbeat; a row whose expires_at has passed is a daemon presumed dead
-- (docs/fleet.md). Plans are owned through `leases` rows of kind `owner`.
CREATE TABLE daemons (
    id            TEXT    NOT NULL PRIMARY KEY, -- random, one per daemon start
    host          TEXT    NOT NULL,             -- the daemon's host name, for people
    pid           INTEGER NOT NULL,
    labels        TEXT    NOT NULL DEFAULT '',  -- comma-separated, for [placement]
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL              -- heartbeat_at + the lease time
);
