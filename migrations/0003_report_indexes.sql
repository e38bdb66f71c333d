-- Indexes that keep `report` and `status` fast on catalogs of millions of
-- rows (bench/report_scale.sh: 10 M points, 3.5 M runs and jobs).

-- The exposure walk reads, per plan, the points not deleted before the
-- window's start (deleted_at NULL, or later) that completed before its
-- end: two ranges of this index, whatever the catalog's history.
CREATE INDEX points_plan_deleted ON points (plan, deleted_at, completed_at);

-- Few rows among millions: partial indexes find them without a scan.
CREATE INDEX points_flagged ON points (plan, completed_at) WHERE flags != '';
CREATE INDEX backup_runs_troubled ON backup_runs (plan, started_at)
    WHERE status IN ('failed', 'partial');
CREATE INDEX jobs_troubled ON jobs (plan, scheduled_start)
    WHERE status IN ('missed', 'failed');
