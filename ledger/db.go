package ledger

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// schemaFS holds the migrations: schema/NNNN_name.sql for SQLite and
// schema/postgres/NNNN_name.sql for PostgreSQL, one of each per version
// (TestMigrationsPaired holds them in step).
//
//go:embed schema/*.sql schema/postgres/*.sql
var schemaFS embed.FS

// DB is an open ledger. Its methods are safe for concurrent use.
type DB struct {
	// Now is the clock; tests replace it. It must be set before the DB is
	// used from other goroutines.
	Now func() time.Time

	path      string          // the file, or the PostgreSQL URL as given
	d         dialect         // what differs between SQLite and PostgreSQL
	pgcfg     *pgx.ConnConfig // PostgreSQL: for connections of their own (LISTEN)
	loadChunk int             // rows per transaction of LoadRows
	wdb       *sql.DB         // one connection: the group-commit writer and own-transaction writes
	rdb       *sql.DB         // readers; WAL lets them run beside the writer
	w         *writer

	closeOnce sync.Once
	closeErr  error
}

// Option configures Open.
type Option func(*options)

type options struct {
	busyTimeout   time.Duration
	syncNormal    bool
	maxGroup      int
	readConns     int
	checkpoint    time.Duration
	loadChunk     int
	mustExist     bool
	writeConns    int
	reconnectWait time.Duration
}

// DefaultCheckpointEvery is how often the writer restarts the WAL (see
// WithCheckpointEvery).
const DefaultCheckpointEvery = time.Second

// walSizeLimit is journal_size_limit: after the WAL is reset its file is
// trimmed to this size, so a burst does not keep its disk space forever.
const walSizeLimit = 16 << 20

// WithCheckpointEvery sets how often, at most, the group-commit writer runs
// a RESTART checkpoint after a commit (default DefaultCheckpointEvery);
// 0 or less leaves checkpoints to SQLite's automatic PASSIVE ones, which
// never reset the WAL while readers overlap (for measurements only).
func WithCheckpointEvery(d time.Duration) Option {
	return func(o *options) { o.checkpoint = d }
}

// WithBusyTimeout sets how long a connection waits for a lock held by
// another process (default 10s).
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) { o.busyTimeout = d }
}

// WithSyncNormal relaxes synchronous=FULL to NORMAL: a power loss may then
// lose the last commits. For benchmarks only; never for real money.
func WithSyncNormal() Option {
	return func(o *options) { o.syncNormal = true }
}

// WithMaxGroup caps how many queued writes the group-commit writer puts in
// one transaction (default 1024). 1 turns group commit off: one transaction
// and one fsync per write.
func WithMaxGroup(n int) Option {
	return func(o *options) { o.maxGroup = max(n, 1) }
}

// WithReadConns sets the size of the read connection pool (default 4).
func WithReadConns(n int) Option {
	return func(o *options) { o.readConns = max(n, 1) }
}

// WithLoadChunk sets how many rows LoadRows writes per transaction
// (default 2000: a few milliseconds of write lock each).
func WithLoadChunk(n int) Option {
	return func(o *options) { o.loadChunk = max(n, 1) }
}

// MustExist makes Open fail with an error wrapping ErrNoLedger instead of
// creating a ledger that does not exist yet.
func MustExist() Option {
	return func(o *options) { o.mustExist = true }
}

// WithWriteConns sets how many connections a PostgreSQL ledger keeps for
// writes (default 4: the group-commit writer, and transactions of their
// own beside it). SQLite has one writer connection whatever this says.
func WithWriteConns(n int) Option {
	return func(o *options) { o.writeConns = max(n, 2) }
}

// DefaultReconnectWait is how long, by default, a write to a PostgreSQL
// ledger whose connection was lost before its commit waits for the server
// to answer again (see WithReconnectWait).
const DefaultReconnectWait = 2 * time.Minute

// WithReconnectWait sets how long a write to a PostgreSQL ledger that lost
// its connection before committing (a server restart) is tried again
// before it fails; its caller waits meanwhile. 0 fails at once.
func WithReconnectWait(d time.Duration) Option {
	return func(o *options) { o.reconnectWait = max(d, 0) }
}

