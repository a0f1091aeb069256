// Package pgtest gives tests a throwaway PostgreSQL: one cluster per test
// binary, started on first use from Debian's binaries
// (/usr/lib/postgresql/*/bin) into a temporary directory, on a free port,
// and torn down when the tests end; each test gets a schema of its own.
//
// A package that uses it wraps its tests:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and a test asks for a database with NewSchema(t), which skips the test,
// saying how to enable it, when no PostgreSQL is available — unless
// PAYOUTS_TEST_POSTGRES_REQUIRED=1 (CI), which fails it instead.
//
// PAYOUTS_TEST_POSTGRES=postgres://user:pass@host:port/db uses an existing
// server instead of starting one: each test creates (and drops) its own
// schema there.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Environment variables.
const (
	// EnvURL names an existing server to use instead of starting one.
	EnvURL = "PAYOUTS_TEST_POSTGRES"
	// EnvRequired makes a missing PostgreSQL a test failure (CI).
	EnvRequired = "PAYOUTS_TEST_POSTGRES_REQUIRED"
	// EnvFsync set to "off" starts the cluster with fsync=off (faster, not
	// crash-safe; the default is on, as in production).
	EnvFsync = "PAYOUTS_TEST_POSTGRES_FSYNC"
)

// HowToEnable is the skip message's advice.
const HowToEnable = "PostgreSQL tests need Debian's postgresql binaries (apt-get install postgresql) or " +
	EnvURL + "=postgres://… naming a server whose user may create schemas"

// Server is a PostgreSQL the tests share.
type Server struct {
	// URL connects as a superuser (or the given user) to the server's
	// maintenance database.
	URL string

	own     bool // started by this package: Stop and Restart apply
	bin     string
	dir     string // temporary root: data/, sock/, log
	port    int
	uid     uint32
	gid     uint32
	asUser  bool // run the binaries as uid/gid (we are root)
	cmd     *exec.Cmd
	exited  chan struct{}
	mu      sync.Mutex
	counter int
}

var (
	once     sync.Once
	shared   *Server
	startErr error
)

// Main runs the tests and stops the cluster if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil && shared.own {
		shared.Stop()
		os.RemoveAll(shared.dir)
	}
	return code
}

// Get returns the shared server, starting it on first use; it skips (or,
// with PAYOUTS_TEST_POSTGRES_REQUIRED=1, fails) t when none is available.
func Get(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { shared, startErr = start() })
	if startErr != nil {
		if os.Getenv(EnvRequired) == "1" {
			t.Fatalf("PostgreSQL required (%s=1) but unavailable: %v — %s", EnvRequired, startErr, HowToEnable)
		}
		t.Skipf("no PostgreSQL: %v — %s", startErr, HowToEnable)
	}
	return shared
}

// NewSchema creates a fresh schema for t and returns a URL whose
// search_path is that schema only, so a ledger opened with it sees its own
// tables and nothing else. The schema is dropped after the test.
func NewSchema(t testing.TB) string {
	t.Helper()
	s := Get(t)
	u, name, err := s.newSchema()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", s.URL)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+name+` CASCADE`)
	})
	return u
}

func (s *Server) newSchema() (string, string, error) {
	b := make([]byte, 6)
	rand.Read(b)
	s.mu.Lock()
	s.counter++
	name := fmt.Sprintf("t%d_%s", s.counter, hex.EncodeToString(b))
	s.mu.Unlock()
	db, err := sql.Open("pgx", s.URL)
	if err != nil {
		return "", "", err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+name); err != nil {
		return "", "", fmt.Errorf("create schema: %w", err)
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), name, nil
}

func start() (*Server, error) {
	if u := os.Getenv(EnvURL); u != "" {
		s := &Server{URL: u}
		if err := s.ping(10 * time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvURL, err)
		}
		return s, nil
	}
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	s := &Server{own: true, bin: bin}
	if err := s.initdb(); err != nil {
		if s.dir != "" {
			os.RemoveAll(s.dir)
		}
		return nil, err
	}
	if err := s.Start(); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	return s, nil
}

// findBin returns the newest /usr/lib/postgresql/N/bin with initdb and
// postgres in it.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("no /usr/lib/postgresql/*/bin/{initdb,postgres}")
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&0o111 != 0
}

