package ledger

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// job is one write submitted to the group-commit writer. run executes inside
// its own savepoint of the group's transaction.
type job struct {
	run   func(ctx context.Context, tx dbtx) error
	state atomic.Int32 // jobQueued → jobTaken by the writer, or → jobWithdrawn by the caller
	err   error
	done  chan struct{}
}

const (
	jobQueued int32 = iota
	jobTaken
	jobWithdrawn
)

func newJob(run func(ctx context.Context, tx dbtx) error) *job {
	return &job{run: run, done: make(chan struct{})}
}

// writer is the single goroutine that commits every queued job in one
// transaction: one fsync for many callers.
type writer struct {
	db       *sql.DB
	d        dialect
	maxGroup int

	mu     sync.Mutex
	queue  []*job
	closed bool

	// reconnectWait is how long a group lost with its PostgreSQL
	// connection is tried again (see commit); 0 never.
	reconnectWait time.Duration

	commits atomic.Int64 // transactions committed
	writes  atomic.Int64 // jobs committed in them

	// checkpointEvery is how often (at most) the writer restarts the WAL
	// after a commit; 0 never. lastCheckpoint is the writer goroutine's.
	checkpointEvery time.Duration
	lastCheckpoint  time.Time
	checkpoints     atomic.Int64 // RESTART checkpoints that reset the WAL
	checkpointsBusy atomic.Int64 // ones that gave up on a reader

	wake    chan struct{} // capacity 1: "the queue is not empty"
	quit    chan struct{}
	stopped chan struct{}
}

