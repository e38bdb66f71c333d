-- Where each point's data is, as data: a `resource::Location` as JSON
-- (`{"artifact":{"key":K}}`, `{"objects":{"key":K}}` or
-- `{"rds_snapshot":{"id":I,"arn":A}}`). Drills, copies and prune read it
-- back as written; `location` stays the URL (or ARN) shown to users.
ALTER TABLE points ADD COLUMN stored TEXT;

-- Points recorded before this column: vault keys are always
-- PLAN/RESOURCE/NAME, NAME being the last segment of the URL (the rtrim
-- idiom strips everything after the last '/'); a snapshot's identifier is
-- the last ':'-separated part of its ARN (or the whole, before it had one).
UPDATE points
   SET stored = json_object(
         CASE kind WHEN 's3' THEN 'objects' ELSE 'artifact' END,
         json_object('key', plan || '/' || resource || '/'
                     || substr(location, length(rtrim(location, replace(location, '/', ''))) + 1)))
 WHERE location IS NOT NULL AND kind IN ('path', 'sqlite', 'postgres', 's3');

UPDATE points
   SET stored = json_object('rds_snapshot', json_object(
         'id', substr(location, length(rtrim(location, replace(location, ':', ''))) + 1),
         'arn', CASE WHEN location LIKE 'arn:%' THEN location END))
 WHERE location IS NOT NULL AND kind IN ('rds-instance', 'rds-cluster');
