-- The drill evidence chain, anchored in the catalog: per plan and region, the
-- newest record (its vault key and SHA-256) and how many records the chain
-- holds, so a chain deleted or cut short in the vault is detected; and per
-- drill, whether its record is written, so a write that failed is retried.
CREATE TABLE evidence_heads (
    plan        TEXT    NOT NULL,
    region      TEXT    NOT NULL,
    key         TEXT    NOT NULL,               -- vault key of the newest record
    sha256      TEXT    NOT NULL,               -- of that record's bytes
    length      INTEGER NOT NULL,               -- records in the chain
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (plan, region)
);

ALTER TABLE drills ADD COLUMN evidence_written INTEGER NOT NULL DEFAULT 0;

-- Drills finished before this migration: every finished drill wrote its
-- record then (or logged that it could not), and the vault cannot be read
-- from here, so they are assumed written. The first verify or write of each
-- chain adopts the records it finds as the chain's head; a drill of that era
-- whose write had failed stays reported missing, as it was before.
UPDATE drills SET evidence_written = 1 WHERE status != 'running';

-- The drills still waiting for their record: few, looked up on every drill
-- and prune.
CREATE INDEX drills_evidence_pending ON drills (plan, region, id) WHERE evidence_written = 0;

-- Marks the file as a Lifeboat catalog ('LFBT'): opening refuses a SQLite
-- database without it (or without this catalog's first migration).
PRAGMA application_id = 1279672916;