func newWriter(db *sql.DB, maxGroup int, d dialect) *writer {
	w := &writer{
		db:       db,
		d:        d,
		maxGroup: maxGroup,
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	go w.loop()
	return w
}

// do submits jobs (in order, so they land in the same group when they fit)
// and waits until each is durable or has failed. It returns the first error
// in job order; each job's own error stays in job.err.
func (w *writer) do(ctx context.Context, jobs ...*job) error {
	if err := w.submit(ctx, jobs...); err != nil {
		for _, j := range jobs {
			j.err = err
		}
		return err
	}
	var first error
	for _, j := range jobs {
		if err := w.wait(ctx, j); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (w *writer) submit(ctx context.Context, jobs ...*job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.queue = append(w.queue, jobs...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// wait returns when j is durable or failed. If ctx ends before the writer
// took j, j is withdrawn and never runs; once taken, j is waited for
// whatever ctx says, so the caller always learns the truth.
func (w *writer) wait(ctx context.Context, j *job) error {
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobQueued, jobWithdrawn) {
			j.err = fmt.Errorf("not written: %w", ctx.Err())
			return j.err
		}
		<-j.done
		return j.err
	}
}

// close stops accepting jobs, commits everything still queued and stops.
func (w *writer) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.stopped
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	<-w.stopped
}

func (w *writer) loop() {
	defer close(w.stopped)
	for {
		select {
		case <-w.wake:
		case <-w.quit:
			w.drain()
			return
		}
		w.drain()
	}
}

// drain commits groups until the queue is empty.
func (w *writer) drain() {
	for {
		w.mu.Lock()
		n := min(len(w.queue), w.maxGroup)
		group := make([]*job, n)
		copy(group, w.queue[:n])
		rest := copy(w.queue, w.queue[n:])
		clear(w.queue[rest:])
		w.queue = w.queue[:rest]
		w.mu.Unlock()
		if n == 0 {
			return
		}
		w.commit(group)
		w.maybeCheckpoint()
		// Let the callers just answered run and queue their next writes,
		// so the next group is a full one rather than the few stragglers
		// that arrived during the fsync.
		runtime.Gosched()
	}
}

// commit runs the group's jobs, each in its own savepoint of one
// transaction, commits once and answers every caller. A failing job rolls
// back only its savepoint. If the transaction itself fails, every job in
// it fails: nothing of the group was written.
func (w *writer) commit(group []*job) {
	taken := group[:0]
	for _, j := range group {
		if j.state.CompareAndSwap(jobQueued, jobTaken) {
			taken = append(taken, j)
		}
	}
	if len(taken) == 0 {
		return
	}
	defer func() {
		for _, j := range taken {
			close(j.done)
		}
	}()
	// PostgreSQL: a group that failed because the connection was lost
	// before its COMMIT was sent wrote nothing, and is run again once the
	// server answers (a restart, a network cut), for up to reconnectWait;
	// meanwhile its callers wait, and the run pauses with them.
	start, backoff := time.Now(), 50*time.Millisecond
	for !w.commitOnce(taken) {
		if time.Since(start) > w.reconnectWait {
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
		for _, j := range taken {
			j.err = nil
		}
	}
	// PostgreSQL: two processes' groups that lock the same rows in another
	// order deadlock, and the server fails a statement of one of them. That
	// job was undone to its savepoint; it runs again in a transaction of its
	// own once this group has committed and let its locks go (retrying it
	// inside the group would meet the same cycle).
	for round := 0; round < 5; round++ {
		var again []*job
		for _, j := range taken {
			if j.err != nil && w.d.isTransient(j.err) {
				j.err = nil
				again = append(again, j)
			}
		}
		if len(again) == 0 {
			return
		}
		time.Sleep(time.Duration(1+round) * 5 * time.Millisecond)
		w.commitOnce(again)
	}
}

// commitOnce is one try of commit. It reports false when the group should
// be tried again: nothing of it was written, and the cause was a lost
// PostgreSQL connection.
func (w *writer) commitOnce(taken []*job) (done bool) {
	retry := func(err error) bool {
		return w.d.backend == BackendPostgres && w.reconnectWait > 0 && IsConnectionError(err)
	}
	// Jobs never see a caller's context: interrupting a statement can roll
	// back the whole transaction, everyone's writes with it. The writer
	// runs BEGIN and COMMIT itself on a plain connection: a *sql.Tx would
	// start a goroutine for every query it runs.
	ctx := context.Background()
	conn, err := w.db.Conn(ctx)
	if err != nil {
		for _, j := range taken {
			j.err = fmt.Errorf("writer connection: %w", err)
		}
		return !retry(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, w.d.begin); err != nil {
		for _, j := range taken {
			j.err = fmt.Errorf("begin: %w", err)
		}
		w.rollback(ctx, conn)
		return !retry(err)
	}
	ok, abort := w.runGroup(ctx, conn, taken)
	if abort != nil {
		w.rollback(ctx, conn)
		for _, j := range ok {
			j.err = fmt.Errorf("not written: %w", abort)
		}
		return !retry(abort)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		w.rollback(ctx, conn)
		for _, j := range ok {
			if w.d.backend == BackendPostgres && IsConnectionError(err) {
				// The COMMIT may have reached the server before the
				// connection broke: the group may be in the ledger.
				j.err = fmt.Errorf("commit: %w: %w", ErrOutcomeUnknown, err)
				continue
			}
			j.err = fmt.Errorf("not written: commit: %w", err)
		}
		return true
	}
	w.commits.Add(1)
	w.writes.Add(int64(len(ok)))
	return true
}

// checkpointBusy is how long a checkpoint waits for readers still on the
// old WAL before giving up until the next one; writes wait behind it.
const checkpointBusy = 100 * time.Millisecond

// maybeCheckpoint restarts the WAL when checkpointEvery has passed since
// the last try. SQLite's automatic checkpoints are PASSIVE: they copy
// frames back but never wait for readers, so under constant overlapping
// reads (the engine reads a row before every step) the WAL is never reset
// and grows with the run (issue 13, finding 22; docs/PERFORMANCE.md).
// RESTART copies everything back and waits (briefly) for the readers that
// still use the WAL, so the next commit writes the WAL from its start
// again; journal_size_limit then trims the file.
func (w *writer) maybeCheckpoint() {
	if w.d.backend != BackendSQLite || w.checkpointEvery <= 0 || time.Since(w.lastCheckpoint) < w.checkpointEvery {
		return
	}
	w.lastCheckpoint = time.Now()
	ctx := context.Background()
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	// The connection's busy timeout is the ledger's (10 s by default): far
	// too long to hold every writer for a checkpoint that can wait.
	var prev int64
	if err := conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&prev); err != nil {
		return
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", checkpointBusy.Milliseconds())); err != nil {
		return
	}
	defer conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", prev))
	var busy, logFrames, done int64
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &logFrames, &done); err != nil {
		w.checkpointsBusy.Add(1)
		return
	}
	if busy != 0 {
		w.checkpointsBusy.Add(1)
		return
	}
	w.checkpoints.Add(1)
}

// runGroup runs each job in its own savepoint and returns the jobs that
// succeeded. abort is set if the transaction itself is lost: then nothing
// of the group may be committed.
func (w *writer) runGroup(ctx context.Context, conn *sql.Conn, taken []*job) (ok []*job, abort error) {
	// Prepared once per group: a fresh prepare per job costs as much as a
	// small update.
	savepoint, err := conn.PrepareContext(ctx, "SAVEPOINT job")
	if err != nil {
		abort = fmt.Errorf("prepare savepoint: %w", err)
	} else {
		defer savepoint.Close()
	}
	release, err := conn.PrepareContext(ctx, "RELEASE job")
	if err != nil {
		abort = fmt.Errorf("prepare release: %w", err)
	} else {
		defer release.Close()
	}
	for _, j := range taken {
		if abort != nil {
			j.err = abort
			continue
		}
		if _, err := savepoint.ExecContext(ctx); err != nil {
			abort = fmt.Errorf("savepoint: %w", err)
			j.err = abort
			continue
		}
		if err := runJob(ctx, conn, j); err != nil {
			j.err = err
			// ROLLBACK TO fails only if SQLite already rolled back the
			// whole transaction (I/O error, disk full): stop here, or the
			// next statements would run outside any transaction.
			if _, rerr := conn.ExecContext(ctx, "ROLLBACK TO job"); rerr != nil {
				abort = fmt.Errorf("group aborted after %w: %w", err, rerr)
			}
		}
		if abort != nil {
			continue
		}
		if _, err := release.ExecContext(ctx); err != nil {
			abort = fmt.Errorf("release savepoint: %w", err)
			if j.err == nil {
				j.err = abort
			}
			continue
		}
		if j.err == nil {
			ok = append(ok, j)
		}
	}
	return ok, abort
}

// rollback ends the transaction on conn, if any. A connection that cannot
// be rolled back is discarded rather than handed back to the pool with a
// transaction open.
func (w *writer) rollback(ctx context.Context, conn *sql.Conn) {
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// runJob runs j, turning a panic into an error so the writer survives.
func runJob(ctx context.Context, tx dbtx, j *job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("ledger write panicked: %v", r)
		}
	}()
	return j.run(ctx, tx)
}
