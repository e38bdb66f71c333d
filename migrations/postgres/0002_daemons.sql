-- The daemons of a fleet sharing this catalog (SQLite: 0015_daemons.sql).
CREATE TABLE daemons (
    id            TEXT    NOT NULL PRIMARY KEY,
    host          TEXT    NOT NULL,
    pid           BIGINT  NOT NULL,
    labels        TEXT    NOT NULL DEFAULT '',
    started_at    BIGINT  NOT NULL,
    heartbeat_at  BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL
);
