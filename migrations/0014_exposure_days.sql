-- The RPO exposure of each plan and region, one row per closed UTC day,
-- kept so that a report reads rows in proportion to plans × days rather
-- than to points (issue 17). A row is a cache of the walk over the points
-- (report::daily): its `basis` names what else the numbers depend on (the
-- objective, the protection start, the resources), and a row whose basis
-- differs from the plan's now is walked again. Rows are written by the
-- report, never by a backup, so a backup pays only the triggers below.
CREATE TABLE exposure_days (
    plan        TEXT    NOT NULL,
    region      TEXT    NOT NULL,
    day         INTEGER NOT NULL,   -- the day's UTC midnight, ms since the epoch
    basis       TEXT    NOT NULL,   -- `rpo_ms/protection_start/resource,resource…`
    worst_ms    INTEGER NOT NULL,   -- the worst exposure reached that day
    within_ms   INTEGER NOT NULL,   -- how long it stayed within the objective
    total_ms    INTEGER NOT NULL,   -- how much of the day was protected
    breaches    TEXT    NOT NULL,   -- `start:end:worst` periods over the objective, `;`-separated
    PRIMARY KEY (plan, region, day)
) WITHOUT ROWID;

-- Bumped by every change to a point's validity (it became usable, was
-- deleted, or was put in the catalog by a rebuild): a report stores the
-- days it walked only if the epoch it read before walking is still the
-- current one, so a change committed during its walk is never cached
-- over.
CREATE TABLE exposure_epochs (
    plan    TEXT    NOT NULL,
    region  TEXT    NOT NULL,
    epoch   INTEGER NOT NULL,
    PRIMARY KEY (plan, region)
) WITHOUT ROWID;

-- A point changes the exposure from the first instant its validity
-- interval [completed_at, deleted_at) changes: its completion (a new
-- point, a rebuild's point from the past) or its deletion. Days ending
-- after that instant are dropped. An ordinary backup or prune touches
-- only today, which is never stored; a rebuild or a past deletion drops
-- the days it changes.
CREATE TRIGGER exposure_days_point_inserted AFTER INSERT ON points
WHEN NEW.completed_at IS NOT NULL
BEGIN
    DELETE FROM exposure_days
     WHERE plan = NEW.plan AND region = NEW.region
       AND day > NEW.completed_at - 86400000;
    INSERT INTO exposure_epochs (plan, region, epoch) VALUES (NEW.plan, NEW.region, 1)
        ON CONFLICT (plan, region) DO UPDATE SET epoch = epoch + 1;
END;

CREATE TRIGGER exposure_days_point_changed AFTER UPDATE OF completed_at, deleted_at, data_time, resource ON points
WHEN OLD.completed_at IS NOT NEW.completed_at OR OLD.deleted_at IS NOT NEW.deleted_at
  OR ((OLD.data_time IS NOT NEW.data_time OR OLD.resource IS NOT NEW.resource)
      AND NEW.completed_at IS NOT NULL)
BEGIN
    DELETE FROM exposure_days
     WHERE plan = NEW.plan AND region = NEW.region
       AND day > (CASE
             WHEN OLD.completed_at IS NOT NEW.completed_at OR OLD.data_time IS NOT NEW.data_time
               OR OLD.resource IS NOT NEW.resource
             THEN min(coalesce(OLD.completed_at, 9000000000000000), coalesce(NEW.completed_at, 9000000000000000))
             ELSE min(coalesce(OLD.deleted_at, 9000000000000000), coalesce(NEW.deleted_at, 9000000000000000))
           END) - 86400000;
    INSERT INTO exposure_epochs (plan, region, epoch) VALUES (NEW.plan, NEW.region, 1)
        ON CONFLICT (plan, region) DO UPDATE SET epoch = epoch + 1;
END;

CREATE TRIGGER exposure_days_point_removed AFTER DELETE ON points
WHEN OLD.completed_at IS NOT NULL
BEGIN
    DELETE FROM exposure_days
     WHERE plan = OLD.plan AND region = OLD.region
       AND day > OLD.completed_at - 86400000;
    INSERT INTO exposure_epochs (plan, region, epoch) VALUES (OLD.plan, OLD.region, 1)
        ON CONFLICT (plan, region) DO UPDATE SET epoch = epoch + 1;
END;
