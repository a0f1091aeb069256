-- Schema version 7: row claims, for several runners sharing one batch.
--
-- Only a PostgreSQL ledger is shared by several runners (see
-- postgres/0007_claims.sql and ledger/claim.go); a SQLite ledger has one
-- runner per batch, under its lease, and never writes this table. It is
-- created here too so that both backends have the same schema versions.

CREATE TABLE claims (
	row_id     INTEGER PRIMARY KEY REFERENCES rows(id),
	batch_id   TEXT NOT NULL REFERENCES batches(id),
	owner      TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	claimed_at TEXT NOT NULL
) STRICT;

CREATE INDEX claims_owner ON claims (batch_id, owner);
