-- Schema version 1: batches, rows, attempts, events, webhooks.
-- Times are TEXT in UTC, fixed width (2006-01-02T15:04:05.000000000Z), so they sort.

CREATE TABLE batches (
	id              TEXT PRIMARY KEY,
	manifest_name   TEXT NOT NULL,
	manifest_sha256 TEXT NOT NULL,
	created_at      TEXT NOT NULL,
	options         TEXT NOT NULL DEFAULT '{}',  -- JSON, as given by the runner
	row_count       INTEGER NOT NULL DEFAULT 0,
	totals          TEXT NOT NULL DEFAULT '{}'   -- JSON {"RUB": 150000} in minor units
) STRICT;

CREATE TABLE rows (
	id                  INTEGER PRIMARY KEY,
	batch_id            TEXT NOT NULL REFERENCES batches(id),
	line                INTEGER NOT NULL,
	reference           TEXT NOT NULL CHECK (reference <> ''),
	amount              INTEGER NOT NULL CHECK (amount > 0),           -- minor units
	currency            TEXT NOT NULL CHECK (currency GLOB '[A-Z][A-Z][A-Z]'),
	recipient_name      TEXT NOT NULL,
	email               TEXT NOT NULL DEFAULT '',
	description         TEXT NOT NULL DEFAULT '',
	card_bin            TEXT NOT NULL DEFAULT '',
	card_last4          TEXT NOT NULL DEFAULT '',
	card_fingerprint    TEXT NOT NULL DEFAULT '',                      -- keyed HMAC, key not in this file
	state               TEXT NOT NULL CHECK (state IN ('planned', 'creating', 'created', 'starting',
		'awaiting_confirm', 'confirming', 'cancelling', 'confirmed', 'succeeded', 'failed',
		'cancelled', 'mismatch', 'unknown', 'review', 'skipped')),
	attempt             INTEGER NOT NULL DEFAULT 0,                    -- live attempt number
	failure_code        TEXT NOT NULL DEFAULT '',
	failure_description TEXT NOT NULL DEFAULT '',
	-- Invariant 4: set while money can move for the row (creating .. succeeded),
	-- NULL in planned, failed, cancelled, mismatch, skipped. Unique over the ledger.
	risk_key            TEXT,
	created_at          TEXT NOT NULL,
	updated_at          TEXT NOT NULL,
	finished_at         TEXT,
	UNIQUE (batch_id, reference)
) STRICT;

CREATE UNIQUE INDEX rows_risk_key ON rows (risk_key) WHERE risk_key IS NOT NULL;
CREATE INDEX rows_batch_line ON rows (batch_id, line, id);
CREATE INDEX rows_batch_state ON rows (batch_id, state, line, id);
CREATE INDEX rows_reference ON rows (reference);

-- A succeeded row never moves again, whatever the code above says.
CREATE TRIGGER rows_succeeded_is_final BEFORE UPDATE OF state ON rows
WHEN OLD.state = 'succeeded' AND NEW.state <> 'succeeded'
BEGIN
	SELECT RAISE(ABORT, 'succeeded is final');
END;

CREATE TABLE attempts (
	id                  INTEGER PRIMARY KEY,
	row_id              INTEGER NOT NULL REFERENCES rows(id),
	n                   INTEGER NOT NULL CHECK (n > 0),
	session_id          TEXT,
	payout_id           TEXT,
	keys                TEXT NOT NULL DEFAULT '{}',  -- JSON {method: idempotency key}
	state               TEXT NOT NULL,
	failure_code        TEXT NOT NULL DEFAULT '',
	failure_description TEXT NOT NULL DEFAULT '',
	created_at          TEXT NOT NULL,
	updated_at          TEXT NOT NULL,
	UNIQUE (row_id, n)
) STRICT;

CREATE UNIQUE INDEX attempts_session ON attempts (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE events (
	id         INTEGER PRIMARY KEY,
	batch_id   TEXT NOT NULL REFERENCES batches(id),
	row_id     INTEGER REFERENCES rows(id),  -- NULL: batch-level
	attempt    INTEGER NOT NULL DEFAULT 0,
	from_state TEXT NOT NULL DEFAULT '',
	to_state   TEXT NOT NULL DEFAULT '',
	reason     TEXT NOT NULL,
	detail     TEXT NOT NULL DEFAULT '',     -- PAN-scrubbed
	at         TEXT NOT NULL
) STRICT;

CREATE INDEX events_batch ON events (batch_id, id);
CREATE INDEX events_row ON events (row_id, id);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TABLE webhooks (
	id             INTEGER PRIMARY KEY,
	type           TEXT NOT NULL DEFAULT '',
	session_id     TEXT NOT NULL DEFAULT '',
	session_status TEXT NOT NULL DEFAULT '',
	payout_status  TEXT NOT NULL DEFAULT '',
	body_sha256    TEXT NOT NULL UNIQUE,      -- of the raw body as received
	body           BLOB NOT NULL,             -- PAN-scrubbed
	verified       INTEGER NOT NULL DEFAULT 0,
	applied        INTEGER NOT NULL DEFAULT 0,
	result         TEXT NOT NULL DEFAULT '',
	received_at    TEXT NOT NULL
) STRICT;

CREATE INDEX webhooks_session ON webhooks (session_id, id);
CREATE INDEX webhooks_pending ON webhooks (id) WHERE applied = 0;
CREATE INDEX webhooks_received ON webhooks (received_at);
