-- The exposure walk (report) reads millions of point rows; 0003's
-- `points_plan_deleted` index made it look each row up in the table, one
-- random page read per row, since plans interleave in time. These two
-- indexes hold every column the walk reads, per plan and region, so it
-- reads index pages in order and never the table (bench/report_scale.sh).

-- Points completed in the window, streamed in completion order per region.
CREATE INDEX points_plan_region_completed
    ON points (plan, region, completed_at, resource, data_time, deleted_at);

-- Points already usable at the window's start: per resource, the newest
-- one still usable after a given instant (a handful of lookups, not a scan
-- of every point retention still keeps).
CREATE INDEX points_plan_region_resource_deleted
    ON points (plan, region, resource, deleted_at, completed_at, data_time);

DROP INDEX points_plan_deleted;
