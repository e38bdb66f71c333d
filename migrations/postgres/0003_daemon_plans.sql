-- What each daemon of a fleet has loaded (SQLite: 0016_daemon_plans.sql).
ALTER TABLE daemons ADD COLUMN plans_loaded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE daemons ADD COLUMN plans_digest TEXT NOT NULL DEFAULT '';
