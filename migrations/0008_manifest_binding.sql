-- The SHA-256 of a point's manifest as written into the vault: a drill or
-- restore refuses a manifest whose bytes differ, so another point's valid
-- artifact and manifest cannot vouch for this one. NULL for points taken
-- before it was recorded (they are checked against `sha256`, `size_bytes`
-- and `data_time`) and for RDS points, which have no manifest.
ALTER TABLE points ADD COLUMN manifest_sha256 TEXT;

-- The point that took the data, for a point rebuilt from a vault's
-- manifests (`catalog rebuild`): its manifest names that point, whose row
-- the new catalog may not have. NULL otherwise (a copy's origin is its
-- `source_point_id`, a primary point's its own id).
ALTER TABLE points ADD COLUMN origin_point_id INTEGER;

-- For a drill recorded again from its evidence record (`catalog rebuild`):
-- the ids of the points its record names, as JSON, which are the lost
-- catalog's ids; `drill_points` links only those this catalog holds with
-- the same identity. NULL for drills this catalog ran.
ALTER TABLE drills ADD COLUMN recorded_points TEXT;