// Open opens the ledger at location, a SQLite file path or a PostgreSQL URL
// (postgres://… or postgresql://…, see IsPostgresURL), creating it (a file
// of mode 0600, or the tables in the database) if needed unless MustExist
// is given, and brings its schema up to date. It fails with an error
// wrapping ErrSchemaTooNew if the ledger was written by a newer payouts.
// Errors never hold the URL's password.
func Open(ctx context.Context, location string, opts ...Option) (*DB, error) {
	o := options{busyTimeout: 10 * time.Second, maxGroup: 1024, readConns: 4, checkpoint: DefaultCheckpointEvery,
		loadChunk: defaultLoadChunk, writeConns: 4, reconnectWait: DefaultReconnectWait}
	for _, opt := range opts {
		opt(&o)
	}
	if IsPostgresURL(location) {
		db, err := openPostgresLedger(ctx, location, o)
		return db, redactErr(location, err)
	}
	return openSQLite(ctx, location, o)
}

// openPostgresLedger opens (and, unless o.mustExist, creates) the ledger
// in a PostgreSQL database.
func openPostgresLedger(ctx context.Context, location string, o options) (*DB, error) {
	db := &DB{Now: time.Now, path: location, d: postgresDialect, loadChunk: o.loadChunk}
	var err error
	db.wdb, db.rdb, db.pgcfg, err = openPostgres(ctx, location, o)
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", Redact(location), err)
	}
	fail := func(err error) (*DB, error) {
		db.wdb.Close()
		db.rdb.Close()
		return nil, err
	}
	if o.mustExist {
		ok, err := postgresSchemaExists(ctx, db.wdb)
		if err != nil {
			return fail(fmt.Errorf("open ledger %s: %w", Redact(location), err))
		}
		if !ok {
			return fail(fmt.Errorf("open ledger %s: no payouts tables in this database: %w", Redact(location), ErrNoLedger))
		}
	}
	if err := db.migrate(ctx); err != nil {
		return fail(err)
	}
	db.w = newWriter(db.wdb, o.maxGroup, db.d)
	db.w.reconnectWait = o.reconnectWait
	return db, nil
}

// openSQLite opens (and, unless o.mustExist, creates) the ledger file.
func openSQLite(ctx context.Context, path string, o options) (*DB, error) {
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open ledger: %q is not a file path", path)
	}
	if o.mustExist {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open ledger %s: %w", path, ErrNoLedger)
		}
	}
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	db := &DB{Now: time.Now, path: path, d: sqliteDialect, loadChunk: o.loadChunk}

	sync := "FULL"
	if o.syncNormal {
		sync = "NORMAL"
	}
	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1&_stmt_cache_size=64", o.busyTimeout.Milliseconds())
	var err error
	db.wdb, err = sql.Open("sqlite3", dsn(path, common+"&_journal_mode=WAL&_synchronous="+sync+"&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	db.wdb.SetMaxOpenConns(1)
	db.wdb.SetMaxIdleConns(1)
	db.wdb.SetConnMaxLifetime(0)
	db.wdb.SetConnMaxIdleTime(0)
	if _, err := db.wdb.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimit)); err != nil {
		db.wdb.Close()
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if err := db.migrate(ctx); err != nil {
		db.wdb.Close()
		return nil, err
	}
	db.rdb, err = sql.Open("sqlite3", dsn(path, common+"&_query_only=1"))
	if err != nil {
		db.wdb.Close()
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	db.rdb.SetMaxOpenConns(o.readConns)
	db.rdb.SetMaxIdleConns(o.readConns)
	fixModes(path)
	db.w = newWriter(db.wdb, o.maxGroup, db.d)
	db.w.checkpointEvery = o.checkpoint
	return db, nil
}

// Close flushes every queued write, stops the writer and closes the file.
// Writes submitted after Close fail with ErrClosed.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.w.close()
		db.closeErr = errors.Join(db.rdb.Close(), db.wdb.Close())
	})
	return db.closeErr
}

// WriterStats counts what the group-commit writer did since Open.
type WriterStats struct {
	Commits int64 // transactions committed (one fsync each)
	Writes  int64 // writes committed in them
	// Checkpoints counts RESTART checkpoints that reset the WAL;
	// CheckpointsBusy those that gave up waiting for a reader.
	Checkpoints, CheckpointsBusy int64
}

// WriterStats returns the group-commit writer's counters: Writes/Commits is
// the average group size.
func (db *DB) WriterStats() WriterStats {
	return WriterStats{Commits: db.w.commits.Load(), Writes: db.w.writes.Load(),
		Checkpoints: db.w.checkpoints.Load(), CheckpointsBusy: db.w.checkpointsBusy.Load()}
}

