-- Schema version 4: batches record when all their rows were loaded; the
-- ledger's own settings (the card fingerprint key's id).

-- NULL while a run is still loading the batch's rows (in many short
-- transactions, so a runner paying another batch is never locked out):
-- no row of such a batch is started. Batches from before this version were
-- loaded in one transaction; one whose rows are all there is loaded.
ALTER TABLE batches ADD COLUMN loaded_at TEXT;
UPDATE batches SET loaded_at = created_at
	WHERE row_count = (SELECT count(*) FROM rows WHERE rows.batch_id = batches.id);

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;
