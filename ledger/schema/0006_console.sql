-- Schema version 6: the finance console (payouts serve --web).
--
-- Plain SQL that PostgreSQL also reads (apart from STRICT, which every
-- table of this ledger has): TEXT times in UTC as elsewhere, INTEGER flags,
-- CHECK constraints, and triggers only for the append-only audit log.

-- Console users. roles is a comma-separated subset of maker, approver,
-- viewer, admin. password_hash is a PHC string ($argon2id$v=19$...); the
-- password itself is never stored.
CREATE TABLE console_users (
	name          TEXT PRIMARY KEY CHECK (name <> ''),
	roles         TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	failed_logins INTEGER NOT NULL DEFAULT 0,  -- wrong passwords in a row
	locked_until  TEXT,                        -- NULL: not locked
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL
) STRICT;

-- Web sessions. The cookie holds a random 32-byte token; only its SHA-256
-- is kept, so a copy of the ledger opens no session.
CREATE TABLE console_sessions (
	token_sha256 TEXT PRIMARY KEY,
	user_name    TEXT NOT NULL REFERENCES console_users(name),
	remote_addr  TEXT NOT NULL DEFAULT '',
	created_at   TEXT NOT NULL,
	last_seen_at TEXT NOT NULL,  -- idle expiry counts from here
	expires_at   TEXT NOT NULL   -- absolute expiry
) STRICT;

CREATE INDEX console_sessions_user ON console_sessions (user_name);

-- The console's audit log: who did what, when, from where. Append-only.
CREATE TABLE audit_log (
	id          INTEGER PRIMARY KEY,
	at          TEXT NOT NULL,
	actor       TEXT NOT NULL,               -- console user, or 'cli:<os user>'
	remote_addr TEXT NOT NULL DEFAULT '',
	action      TEXT NOT NULL CHECK (action <> ''),
	batch_id    TEXT NOT NULL DEFAULT '',
	detail      TEXT NOT NULL DEFAULT ''     -- PAN-scrubbed
) STRICT;

CREATE INDEX audit_log_batch ON audit_log (batch_id, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- A ledger batch uploaded through the console, and where it stands in the
-- four-eyes flow: awaiting_approval → rejected | paying → done. A rerun
-- request (pending = 'rerun') takes a done batch back to awaiting_approval;
-- its rejection takes it back to done. requested_by made the pending
-- request (the uploader, or the maker of the rerun); approved_by is never
-- either of them.
CREATE TABLE console_batches (
	batch_id     TEXT PRIMARY KEY REFERENCES batches(id),
	state        TEXT NOT NULL CHECK (state IN ('awaiting_approval', 'rejected', 'paying', 'done')),
	pending      TEXT NOT NULL DEFAULT 'upload' CHECK (pending IN ('upload', 'rerun')),
	file_name    TEXT NOT NULL,
	options      TEXT NOT NULL DEFAULT '{}',  -- manifest options as validated (JSON)
	uploaded_by  TEXT NOT NULL,
	requested_by TEXT NOT NULL,
	approved_by  TEXT NOT NULL DEFAULT '',
	created_at   TEXT NOT NULL,
	updated_at   TEXT NOT NULL,
	CHECK (approved_by = '' OR (approved_by <> uploaded_by AND approved_by <> requested_by))
) STRICT;
