-- Schema version 5 (PostgreSQL): one reference identity (../0005_reference_key.sql).
--
-- reference_key is refid.Key(reference), computed by the ledger on insert.
-- No PostgreSQL ledger was ever written before this version (the backend
-- arrived with schema 5), so there are no rows to fill and no legacy
-- spellings: the SQLite migration's Go step has no PostgreSQL twin, and
-- reference_dup is 0 for every row.

ALTER TABLE rows ADD COLUMN reference_key TEXT NOT NULL DEFAULT '';
ALTER TABLE rows ADD COLUMN reference_dup BIGINT NOT NULL DEFAULT 0;

CREATE UNIQUE INDEX rows_reference_key ON rows (reference_key, batch_id, reference_dup);
DROP INDEX rows_reference;

CREATE TRIGGER rows_reference_key_required BEFORE INSERT ON rows
FOR EACH ROW WHEN (NEW.reference_key = '' OR NEW.reference_dup <> 0)
EXECUTE FUNCTION payouts_refuse('a row needs its reference_key, and reference_dup is only for rows written before schema 5');

CREATE TRIGGER rows_reference_is_fixed BEFORE UPDATE OF batch_id, reference ON rows
FOR EACH ROW EXECUTE FUNCTION payouts_refuse('a row''s batch and reference never change');
