package ledger

import (
	"errors"
	"strings"
	"testing"
)

func TestRebind(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT * FROM t WHERE a = ? AND b = ?`, `SELECT * FROM t WHERE a = $1 AND b = $2`},
		{`SELECT '?', "a?b", ? -- what?
			/* why? */ FROM t WHERE x = ?`, `SELECT '?', "a?b", $1 -- what?
			/* why? */ FROM t WHERE x = $2`},
		{`SELECT 'it''s ?' || ?`, `SELECT 'it''s ?' || $1`},
		{`DO $$ BEGIN PERFORM '?'; END $$; SELECT ?`, `DO $$ BEGIN PERFORM '?'; END $$; SELECT $1`},
		{`SELECT $tag$ ? $tag$, ?`, `SELECT $tag$ ? $tag$, $1`},
		{`SELECT (a, b) > (?, ?) LIMIT ?`, `SELECT (a, b) > ($1, $2) LIMIT $3`},
	} {
		if got := rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/var/lib/payouts/payouts.db", "/var/lib/payouts/payouts.db"},
		{"postgres://payouts:s3cr%40t@db.example:5432/payouts?sslmode=require", "postgres://payouts:xxxxx@db.example:5432/payouts?sslmode=require"},
		{"postgresql://payouts@db/payouts", "postgresql://payouts@db/payouts"},
		{"postgres://db/payouts?password=hunter2&sslmode=disable", "postgres://db/payouts?password=xxxxx&sslmode=disable"},
		{"postgres://u:pw@[bad", "postgres://(unparseable URL)"},
	} {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	loc := "postgres://payouts:s3cr%40t@127.0.0.1:1/payouts?password=hunter2"
	err := redactErr(loc, errors.New("failed to connect to "+loc+": password s3cr@t, hunter2 refused"))
	if strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("redactErr kept a password: %v", err)
	}
}