// Path returns the file the ledger was opened from, or its PostgreSQL URL
// with the password redacted (see Redact).
func (db *DB) Path() string { return Redact(db.path) }

// Backend returns the database engine the ledger is on.
func (db *DB) Backend() Backend { return db.d.backend }

// SchemaVersion returns the newest schema version this binary knows.
func SchemaVersion() int {
	ms, err := migrations(BackendSQLite)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// dsn builds a go-sqlite3 URI for a file path: '?', '#' and '%' in the path
// are escaped so they stay part of the name.
func dsn(p, params string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
	return "file:" + esc + "?" + params
}

// createPrivate creates the ledger file with mode 0600 so SQLite never
// creates it with the umask default; SQLite gives -wal and -shm the same mode.
func createPrivate(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// fixModes takes group and other permissions away from the ledger and its
// -wal and -shm files, in case they were made by something else. Best
// effort: a file we do not own keeps its mode.
func fixModes(p string) {
	for _, name := range []string{p, p + "-wal", p + "-shm"} {
		if fi, err := os.Stat(name); err == nil && fi.Mode().Perm()&0o077 != 0 {
			_ = os.Chmod(name, fi.Mode().Perm()&0o700)
		}
	}
}

// migration is one embedded schema file, schema/NNNN_name.sql, and the Go
// step that runs after it in the same transaction, if it has one.
type migration struct {
	version int
	name    string
	sql     string
	step    func(ctx context.Context, tx *sql.Tx, now time.Time) error
}

// migrationSteps are the migrations that need Go: what SQLite cannot
// compute (Unicode normalization) is done there. PostgreSQL ledgers start
// at a schema that already has reference keys (no PostgreSQL ledger was
// ever written without them), so they have no steps.
var migrationSteps = map[Backend]map[int]func(ctx context.Context, tx *sql.Tx, now time.Time) error{
	BackendSQLite: {5: fillReferenceKeys},
}

// migrationDir is where a backend's migrations are embedded.
func migrationDir(b Backend) string {
	if b == BackendPostgres {
		return "schema/postgres"
	}
	return "schema"
}

// migrations returns a backend's embedded migrations, oldest first.
func migrations(backend Backend) ([]migration, error) {
	names, err := fs.Glob(schemaFS, migrationDir(backend)+"/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, n := range names {
		base := path.Base(n)
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad version", base)
		}
		b, err := schemaFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b), step: migrationSteps[backend][v]})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		// Two branches that each added "the next" migration: one must be
		// renumbered, or the second would never run on a ledger that has
		// the first.
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d: renumber one", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// migrate applies the embedded migrations the file lacks, each in its own
// transaction, and refuses a file newer than this binary.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations(db.d.backend)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	latest := ms[len(ms)-1].version
	for _, m := range ms {
		if err := db.migrateOne(ctx, m, latest); err != nil {
			return err
		}
	}
	return nil
}

// migrateOne applies m in one transaction unless the file already has it.
func (db *DB) migrateOne(ctx context.Context, m migration, latest int) error {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	// Two processes opening a new PostgreSQL ledger at once take turns.
	if err := db.d.lockKey(ctx, tx, "payouts schema_migrations"); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	strict := " STRICT"
	if db.d.backend == BackendPostgres {
		strict = ""
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`+strict); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if cur > latest {
		return fmt.Errorf("ledger %s has schema version %d, this payouts knows up to %d: %w — upgrade payouts to open it",
			Redact(db.path), cur, latest, ErrSchemaTooNew)
	}
	if cur >= m.version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	if m.step != nil {
		if err := m.step(ctx, tx, db.now()); err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, fmtTime(db.now())); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	if err := db.commit(tx); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	return nil
}

// commit commits a transaction of its own. If the connection broke while
// the commit was on its way, the error wraps ErrOutcomeUnknown: the
// transaction may or may not have been applied.
func (db *DB) commit(tx *sql.Tx) error {
	err := tx.Commit()
	if err != nil && db.d.backend == BackendPostgres && IsConnectionError(err) {
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return err
}

// now returns the clock's time in UTC.
func (db *DB) now() time.Time {
	if db.Now == nil {
		return time.Now().UTC()
	}
	return db.Now().UTC()
}

// timeLayout is fixed width so stored times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return fmtTime(t)
}

func parseTime(s sql.NullString) time.Time {
	if !s.Valid || s.String == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s.String)
	if err != nil {
		return time.Time{}
	}
	return t
}

// nullString stores "" as NULL (for columns with partial unique indexes).
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
