package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
)

// Flow is how a row's session is made.
type Flow string

// Flows.
const (
	// FlowTwoStep: session/create, then session/start/payout. The session id
	// is stored before the payout exists, so every later question about the
	// row can be asked by id. The default.
	FlowTwoStep Flow = "two-step"
	// FlowSingle: session/init/payout in one call. A lost response leaves no
	// id; the row waits until a webhook or status carrying its metadata is
	// adopted, and is never sent a second init meanwhile.
	FlowSingle Flow = "single"
)

// ParseFlow parses "two-step" or "single".
func ParseFlow(s string) (Flow, error) {
	switch f := Flow(s); f {
	case FlowTwoStep, FlowSingle:
		return f, nil
	case "":
		return FlowTwoStep, nil
	}
	return "", fmt.Errorf("unknown flow %q: use two-step or single", s)
}

// Config tunes an Engine. Zero values take the documented defaults.
type Config struct {
	Flow    Flow        // default FlowTwoStep; a batch keeps the flow it was created with
	Confirm ConfirmMode // default ConfirmAuto
	// PollAfter: a row waiting on Pike longer than this is asked with
	// session/status (default 2m); later polls back off up to PollMax (10m).
	PollAfter, PollMax time.Duration
	// RetryAfter is the first delay before a row whose call failed is tried
	// again (default 1s, doubling up to PollAfter).
	RetryAfter time.Duration
	// Workers bounds how many rows are being advanced at once (default 64).
	// Requests in flight to Pike are bounded by the Pike client itself.
	Workers int
	// GiveUpAfter is how long a call Pike never applies (start, a lost
	// init, cancel) is sent again with the same key, at least 6 times,
	// before the row stops for good (default 30m; see maxSends).
	GiveUpAfter time.Duration
	// StopGrace is how long calls already in flight may finish after the run
	// is interrupted before they are abandoned as unknown (default 10s).
	StopGrace time.Duration
	// LeaseWait is how long to wait for the batch's lease when another live
	// process holds it (default 0: refuse at once). A cron run beside a
	// `payouts serve` that is finishing the same batch wants a few minutes.
	LeaseWait time.Duration
	// AllowRepeatReference pays a reference even when it already succeeded
	// in another batch. Off by default; the override is recorded.
	AllowRepeatReference bool
	Fingerprinter        *Fingerprinter
	// Actor is who approves or rejects (`payouts approve --as`): named in
	// the events of the rows confirmed or cancelled on their word.
	Actor string
	// Only, when set, limits Approve and Reject to these rows (ids): the
	// batch's other rows waiting for confirmation stay held.
	Only   []int64
	Logger *slog.Logger
	Now    func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Flow == "" {
		c.Flow = FlowTwoStep
	}
	if c.Confirm == "" {
		c.Confirm = ConfirmAuto
	}
	if c.PollAfter <= 0 {
		c.PollAfter = 2 * time.Minute
	}
	if c.PollMax < c.PollAfter {
		c.PollMax = max(10*time.Minute, c.PollAfter)
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = 30 * time.Minute
	}
	if c.StopGrace <= 0 {
		c.StopGrace = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Engine drives the rows of one batch through Pike's payout flow. It is
// the same machinery for `run`, `rerun`, `approve`, `reject` and `serve`:
// what differs is which rows it is given (and whether it has their card
// numbers, which only the manifest holds).
//
// Every action follows the same order: record the intent in the ledger
// (durably), then send the request, then record the answer. A crash at any
// point leaves the row in an intent state that the next run turns into
// unknown and resolves with session/status before anything else.
type Engine struct {
	store   Store
	pike    Pike
	batchID string
	cfg     Config
	log     *slog.Logger

	locks  rowLocks
	counts rowCounter
	// callCtx carries Pike calls. It outlives the run's context by
	// StopGrace so that a call in flight at SIGINT can finish and be
	// recorded instead of being abandoned half-way.
	callCtx    context.Context
	callCancel context.CancelFunc
	// paused stops all new confirms and starts (SIGINT, lost lease).
	paused atomic.Bool
	busy   jobCount // jobs submitted and not finished

	mu       sync.Mutex
	pans     map[int64]manifest.PAN // card numbers of rows this process may still need to start
	due      map[int64]time.Time    // when each waiting row is next looked at
	backoff  map[int64]time.Duration
	held     map[int64]bool // hold mode: rows checked and waiting for approval
	keyUsed  map[int64]bool // rows whose confirm key Pike reported as already used
	inflight map[int64]bool // webhooks being applied
	only     map[int64]bool // Config.Only; nil: every row
	fatal    error
	// shared is set when several runners share the batch: the rows this
	// engine holds claims on (see shared.go).
	shared *sharedRows

	wake     chan struct{} // a webhook was stored
	work     chan func()   // rows to start
	urgent   chan func()   // webhooks to apply and rows to poll: served first
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopped  chan struct{}
}

// NewEngine returns an Engine for batch batchID. Start must be called before use.
func NewEngine(store Store, pk Pike, batchID string, cfg Config) *Engine {
	cfg = cfg.withDefaults()
	var only map[int64]bool
	if cfg.Only != nil {
		only = map[int64]bool{}
		for _, id := range cfg.Only {
			only[id] = true
		}
	}
	return &Engine{
		only:  only,
		store: store, pike: pk, batchID: batchID, cfg: cfg,
		log:      cfg.Logger.With("batch", batchID),
		pans:     map[int64]manifest.PAN{},
		due:      map[int64]time.Time{},
		backoff:  map[int64]time.Duration{},
		held:     map[int64]bool{},
		keyUsed:  map[int64]bool{},
		inflight: map[int64]bool{},
		wake:     make(chan struct{}, 1),
		work:     make(chan func()),
		urgent:   make(chan func()),
		stopped:  make(chan struct{}),
	}
}

// Start launches the engine's workers, poller and webhook applier. They run
// until Stop. ctx is the run's context: when it is cancelled the engine
// stops confirming and starting rows, and calls in flight get StopGrace to
// finish.
func (e *Engine) Start(ctx context.Context) {
	e.callCtx, e.callCancel = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-ctx.Done():
			e.paused.Store(true)
			t := time.NewTimer(e.cfg.StopGrace)
			defer t.Stop()
			select {
			case <-t.C:
				e.callCancel()
			case <-e.stopped:
			}
		case <-e.stopped:
		}
	}()
	// Webhooks stored while no engine ran this batch (by `payouts serve`,
	// or before a crash) are applied before anything else happens to its
	// rows: a late success of an earlier attempt must be known before the
	// live attempt is confirmed.
	e.applyPending()
	for range e.cfg.Workers {
		e.wg.Go(e.worker)
	}
	e.wg.Go(e.pollLoop)
	e.wg.Go(e.webhookLoop)
}

