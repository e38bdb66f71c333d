-- Scheduled work of the daemon: one row per (plan, kind, slot), so a slot is
-- never run twice, and every slot that could not run is recorded as missed.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    plan             TEXT    NOT NULL,
    kind             TEXT    NOT NULL,          -- backup | drill | prune
    slot             INTEGER NOT NULL,          -- the cron slot (or the instant of a first-run backup)
    scheduled_start  INTEGER NOT NULL,          -- slot + the stable jitter offset
    status           TEXT    NOT NULL,          -- running | succeeded | failed | missed
    started_at       INTEGER,
    finished_at      INTEGER,
    run_id           INTEGER REFERENCES backup_runs (id),
    drill_id         INTEGER REFERENCES drills (id),
    error            TEXT,                      -- why it failed or was missed
    UNIQUE (plan, kind, slot)
);
CREATE INDEX jobs_plan_kind_status ON jobs (plan, kind, status);
