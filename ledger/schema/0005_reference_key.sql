-- Schema version 5: one reference identity.
--
-- reference_key is refid.Key(reference) (internal/refid: NFKC, full case
-- folding, NFKC): two references are the same reference if and only if
-- their keys are equal. The ledger computes it on insert; lookups by
-- reference and the risk key use it. SQLite has no NFKC, so the Go step of
-- this migration (ledger/refkey.go) fills it for existing rows and
-- recomputes their risk keys, which older binaries made by upper-casing the
-- reference.
--
-- A batch holds each key once. A ledger written before keys existed may
-- hold two spellings of one key in a batch (PAY-1 and ＰＡＹ-１ passed the
-- old duplicate check): every row but the first keeps reference_dup = its
-- id, so the unique index holds, and gets an event. reference_dup is 0 for
-- every other row, and for every row inserted from now on.

ALTER TABLE rows ADD COLUMN reference_key TEXT NOT NULL DEFAULT '';
ALTER TABLE rows ADD COLUMN reference_dup INTEGER NOT NULL DEFAULT 0;
UPDATE rows SET reference_dup = id;

CREATE UNIQUE INDEX rows_reference_key ON rows (reference_key, batch_id, reference_dup);
DROP INDEX rows_reference;

CREATE TRIGGER rows_reference_key_required BEFORE INSERT ON rows
WHEN NEW.reference_key = '' OR NEW.reference_dup <> 0
BEGIN
	SELECT RAISE(ABORT, 'a row needs its reference_key, and reference_dup is only for rows written before schema 5');
END;

CREATE TRIGGER rows_reference_is_fixed BEFORE UPDATE OF batch_id, reference ON rows
BEGIN
	SELECT RAISE(ABORT, 'a row''s batch and reference never change');
END;