// Stop stops the engine and waits for its goroutines. Calls still in flight
// are cancelled and recorded as unknown.
func (e *Engine) Stop() {
	e.stopOnce.Do(func() {
		e.paused.Store(true)
		close(e.stopped)
		if e.callCancel != nil {
			e.callCancel()
		}
	})
	e.wg.Wait()
}

// Err returns the first fatal (ledger) error the engine met, if any.
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fatal
}

func (e *Engine) setFatal(err error) {
	e.mu.Lock()
	if e.fatal == nil {
		e.fatal = err
		e.paused.Store(true)
	}
	e.mu.Unlock()
}

// worker runs jobs until the engine stops. Rows already in flight come
// first: a free worker takes a webhook to apply or a row to poll before it
// starts another row, so confirms are never starved by new starts and the
// number of payouts waiting for our confirm stays bounded by Pike's own
// delay instead of growing with the batch.
func (e *Engine) worker() {
	for {
		f, ok := e.next()
		if !ok {
			return
		}
		f()
	}
}

// next waits for the next job, urgent ones first. ok is false once the
// engine stopped.
func (e *Engine) next() (f func(), ok bool) {
	select {
	case f := <-e.urgent:
		return f, true
	case <-e.stopped:
		return nil, false
	default:
	}
	select {
	case f := <-e.urgent:
		return f, true
	case f := <-e.work:
		return f, true
	case <-e.stopped:
		return nil, false
	}
}

// submit runs f on a worker: on the urgent queue for rows in flight
// (webhooks, polls), on the work queue for rows to start. It blocks while
// all workers are busy and returns false if the engine stopped or ctx ended
// first.
func (e *Engine) submit(ctx context.Context, f func(), urgent bool) bool {
	e.busy.add(1)
	job := func() {
		defer e.busy.add(-1)
		f()
	}
	q := e.work
	if urgent {
		q = e.urgent
	}
	select {
	case q <- job:
		return true
	case <-e.stopped:
		e.busy.add(-1)
		return false
	case <-ctx.Done():
		e.busy.add(-1)
		return false
	}
}

// Drain waits up to timeout for the rows being advanced to come to rest.
// The engine is paused first, so nothing new is started or confirmed.
func (e *Engine) Drain(timeout time.Duration) {
	e.paused.Store(true)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-e.busy.idle():
	case <-t.C:
	}
}

