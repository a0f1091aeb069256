-- Schema version 4 (PostgreSQL): batches record when all their rows were
-- loaded; the ledger's own settings (../0004_load_meta.sql).

ALTER TABLE batches ADD COLUMN loaded_at TEXT;
UPDATE batches SET loaded_at = created_at
	WHERE row_count = (SELECT count(*) FROM rows WHERE rows.batch_id = batches.id);

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
