-- What each daemon of a fleet has loaded: how many plans and a digest of
-- their names and placements (docs/fleet.md). Daemons that load different
-- plans would place a plan on one that lacks it; `lifeboat fleet` shows it.
ALTER TABLE daemons ADD COLUMN plans_loaded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE daemons ADD COLUMN plans_digest TEXT NOT NULL DEFAULT '';
