-- Leases: who may run what, kept in the catalog itself so that exclusion
-- holds whatever path spelling, work folder or host a process uses. One
-- row per (plan, kind) while someone holds it: `kind` is what is held
-- (backup, drill, verify, restore; `daemon` with plan '*' for the
-- catalog's one daemon). `owner` is a random token drawn for each
-- acquisition: only its holder renews or releases the row. `node` says
-- where `pid` means something (the kernel's boot id and the holder's pid
-- namespace): a lease whose node is ours and whose pid no longer exists is
-- taken over at once; any other is taken over only once `expires_at` has
-- passed without a heartbeat. Times in milliseconds since the epoch, UTC.
-- Taken in one statement (INSERT ... ON CONFLICT ... DO UPDATE ... WHERE),
-- portable to PostgreSQL.
CREATE TABLE leases (
    plan          TEXT    NOT NULL,          -- a plan's name, or '*' for the whole catalog
    kind          TEXT    NOT NULL,          -- backup | drill | verify | restore | daemon
    owner         TEXT    NOT NULL,          -- random token of this acquisition
    pid           INTEGER NOT NULL,          -- the holder's process id
    host          TEXT    NOT NULL,          -- the holder's host name, for people
    node          TEXT    NOT NULL,          -- boot id and pid namespace (where pid is meaningful)
    acquired_at   INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,          -- heartbeat_at + the holder's time to live
    PRIMARY KEY (plan, kind)
);
