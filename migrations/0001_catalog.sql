-- The Lifeboat catalog. Times are integer milliseconds since the Unix epoch (UTC).

-- One backup run of a plan: a point per resource in the primary region, then copies.
CREATE TABLE backup_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    plan         TEXT    NOT NULL,
    trigger      TEXT    NOT NULL,              -- manual | schedule | first-run
    slot         INTEGER,                       -- the cron slot, for scheduled runs
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    status       TEXT    NOT NULL,              -- running | succeeded | partial | failed | missed
    error        TEXT
);
CREATE INDEX backup_runs_plan_started ON backup_runs (plan, started_at);

-- One restorable copy of one resource in one region.
CREATE TABLE points (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    plan             TEXT    NOT NULL,
    resource         TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    region           TEXT    NOT NULL,
    run_id           INTEGER REFERENCES backup_runs (id),
    source_point_id  INTEGER REFERENCES points (id),
    status           TEXT    NOT NULL,          -- running | complete | failed | deleting | deleted
    started_at       INTEGER NOT NULL,
    data_time        INTEGER,                   -- the instant whose data the point holds
    completed_at     INTEGER,                   -- when the point became usable
    deleted_at       INTEGER,
    size_bytes       INTEGER,                   -- artifact size in the vault
    content_bytes    INTEGER,                   -- bytes of data it holds (uncompressed)
    file_count       INTEGER,
    sha256           TEXT,                      -- of the artifact
    location         TEXT,                      -- URL of the artifact
    flags            TEXT    NOT NULL DEFAULT '', -- comma-separated, e.g. shrunk
    error            TEXT
);
CREATE INDEX points_plan_region_resource ON points (plan, region, resource, status, data_time);
CREATE INDEX points_source ON points (source_point_id);

-- One restore drill of a plan.
CREATE TABLE drills (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    plan                   TEXT    NOT NULL,
    region                 TEXT    NOT NULL,
    trigger                TEXT    NOT NULL,
    status                 TEXT    NOT NULL,    -- running | passed | failed
    started_at             INTEGER NOT NULL,
    finished_at            INTEGER,
    rto_ms                 INTEGER,             -- NULL when the drill failed
    rpo_ms                 INTEGER,
    rto_objective_ms       INTEGER NOT NULL,
    rpo_objective_ms       INTEGER NOT NULL,
    choose_ms              INTEGER,
    restore_ms             INTEGER,
    checks_ms              INTEGER,
    cleanup_ms             INTEGER,
    kept_path              TEXT,
    error                  TEXT
);
CREATE INDEX drills_plan_started ON drills (plan, started_at);

CREATE TABLE drill_points (
    drill_id  INTEGER NOT NULL REFERENCES drills (id),
    point_id  INTEGER NOT NULL REFERENCES points (id),
    PRIMARY KEY (drill_id, point_id)
);
CREATE INDEX drill_points_point ON drill_points (point_id);

CREATE TABLE drill_checks (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    drill_id  INTEGER NOT NULL REFERENCES drills (id),
    name      TEXT    NOT NULL,
    resource  TEXT    NOT NULL,
    passed    INTEGER NOT NULL,
    detail    TEXT    NOT NULL,
    ms        INTEGER NOT NULL
);
CREATE INDEX drill_checks_drill ON drill_checks (drill_id);

-- Points pruned by retention, with why (points keep their row, status deleted).
CREATE TABLE prune_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    point_id  INTEGER NOT NULL REFERENCES points (id),
    pruned_at INTEGER NOT NULL,
    reason    TEXT    NOT NULL
);