// initdb makes a cluster in a new temporary directory, as the postgres
// user when we are root (initdb refuses root).
func (s *Server) initdb() error {
	dir, err := os.MkdirTemp("", "payouts-pgtest-")
	if err != nil {
		return err
	}
	s.dir = dir
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root and there is no postgres user to run initdb as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.uid, s.gid, s.asUser = uint32(uid), uint32(gid), true
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
	}
	for _, sub := range []string{"sock"} {
		p := filepath.Join(dir, sub)
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		if s.asUser {
			os.Chown(p, int(s.uid), int(s.gid))
		}
	}
	cmd := exec.Command(filepath.Join(s.bin, "initdb"), "-D", filepath.Join(dir, "data"), "--auth=trust",
		"--username=postgres", "--encoding=UTF8", "--locale=C", "--no-instructions")
	s.credential(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	return nil
}

func (s *Server) credential(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if s.asUser {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: s.uid, Gid: s.gid}
	}
	cmd.Dir = s.dir
}

// Start starts the server (again, after Stop, on the same port).
func (s *Server) Start() error {
	if !s.own {
		return errors.New("pgtest: the server was not started by this test binary")
	}
	if s.port == 0 {
		p, err := freePort()
		if err != nil {
			return err
		}
		s.port = p
	}
	fsync := "on"
	if os.Getenv(EnvFsync) == "off" {
		fsync = "off"
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(s.port), "-k", filepath.Join(s.dir, "sock"),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync="+fsync,
		"-c", "max_connections=300", "-c", "shared_buffers=32MB")
	s.credential(cmd)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	logf.Close()
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { cmd.Wait(); close(s.exited) }()
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	if err := s.ping(30 * time.Second); err != nil {
		s.Stop()
		log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
		return fmt.Errorf("postgres did not come up: %w\n%s", err, log)
	}
	return nil
}

// Stop shuts the server down (fast shutdown: sessions are disconnected),
// or kills it with SIGKILL when immediate is true (a crash).
func (s *Server) Stop(immediate ...bool) {
	if !s.own || s.cmd == nil {
		return
	}
	sig := syscall.SIGINT
	if len(immediate) > 0 && immediate[0] {
		sig = syscall.SIGKILL
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Restart stops the server and starts it again on the same port: every
// connection is cut, committed data stays.
func (s *Server) Restart(immediate bool) error {
	s.Stop(immediate)
	return s.Start()
}

// Own reports whether this test binary started the server (and so may
// stop and restart it).
func (s *Server) Own() bool { return s.own }

// Bin returns the directory of the PostgreSQL binaries ("" for a server
// given by PAYOUTS_TEST_POSTGRES).
func (s *Server) Bin() string { return s.bin }

func (s *Server) ping(within time.Duration) error {
	db, err := sql.Open("pgx", s.URL)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-s.exited:
			if s.exited != nil {
				return fmt.Errorf("postgres exited: %w", err)
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Schema returns the schema a NewSchema URL points at.
func Schema(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(pu.Query().Get("search_path"))
}

// DataDir returns the cluster's data directory ("" for a server given by
// PAYOUTS_TEST_POSTGRES).
func (s *Server) DataDir() string {
	if !s.own {
		return ""
	}
	return filepath.Join(s.dir, "data")
}

// Dump returns pg_dump's plain SQL of the schema a NewSchema URL points at
// (data included). It needs pg_dump: from the cluster's binaries, or on
// PATH for a server given by PAYOUTS_TEST_POSTGRES.
func Dump(s *Server, schemaURL string) ([]byte, error) {
	pgDump := "pg_dump"
	if s.bin != "" {
		pgDump = filepath.Join(s.bin, "pg_dump")
	}
	u, err := url.Parse(schemaURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	schema := q.Get("search_path")
	q.Del("search_path") // not a libpq parameter
	u.RawQuery = q.Encode()
	cmd := exec.Command(pgDump, "--schema="+schema, "--dbname="+u.String())
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("pg_dump: %w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("pg_dump: %w", err)
	}
	return out, nil
}

// Backend names of the ledger engines a conformance test runs on: the
// subtests ForEachBackend makes are named after them.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// ForEachBackend runs f as one subtest per ledger engine, named SQLite and
// Postgres. Inside f, UnderPostgres tells which one it is. A PostgreSQL
// subtest that asks for a server (Get, NewSchema) skips when none is
// available, and fails instead under PAYOUTS_TEST_POSTGRES_REQUIRED=1 (CI).
func ForEachBackend(t *testing.T, f func(t *testing.T)) {
	for _, b := range []string{SQLite, Postgres} {
		t.Run(b, f)
	}
}

// UnderPostgres reports whether t is (or is under) the Postgres subtest of
// ForEachBackend: its name's second element. Outside ForEachBackend it is
// false (SQLite).
func UnderPostgres(t testing.TB) bool {
	parts := strings.Split(t.Name(), "/")
	return len(parts) > 1 && parts[1] == Postgres
}
