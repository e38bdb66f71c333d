-- The SHA-256 of a point's manifest as written into the vault: a drill or
-- restore refuses a manifest whose bytes differ, so another point's valid
-- artifact and manifest cannot vouch for this one. NULL for points taken
-- before it was recorded (they are checked against `sha256`, `size_bytes`
-- and `data_time`) and for RDS points, which have no manifest.
ALTER TABLE points ADD COLUMN manifest_sha256 TEXT;
