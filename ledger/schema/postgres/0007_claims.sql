-- Schema version 7 (PostgreSQL): row claims, for several runners sharing
-- one batch (../0007_claims.sql; ledger/claim.go).
--
-- A runner claims open rows in chunks (SELECT … FOR UPDATE SKIP LOCKED on
-- rows), each claim with its owner and an expiry on the database's clock,
-- renewed by the owner's heartbeat. Every change of a claimed row is fenced
-- by the claim: the ledger refuses it unless it comes from the owner of an
-- unexpired claim. Claims and changes of a row both hold the row's lock, so
-- a claim cannot change hands between a change's check and its commit.
-- Unlike every other time in the ledger, expires_at is a timestamptz: it
-- is compared with the database's clock, never with a runner's.

CREATE TABLE claims (
	row_id     BIGINT PRIMARY KEY REFERENCES rows(id),
	batch_id   TEXT NOT NULL REFERENCES batches(id),
	owner      TEXT NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	claimed_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX claims_owner ON claims (batch_id, owner);
