-- Restores an operator ran (`lifeboat restore`): who, when, from which
-- region, which points went where, the checks run on the restored data,
-- and how it ended. A restore still `running` when the next restore of its
-- plan starts belongs to a process that died: it is marked failed and its
-- staging places (recorded per resource) are removed.
CREATE TABLE restores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plan TEXT NOT NULL,
    region TEXT NOT NULL,
    -- `user@host` of whoever ran it.
    by_whom TEXT NOT NULL,
    -- What was asked for: `latest`, `at <RFC 3339>`, `point <id>`.
    moment TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    -- 0 when run with --no-checks.
    checks_run INTEGER NOT NULL,
    -- The checks run on the restored data, as a JSON array.
    checks TEXT NOT NULL DEFAULT '[]',
    error TEXT
);
CREATE INDEX restores_by_plan ON restores (plan, started_at);

CREATE TABLE restore_points (
    restore_id INTEGER NOT NULL REFERENCES restores (id),
    resource TEXT NOT NULL,
    point_id INTEGER REFERENCES points (id),
    -- Where the point was put: a folder, a file, a database.
    target TEXT NOT NULL,
    -- Where it was staged until verified (removed once put in place).
    staging TEXT,
    -- What putting it in place did, or why it did not.
    outcome TEXT,
    PRIMARY KEY (restore_id, resource)
);
