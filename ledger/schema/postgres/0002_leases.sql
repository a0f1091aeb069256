-- Schema version 2 (PostgreSQL): one runner lease per batch (../0002_leases.sql).

CREATE TABLE leases (
	batch_id     TEXT PRIMARY KEY,
	host         TEXT NOT NULL,
	pid          INTEGER NOT NULL,
	command      TEXT NOT NULL,
	token        TEXT NOT NULL,  -- random, identifies the holder's Lease value
	acquired_at  TEXT NOT NULL,
	heartbeat_at TEXT NOT NULL
);
