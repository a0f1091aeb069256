package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// Backend names a database engine the ledger runs on.
type Backend string

// The backends.
const (
	BackendSQLite   Backend = "sqlite"
	BackendPostgres Backend = "postgres"
)

// dialect is everything that differs between the backends. The queries
// themselves are one set, written with ? placeholders (rebound to $n for
// PostgreSQL when a statement is prepared, see rebind), ON CONFLICT upserts
// and RETURNING, which both engines speak.
type dialect struct {
	backend Backend
	// begin starts the writer's group transaction: SQLite takes the write
	// lock at once (BEGIN IMMEDIATE), so a group never fails half-way on a
	// lock; PostgreSQL locks rows as it goes.
	begin string
	// forUpdate is appended to a SELECT whose rows the transaction will
	// then change: PostgreSQL locks them (read committed would otherwise
	// let two processes read the same state and both act on it); SQLite's
	// write transactions are serialized already.
	forUpdate string
	// batchOrder orders batches newest first, ties by insertion.
	batchOrder string
	// isUnique reports a unique constraint violation.
	isUnique func(error) bool
	// isTransient reports an error after which the same transaction, run
	// again, may succeed: a serialization failure or a deadlock.
	isTransient func(error) bool
}

var sqliteDialect = dialect{
	backend:     BackendSQLite,
	begin:       "BEGIN IMMEDIATE",
	forUpdate:   "",
	batchOrder:  "created_at DESC, rowid DESC",
	isUnique:    sqliteUnique,
	isTransient: func(err error) bool { return errors.Is(err, sqlite3.ErrBusy) || errors.Is(err, sqlite3.ErrLocked) },
}

var postgresDialect = dialect{
	backend:    BackendPostgres,
	begin:      "BEGIN",
	forUpdate:  " FOR UPDATE",
	batchOrder: "created_at DESC, seq DESC",
	isUnique:   func(err error) bool { return pgCode(err) == "23505" },
	isTransient: func(err error) bool {
		c := pgCode(err)
		return c == "40001" || c == "40P01" // serialization_failure, deadlock_detected
	},
}

func sqliteUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isUnique reports whether err is a UNIQUE constraint violation, on either
// backend.
func isUnique(err error) bool {
	return err != nil && (sqliteUnique(err) || pgCode(err) == "23505")
}

// guard runs one statement that may violate a unique constraint. SQLite
// undoes only the failed statement; PostgreSQL aborts the whole
// transaction, so there the statement runs under a savepoint of its own and
// the transaction goes on after a violation (to name the holder, say).
func (d dialect) guard(ctx context.Context, tx dbtx, fn func() error) error {
	if d.backend != BackendPostgres {
		return fn()
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT guard"); err != nil {
		return err
	}
	err := fn()
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT guard"); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	if _, rerr := tx.ExecContext(ctx, "RELEASE SAVEPOINT guard"); rerr != nil && err == nil {
		return rerr
	}
	return err
}

// lockKey serializes transactions that must not interleave on key (the
// creation of one batch, the ledger's settings) until the transaction ends.
// SQLite's write transactions hold the whole file already.
func (d dialect) lockKey(ctx context.Context, tx dbtx, key string) error {
	if d.backend != BackendPostgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, key)
	return err
}

// ErrOutcomeUnknown is wrapped by the error of a write whose commit was
// sent but whose answer was lost (the PostgreSQL connection broke): it may
// or may not be in the ledger. Read the ledger again before acting on it,
// as after any unknown outcome.
var ErrOutcomeUnknown = errors.New("commit outcome unknown")

// IsConnectionError reports whether err means the connection to the
// database was lost (a server restart, a network cut), so that the same
// work may succeed on a new connection once the server is back.
func IsConnectionError(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe):
		// admin_shutdown, crash_shutdown, cannot_connect_now, connection
		// exceptions.
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || strings.HasPrefix(pe.Code, "08")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &ne):
		return true
	case pgconn.SafeToRetry(err):
		return true
	}
	s := err.Error()
	return strings.Contains(s, "conn closed") || strings.Contains(s, "driver: bad connection") ||
		strings.Contains(s, "failed to connect") || strings.Contains(s, "unexpected EOF")
}

// IsPostgresURL reports whether s names a PostgreSQL ledger
// (postgres://… or postgresql://…) rather than a SQLite file.
func IsPostgresURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// Redact returns a ledger location fit to print: a PostgreSQL URL loses its
// password (user:xxxxx@), and a password= parameter too; a path is returned
// as is.
func Redact(location string) string {
	if !IsPostgresURL(location) {
		return location
	}
	u, err := url.Parse(location)
	if err != nil {
		// Unparseable: keep only the scheme, never what may be a password.
		scheme, _, _ := strings.Cut(location, "://")
		return scheme + "://(unparseable URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	changed := false
	for k := range q {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactErr replaces every occurrence of the location's password in err's
// text (a driver may quote the URL it failed to connect to).
func redactErr(location string, err error) error {
	if err == nil || !IsPostgresURL(location) {
		return err
	}
	u, perr := url.Parse(location)
	if perr != nil {
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), location, Redact(location)))
	}
	secrets := []string{}
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			secrets = append(secrets, p, url.QueryEscape(p), url.PathEscape(p))
		}
	}
	for k, vs := range u.Query() {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
			secrets = append(secrets, vs...)
		}
	}
	msg := err.Error()
	clean := strings.ReplaceAll(msg, location, Redact(location))
	for _, s := range secrets {
		if s != "" {
			clean = strings.ReplaceAll(clean, s, "xxxxx")
		}
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// redactedError keeps the chain (errors.Is still finds ErrNoLedger) but
// prints without the password.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
