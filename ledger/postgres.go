package ledger

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// The PostgreSQL ledger goes through database/sql with pgx's stdlib driver,
// so that every query and transaction of the SQLite ledger is the same code.
// The one difference in the text of the queries, ? against $1, is bridged
// by a connector that rebinds each statement as it is prepared or run.

// openPostgres opens the pools of a PostgreSQL ledger: wdb for the writer
// and the transactions of their own, rdb for reads (read-only sessions).
func openPostgres(ctx context.Context, location string, o options) (wdb, rdb *sql.DB, cfgOut *pgx.ConnConfig, err error) {
	cfg, err := pgx.ParseConfig(location)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("postgres URL: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "payouts"
	// Locks are waited for, but never for ever: a stuck holder shows up as
	// an error instead of a hung run (the busy timeout's counterpart).
	cfg.RuntimeParams["lock_timeout"] = strconv.FormatInt(o.busyTimeout.Milliseconds(), 10)
	// Every commit is durable before it answers, whatever the server's
	// default (synchronous_commit=off would answer before the WAL flush).
	if o.syncNormal {
		cfg.RuntimeParams["synchronous_commit"] = "off"
	} else {
		cfg.RuntimeParams["synchronous_commit"] = "on"
	}
	wdb = sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)})
	wdb.SetMaxOpenConns(max(o.writeConns, 2))
	wdb.SetMaxIdleConns(max(o.writeConns, 2))
	wdb.SetConnMaxIdleTime(5 * time.Minute)

	rcfg := cfg.Copy()
	rcfg.RuntimeParams["default_transaction_read_only"] = "on"
	rdb = sql.OpenDB(rebindConnector{stdlib.GetConnector(*rcfg)})
	rdb.SetMaxOpenConns(o.readConns)
	rdb.SetMaxIdleConns(o.readConns)
	rdb.SetConnMaxIdleTime(5 * time.Minute)
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, nil, nil, err
	}
	return wdb, rdb, cfg, nil
}

// webhookChannel is the channel RecordWebhook notifies (at commit) and
// ListenWebhooks listens on.
const webhookChannel = "payouts_webhooks"

// ListenWebhooks calls fn whenever any process stores a webhook in this
// PostgreSQL ledger (LISTEN/NOTIFY on a connection of its own), and once
// after every reconnection, since notifications sent while the connection
// was down are lost. It returns when ctx ends; a SQLite ledger returns
// ErrNotShared at once (its webhooks are stored by this process or found
// by polling). Notifications only say "look": the caller reads the
// ledger's pending webhooks, so a lost one delays nothing beyond its poll.
func (db *DB) ListenWebhooks(ctx context.Context, fn func()) error {
	if db.d.backend != BackendPostgres {
		return ErrNotShared
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, db.pgcfg.Copy())
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+webhookChannel)
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			fn() // whatever was stored while we were not listening
			for err == nil {
				_, err = conn.WaitForNotification(ctx)
				if err == nil {
					fn()
				}
			}
		}
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
			backoff = min(2*backoff, 5*time.Second)
		}
	}
	return ctx.Err()
}

// postgresSchemaExists reports whether `payouts init` made the ledger's
// tables in the database (the search path's first schema).
func postgresSchemaExists(ctx context.Context, db *sql.DB) (bool, error) {
	var ok bool
	err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&ok)
	return ok, err
}

// pgConn is what pgx's stdlib connection offers database/sql; the rebinding
// wrapper offers the same, so database/sql keeps every fast path.
type pgConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.NamedValueChecker
}

var _ pgConn = (*stdlib.Conn)(nil)

type rebindConnector struct{ driver.Connector }

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	pc, ok := conn.(pgConn)
	if !ok {
		conn.Close()
		return nil, errors.New("postgres driver connection lacks a database/sql interface")
	}
	return &rebindConn{pc}, nil
}

// rebindConn rewrites ? placeholders to $1, $2, … in every statement.
type rebindConn struct{ pgConn }

func (c *rebindConn) Prepare(query string) (driver.Stmt, error) {
	return c.pgConn.Prepare(rebind(query))
}

func (c *rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.pgConn.PrepareContext(ctx, rebind(query))
}

func (c *rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.pgConn.ExecContext(ctx, rebind(query), args)
}

func (c *rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.pgConn.QueryContext(ctx, rebind(query), args)
}

// pgxConn returns the pgx connection under a database/sql connection of a
// PostgreSQL ledger (for LISTEN, say), or nil.
func pgxConn(driverConn any) *pgx.Conn {
	if rc, ok := driverConn.(*rebindConn); ok {
		if sc, ok := rc.pgConn.(*stdlib.Conn); ok {
			return sc.Conn()
		}
	}
	return nil
}

// rebind turns each ? outside quotes, quoted identifiers, dollar-quoted
// bodies and comments into $1, $2, …
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			end := min(j+1, len(q))
			b.WriteString(q[i:end])
			i = end - 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i - 1
			}
			b.WriteString(q[i : i+j+1])
			i += j
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			end := len(q)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			b.WriteString(q[i:end])
			i = end - 1
		case c == '$':
			// $tag$ … $tag$ (tag may be empty); $1 stays as it is.
			k := i + 1
			for k < len(q) && (q[k] == '_' || q[k] >= 'a' && q[k] <= 'z' || q[k] >= 'A' && q[k] <= 'Z' || k > i+1 && q[k] >= '0' && q[k] <= '9') {
				k++
			}
			if k < len(q) && q[k] == '$' {
				tag := q[i : k+1]
				j := strings.Index(q[k+1:], tag)
				end := len(q)
				if j >= 0 {
					end = k + 1 + j + len(tag)
				}
				b.WriteString(q[i:end])
				i = end - 1
				continue
			}
			b.WriteByte(c)
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
