-- S3 Object Lock: until when a point's objects are locked (milliseconds
-- since the epoch, UTC), for points written into a region with
-- `object_lock`; NULL otherwise. Prune keeps a point until then: S3
-- refuses to delete a locked version.
ALTER TABLE points ADD COLUMN locked_until INTEGER;