// jobCount counts the engine's jobs submitted and not finished, and tells
// Drain the moment the count is back to zero.
type jobCount struct {
	mu    sync.Mutex
	n     int64
	empty chan struct{} // closed when n drops to 0; a new one when n leaves 0
}

// closedChan is a closed channel: idle's answer when no job is in flight.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *jobCount) add(d int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.n
	c.n += d
	switch {
	case was == 0 && c.n > 0:
		c.empty = make(chan struct{})
	case was > 0 && c.n == 0:
		close(c.empty)
	}
}

// idle returns a channel that is closed once no job is in flight.
func (c *jobCount) idle() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		return closedChan
	}
	return c.empty
}

// Notify wakes the webhook applier: a webhook was stored.
func (e *Engine) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// wctx is the context for ledger writes: they must complete even when the
// run is being interrupted, or the ledger would not know what was sent.
func (e *Engine) wctx() context.Context { return context.WithoutCancel(e.callCtx) }

func (e *Engine) setPAN(id int64, p manifest.PAN) {
	e.mu.Lock()
	e.pans[id] = p
	e.mu.Unlock()
}

func (e *Engine) pan(id int64) (manifest.PAN, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.pans[id]
	return p, ok
}

// schedule makes the poller look at row id after d.
func (e *Engine) schedule(id int64, d time.Duration) {
	e.mu.Lock()
	e.due[id] = e.cfg.Now().Add(d)
	e.mu.Unlock()
}

// retryLater schedules a row whose call failed, with a doubling delay.
func (e *Engine) retryLater(id int64) {
	e.mu.Lock()
	d := e.backoff[id]
	if d == 0 {
		d = e.cfg.RetryAfter
	} else {
		d = min(2*d, e.cfg.PollAfter)
	}
	e.backoff[id] = d
	e.due[id] = e.cfg.Now().Add(d)
	e.mu.Unlock()
}

// settle records where a row came to rest after being advanced: final
// rows are forgotten, waiting rows are scheduled for a status poll.
func (e *Engine) settle(row ledger.Row) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case row.State.Final() || row.State == ledger.StateReview:
		if e.shared != nil {
			e.shared.drop(row.ID) // room for another claim
		}
		delete(e.due, row.ID)
		delete(e.backoff, row.ID)
		delete(e.pans, row.ID)
		delete(e.held, row.ID)
		delete(e.keyUsed, row.ID)
	case e.held[row.ID] && row.State == ledger.StateAwaitingConfirm:
		delete(e.due, row.ID) // approval is a human's call, not the poller's
	case row.State == ledger.StateAwaitingConfirm || row.State == ledger.StateConfirmed || row.State == ledger.StateCancelling:
		delete(e.pans, row.ID) // started: the card number is no longer needed
		if _, ok := e.due[row.ID]; !ok {
			// Polls of a row that keeps waiting back off up to PollMax.
			e.due[row.ID] = e.cfg.Now().Add(max(e.cfg.PollAfter, e.backoff[row.ID]))
		}
	case row.State == ledger.StateUnknown, row.State == ledger.StateCreating, row.State == ledger.StateStarting,
		row.State == ledger.StateConfirming:
		// Every unknown row has a next step: resolve again, backing off.
		// An intent state at rest (a step that could not be recorded) is
		// looked at again too, and becomes unknown.
		if _, ok := e.due[row.ID]; !ok {
			e.due[row.ID] = e.cfg.Now().Add(max(e.cfg.RetryAfter, e.backoff[row.ID]))
		}
	}
}

// pollLoop asks Pike about rows that waited long enough, and retries rows
// whose last call failed.
func (e *Engine) pollLoop() {
	tick := min(max(e.cfg.PollAfter/8, 20*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-e.stopped:
			return
		case <-t.C:
		}
		now := e.cfg.Now()
		var ids []int64
		e.mu.Lock()
		for id, at := range e.due {
			if !at.After(now) {
				ids = append(ids, id)
				delete(e.due, id)
			}
		}
		e.mu.Unlock()
		for _, id := range ids {
			if !e.submit(e.callCtx, func() { e.poll(id) }, true) {
				return
			}
		}
	}
}

// poll looks at one row: rows with a session are asked about with
// session/status, others are simply advanced.
func (e *Engine) poll(id int64) {
	e.check(id)
}

// errStopped is returned when the engine stops before a row was handed on.
var errStopped = errors.New("engine stopped")
