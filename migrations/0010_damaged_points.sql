-- Points found damaged: `lifeboat verify` (or a drill whose restore found
-- the data corrupt) got a definitive answer that the point's data is not
-- what the catalog recorded (missing, wrong size, wrong hash, a manifest
-- that does not parse, a snapshot gone). Status `damaged`; when it was
-- first found so (milliseconds since the epoch, UTC) and why. A damaged
-- point is not usable, and counts as never having been: its `deleted_at`
-- is set to its `completed_at` (usable over an empty interval), so the
-- exposure walk and its covering indexes (0006) drop it with no other
-- change. A later verify that finds its data whole again makes it
-- `complete` again, with `deleted_at`, `damaged_at` and `damage` cleared.
ALTER TABLE points ADD COLUMN damaged_at INTEGER;
ALTER TABLE points ADD COLUMN damage TEXT;
